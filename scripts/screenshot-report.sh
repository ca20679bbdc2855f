#!/usr/bin/env bash
# Screenshot of a `cde report` page as a person would see it, with headless Chromium
# (Debian package `chromium`). Usage:
#   scripts/screenshot-report.sh RUN_OR_HTML [OUT.png] [WIDTH] [HEIGHT]
# RUN_OR_HTML: a run directory (its report.html) or an HTML file. Defaults: OUT =
# <html without .html>.png, 1280 x 2700 CSS pixels (the page has no scripts, so the
# screenshot is what a browser shows).
set -euo pipefail
src=${1:?usage: screenshot-report.sh RUN_OR_HTML [OUT.png] [WIDTH] [HEIGHT]}
html=$src
[ -d "$src" ] && html="$src/report.html"
[ -f "$html" ] || { echo "screenshot-report.sh: $html: no such file (run \`cde report RUN\` first)" >&2; exit 1; }
out=${2:-${html%.html}.png}
width=${3:-1280}
height=${4:-2700}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "screenshot-report.sh: chromium not found (apt-get install chromium)" >&2; exit 1; }
abs=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
  --user-data-dir="$profile" --force-device-scale-factor=1 --window-size="$width,$height" \
  --screenshot="$out_abs" "file://$abs" >/dev/null 2>&1
[ -s "$out_abs" ] || { echo "screenshot-report.sh: chromium wrote no screenshot" >&2; exit 1; }
echo "$out_abs"
