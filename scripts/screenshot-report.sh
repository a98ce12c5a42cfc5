#!/usr/bin/env bash
# Renders a report page (report.html or compare.html) in headless Chromium (Debian: apt-get install chromium)
# at 1280 px wide and writes a full-page PNG screenshot, to check by eye that the page reads well.
#   scripts/screenshot-report.sh REPORT.html [OUT.png] [HEIGHT]
set -euo pipefail
report=${1:?usage: scripts/screenshot-report.sh REPORT.html [OUT.png] [HEIGHT]}
out=${2:-${report%.html}.png}
height=${3:-3600}
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,"$height" \
  --screenshot="$(realpath -m "$out")" "file://$(realpath "$report")" 2>/dev/null
echo "screenshot written to $out"
