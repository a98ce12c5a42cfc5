#!/usr/bin/env bash
# Renders a report page (report.html or compare.html) in headless Chromium (Debian: apt-get install chromium)
# at 1280 px wide and writes a full-page PNG screenshot, to check by eye that the page reads well.
#   scripts/screenshot-report.sh REPORT.html [OUT.png] [HEIGHT]
#   scripts/screenshot-report.sh --check REPORT.html [OUT.png] [HEIGHT]
# --check also checks what a person would see, and prints it: the page finishes loading with no script
# error, no console.error and no failed resource load (img, script, stylesheet...); every chart (top-level
# <svg>) has a non-zero rendered size and draws something; every <img> has a non-zero rendered size and
# decodes (naturalWidth > 0, and drawn into a canvas it has more than one gray level). It measures a copy
# of the page with a <base href> to the page's folder (so relative links still resolve) and a small script
# in <head> that records errors from the start and measures one second after the load event; the
# screenshot comes from the same browser run. (The screenshot's pixels are checked by
# Tests/FashionCLFTests/BrowserTests.swift, with the project's own PNG decoder.)
# Exit status: 0 ok, 1 check failed (or Chromium failed), 2 usage, 3 Chromium missing.
# CHROMIUM=/path/to/chrome picks the browser; FCLF_KEEP=1 keeps the temporary folder (the measured copy,
# Chromium's log and the dumped DOM).
set -euo pipefail
usage="usage: scripts/screenshot-report.sh [--check] REPORT.html [OUT.png] [HEIGHT]"
check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
if [ $# -lt 1 ] || [ $# -gt 3 ] || [ ! -f "$1" ]; then
  echo "$usage${1:+ (no such file: $1)}" >&2
  exit 2
fi
report=$(realpath "$1")
out=$(realpath -m "${2:-${1%.html}.png}")
height=${3:-3600}
case $height in '' | *[!0-9]*) echo "$usage (HEIGHT is a number of pixels)" >&2; exit 2 ;; esac

browser=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [ -z "$browser" ] || ! command -v "$browser" >/dev/null; then
  echo "screenshot-report.sh: Chromium is not installed: sudo apt-get install chromium (or bash scripts/setup.sh), or set CHROMIUM=/path/to/chrome" >&2
  exit 3
fi
# --headless is the new headless mode (Chromium 112 on); the old one moved out to chrome-headless-shell in 132
# (with Debian's Chromium 156, --headless=old renders the same as --headless).
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --mute-audio
       --window-size=1280,"$height" --virtual-time-budget=10000)

if [ $check = 0 ]; then
  timeout 120 "$browser" "${flags[@]}" --screenshot="$out" "file://$report" >/dev/null 2>&1 ||
    { status=$?; echo "screenshot-report.sh: Chromium failed (exit status $status$([ $status = 124 ] && echo ', timed out after 120 s'))" >&2; exit 1; }
  echo "screenshot written to $out"
  exit 0
fi

