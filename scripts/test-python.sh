#!/usr/bin/env bash
# Prints the path of a Python 3 that has the test-only PyPI packages given as arguments
# (import names: pyarrow, sklearn, joblib, numpy). python3 on PATH when it has them all;
# otherwise a virtual environment in .build/test-python (created once) into which the
# missing ones are installed from PyPI with the versions below, those the CoDE release
# used where it matters (its classifiers were pickled with scikit-learn 1.3.2).
# Exit status 1 (with the reason on stderr) when no such Python can be made.
set -euo pipefail
cd "$(dirname "$0")/.."
# pyarrow 19: the last releases that also run on numpy 1.26.
declare -A SPEC=([pyarrow]="pyarrow==19.0.1" [sklearn]="scikit-learn==1.3.2" [joblib]="joblib" [numpy]="numpy==1.26.4")
has_all() { "$1" - "$@" <<'PY' 2>/dev/null
import importlib, sys
for m in sys.argv[2:]:
    importlib.import_module(m)
PY
}
if command -v python3 >/dev/null && has_all python3 "$@"; then command -v python3; exit 0; fi
VENV=.build/test-python
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" >&2 || { echo "test-python: cannot create a virtual environment ($VENV): install python3-venv" >&2; exit 1; }
fi
if ! has_all "$VENV/bin/python" "$@"; then
  pkgs=(); for m in "$@"; do pkgs+=("${SPEC[$m]:-$m}"); done
  # numpy 1.26 for scikit-learn 1.3.2's binary modules (pyarrow 19 accepts it too)
  [[ " $* " == *" sklearn "* ]] && pkgs+=("${SPEC[numpy]}")
  echo "test-python: pip install ${pkgs[*]} into $VENV" >&2
  "$VENV/bin/python" -m pip install -q "${pkgs[@]}" >&2 || { echo "test-python: pip install failed (PyPI unreachable?)" >&2; exit 1; }
fi
echo "$PWD/$VENV/bin/python"