work=$(mktemp -d /tmp/fclf-browser-XXXXXX)
trap '[ -n "${FCLF_KEEP:-}" ] || rm -rf "$work"' EXIT
# Runs first in the page: records script errors, console.error, rejected promises and failed resource
# loads (their error events do not bubble, so listen in the capture phase); after the load event,
# measures every chart and image, and leaves the result, base64, in an attribute of <html> (invisible).
cat > "$work/prelude.html" <<'EOF'
<script>(function () {
  var errors = [], warnings = [];
  function where(e) { return e.filename ? " (" + e.filename.replace(/^.*\//, "") + ":" + e.lineno + ")" : ""; }
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && t.tagName) {
      errors.push("failed to load <" + t.tagName.toLowerCase() + "> " + String(t.currentSrc || t.src || t.href || (t.getAttribute && t.getAttribute("href")) || "").slice(0, 120));
    } else {
      errors.push("script error: " + e.message + where(e));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) { errors.push("Uncaught (in promise) " + e.reason); });
  var error = console.error, warn = console.warn;
  console.error = function () { errors.push("console.error: " + Array.prototype.join.call(arguments, " ")); return error.apply(console, arguments); };
  console.warn = function () { warnings.push("console.warn: " + Array.prototype.join.call(arguments, " ")); return warn.apply(console, arguments); };
  function px(x) { return Math.round(x); }
  function measure() {
    var lines = [], problems = [];
    var root = document.documentElement;
    var body = document.body ? document.body.getBoundingClientRect() : { width: 0, height: 0, bottom: 0 };
    var tall = Math.ceil(body.bottom + scrollY + (document.body ? parseFloat(getComputedStyle(document.body).marginBottom) : 0));
    lines.push("page: \"" + document.title + "\", laid out " + px(root.scrollWidth) + " px wide (window " + innerWidth + "), content " + tall + " px tall");
    if (!(body.width > 0 && body.height > 0)) problems.push("the page shows nothing (its body has no size)");
    if (root.scrollWidth > innerWidth) warnings.push("the page is wider than the window: it scrolls sideways");
    if (tall > __HEIGHT__) warnings.push("the content is taller than the screenshot (" + __HEIGHT__ + " px): pass a larger HEIGHT");
    var svgs = Array.prototype.filter.call(document.querySelectorAll("svg"), function (s) { return !s.parentElement || !s.parentElement.closest("svg"); });
    svgs.forEach(function (s, i) {
      var r = s.getBoundingClientRect();
      var drawn = s.querySelectorAll("rect,line,polyline,polygon,path,circle,ellipse,text,image,use").length;
      var label = "svg " + (i + 1) + ": " + px(r.width) + " x " + px(r.height) + " px at " + px(r.left + scrollX) + "," + px(r.top + scrollY) + ", " + drawn + " shapes";
      lines.push(label);
      if (!(r.width > 0 && r.height > 0)) problems.push(label + ": not rendered (zero size)");
      if (drawn === 0) problems.push(label + ": draws nothing");
    });
    var imgs = document.querySelectorAll("img");
    for (var i = 0; i < imgs.length; i++) {
      var img = imgs[i], r = img.getBoundingClientRect();
      var label = "img " + (i + 1) + " (" + (img.alt || (img.getAttribute("src") || "").slice(0, 40)) + "): " + px(r.width) + " x " + px(r.height)
        + " px at " + px(r.left + scrollX) + "," + px(r.top + scrollY) + ", decoded " + img.naturalWidth + " x " + img.naturalHeight;
      if (!(r.width > 0 && r.height > 0)) problems.push(label + ": not rendered (zero size)");
      if (!img.complete || img.naturalWidth === 0) { problems.push(label + ": the image did not decode"); lines.push(label); continue; }
      /* Decoded pixels: drawn into a canvas (synchronous; data: URLs leave it readable). */
      try {
        var c = document.createElement("canvas"); c.width = img.naturalWidth; c.height = img.naturalHeight;
        var g = c.getContext("2d"); g.drawImage(img, 0, 0);
        var d = g.getImageData(0, 0, c.width, c.height).data, levels = {}, n = 0;
        for (var k = 0; k < d.length; k += 4) { var v = (d[k] * 299 + d[k + 1] * 587 + d[k + 2] * 114) / 1000 | 0; if (!levels[v]) { levels[v] = 1; n++; } }
        label += ", " + n + " gray levels";
        if (n < 2) problems.push(label + ": the decoded image is a single flat colour");
      } catch (e) { label += " (pixels not readable: " + e.name + ")"; }
      lines.push(label);
    }
    lines.push("charts: " + svgs.length + " svg, images: " + imgs.length + " img");
    warnings.forEach(function (w) { lines.push("warning: " + w); });
    problems = errors.concat(problems);
    lines.push("errors: " + (errors.length ? errors.length : "none"));
    problems.forEach(function (p) { lines.push("PROBLEM: " + p); });
    var text = lines.join("\n") + "\n";
    root.setAttribute("data-fclf-check", btoa(unescape(encodeURIComponent(text))));
    root.setAttribute("data-fclf-problems", String(problems.length));
  }
  /* One second (of Chromium's virtual time) after the load event, so that errors thrown by timers soon after
     loading are caught here too (later ones are still caught from Chromium's log). */
  window.addEventListener("load", function () {
    setTimeout(function () {
      try { measure(); } catch (e) {
        document.documentElement.setAttribute("data-fclf-check", btoa("PROBLEM: measuring the page failed: " + e + "\n"));
        document.documentElement.setAttribute("data-fclf-problems", "1");
      }
    }, 1000);
  });
})();</script>
EOF
sed -i "s/__HEIGHT__/$height/g" "$work/prelude.html"
dir=$(dirname "$report")
base="<base href=\"file://${dir// /%20}/\">"
page="$work/page.html"
{
  if grep -qi '<head[ >]' "$report"; then
    # After the first <head ...> tag.
    insert="$base$(tr -d '\n' < "$work/prelude.html")" awk 'BEGIN { insert = ENVIRON["insert"] } done == 0 && match(tolower($0), /<head([ \t][^>]*)?>/) {
        $0 = substr($0, 1, RSTART + RLENGTH - 1) insert substr($0, RSTART + RLENGTH); done = 1 } { print }' "$report"
  else
    # No <head>: after a leading <!DOCTYPE ...> (before it would put the page in quirks mode).
    insert="$base$(tr -d '\n' < "$work/prelude.html")" awk 'BEGIN { insert = ENVIRON["insert"] } NR == 1 && tolower($0) ~ /^<!doctype[^>]*>/ {
        match($0, />/); print substr($0, 1, RSTART) insert substr($0, RSTART + 1); next } NR == 1 { print insert } { print }' "$report"
  fi
} > "$page"

status=0
timeout 120 "$browser" "${flags[@]}" --enable-logging=stderr --v=0 --screenshot="$out" --dump-dom "file://$page" \
  > "$work/dom.html" 2> "$work/stderr.txt" || status=$?
echo "$(basename "$report"): $(wc -c < "$report") bytes, Chromium $("$browser" --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -1), window 1280 x $height"
result=$(grep -o 'data-fclf-check="[A-Za-z0-9+/=]*"' "$work/dom.html" | head -1 | cut -d'"' -f2 || true)
problems=0
if [ $status -ne 0 ]; then
  echo "PROBLEM: Chromium exited with status $status$([ $status = 124 ] && echo ' (timed out after 120 s)')"
  problems=$((problems + 1))
fi
if [ -z "$result" ]; then
  echo "PROBLEM: the page did not finish loading (no load event within Chromium's 10 s of virtual time)"
  problems=$((problems + 1))
else
  echo "$result" | base64 -d
  problems=$((problems + $(grep -o 'data-fclf-problems="[0-9]*"' "$work/dom.html" | head -1 | grep -o '[0-9]*')))
fi
# Chromium logs every console message of the page to stderr (without its level). Those the page's own
# listeners did not already report are printed; an uncaught error among them (say, one thrown before the
# prelude ran) fails the check.
decoded=$(echo "$result" | base64 -d 2>/dev/null || true)
while IFS= read -r line; do
  message=${line#*\] \"}
  message=${message%\", source: *}
  if [ -n "$message" ] && [[ "$decoded" == *"$message"* ]]; then continue; fi
  echo "console: $message"
  case $message in Uncaught*) echo "PROBLEM: uncaught error in the browser console"; problems=$((problems + 1)) ;; esac
done < <(grep ':CONSOLE' "$work/stderr.txt" | grep -F "source: file://$page" || true)
if [ -s "$out" ]; then echo "screenshot: $out ($(wc -c < "$out") bytes)"; else echo "PROBLEM: no screenshot written"; problems=$((problems + 1)); fi
if [ $problems -eq 0 ]; then echo "check: OK"; else echo "check: FAILED ($problems problems)"; exit 1; fi
