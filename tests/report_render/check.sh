#!/usr/bin/env bash
# Renders the sample fleet report in real headless Chromium and checks the result.
#
# Usage: check.sh REPORT_SAMPLE_BINARY OUT_DIR
#   1. REPORT_SAMPLE_BINARY writes OUT_DIR/sample.html and the element counts it must contain
#      (OUT_DIR/sample.expect).
#   2. chromium --dump-dom: the parsed DOM has the ROC chart, one ranking row per car (faulty
#      ones marked), a distribution chart per score, a chart per signal of each worst segment,
#      and the car id with <, & and quotes came through as text.
#   3. chromium --screenshot (1280x2400): the PNG is decoded (python3 + zlib) and must show
#      text, the highlighted faulty rows and the colours of the ROC curves, class markers and
#      signal lines, so a blank page or a browser error page fails.
# Chromium is required: when it is missing the check FAILS (scripts/install-deps.sh installs it).
# Set DYAD_CHROMIUM to use another binary.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: check.sh REPORT_SAMPLE_BINARY OUT_DIR" >&2
  exit 2
fi
sample_bin=$1
out=$2

chromium=${DYAD_CHROMIUM:-}
if [[ -z "$chromium" ]]; then
  for c in chromium chromium-browser; do
    if command -v "$c" >/dev/null 2>&1; then chromium=$(command -v "$c"); break; fi
  done
fi
if [[ -z "$chromium" || ! -x "$chromium" ]]; then
  echo "report_renders_in_chromium: FAIL: chromium is not installed (looked for 'chromium' and" >&2
  echo "'chromium-browser' on PATH, or \$DYAD_CHROMIUM). Install it with scripts/install-deps.sh" >&2
  echo "or 'apt-get install -y chromium fonts-liberation'." >&2
  exit 1
fi
command -v python3 >/dev/null 2>&1 || { echo "report_renders_in_chromium: FAIL: python3 is needed to check the screenshot" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
"$sample_bin" "$out/sample.html" "$out/sample.expect"
url="file://$out/sample.html"

declare -A want
while IFS='=' read -r key value; do
  [[ -n "$key" ]] && want[$key]=$value
done <"$out/sample.expect"

profiles=()
cleanup() { if ((${#profiles[@]})); then rm -rf "${profiles[@]}"; fi; }
trap cleanup EXIT
# Runs chromium with a fresh profile and no network activity of its own; stderr goes to a log.
run_chromium() {
  local log=$1
  shift
  local profile
  profile=$(mktemp -d)
  profiles+=("$profile")
  if ! timeout 180 "$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
      --disable-background-networking --disable-component-update --disable-sync \
      --user-data-dir="$profile" "$@" 2>"$log"; then
    echo "report_renders_in_chromium: FAIL: chromium $* failed; its log ($log) ends with:" >&2
    tail -n 20 "$log" >&2
    exit 1
  fi
}

failures=0
fail() { echo "report_renders_in_chromium: FAIL: $*" >&2; failures=$((failures + 1)); }
expect_count() {  # NAME WANT PATTERN: the DOM holds PATTERN exactly WANT times
  local got
  got=$({ grep -oF -- "$3" "$out/dom.html" || true; } | wc -l)
  if [[ "$got" -ne "$2" ]]; then fail "$1: expected $2 × '$3' in the DOM, found $got"; else echo "ok: $1 ($got)"; fi
}

# ---- DOM ----------------------------------------------------------------------------------------
run_chromium "$out/chromium-dom.log" --dump-dom "$url" >"$out/dom.html"
[[ -s "$out/dom.html" ]] || fail "--dump-dom printed nothing"
expect_count "document parsed to the end" 1 '</main>'
expect_count "all svg charts" "${want[svgs]}" '<svg '
expect_count "ROC chart" 1 '<svg class="chart roc"'
expect_count "ROC curves" "${want[scores]}" '<path class="curve"'
expect_count "distribution charts" "${want[scores]}" '<svg class="chart dist"'
expect_count "segment figures" "${want[segments]}" '<figure class="segment'
expect_count "signal charts" "${want[signal_charts]}" '<svg class="chart signal"'
expect_count "measured lines" "${want[signal_charts]}" '<path class="measured"'
expect_count "reconstructed lines" "${want[signal_charts]}" '<path class="reconstructed"'
expect_count "faulty ranking rows" "${want[faulty]}" '<tr class="faulty">'
expect_count "normal ranking rows" "$((want[cars] - want[faulty]))" '<tr class="normal">'
# The id 'EV <0202> & "demo"' must be a text node, not markup (the serializer re-escapes < and &).
expect_count "escaped car id in the ranking" 1 '<td class="car">EV &lt;0202&gt; &amp; "demo"</td>'
expect_count "no injected element" 0 '<0202>'
expect_count "no scripts" 0 '<script'

# ---- screenshot ---------------------------------------------------------------------------------
run_chromium "$out/chromium-screenshot.log" --screenshot="$out/out.png" --window-size=1280,2400 "$url" >/dev/null
if [[ ! -s "$out/out.png" ]]; then
  fail "no screenshot written ($out/out.png)"
else
  python3 - "$out/out.png" <<'PY' || failures=$((failures + 1))
import struct, sys, zlib

path = sys.argv[1]
data = open(path, "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    sys.exit("report_renders_in_chromium: FAIL: screenshot is not a PNG")
pos, idat = 8, []
while pos < len(data):
    (n,) = struct.unpack(">I", data[pos:pos + 4])
    kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
    pos += 12 + n
    if kind == b"IHDR":
        w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat.append(body)
    elif kind == b"IEND":
        break
if depth != 8 or ctype not in (2, 6) or interlace:
    sys.exit(f"report_renders_in_chromium: FAIL: unexpected PNG format depth={depth} colour type={ctype}")
if (w, h) != (1280, 2400):
    sys.exit(f"report_renders_in_chromium: FAIL: screenshot is {w}x{h}, expected 1280x2400")
bpp = 3 if ctype == 2 else 4
stride = w * bpp
raw = zlib.decompress(b"".join(idat))
prev, rows, i = bytearray(stride), [], 0
for _ in range(h):  # undo the PNG row filters
    f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
    i += 1 + stride
    if f == 1:
        for x in range(bpp, stride):
            line[x] = (line[x] + line[x - bpp]) & 255
    elif f == 2:
        line = bytearray((a + b) & 255 for a, b in zip(line, prev))
    elif f == 3:
        for x in range(stride):
            line[x] = (line[x] + (((line[x - bpp] if x >= bpp else 0) + prev[x]) >> 1)) & 255
    elif f == 4:
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    elif f != 0:
        sys.exit(f"report_renders_in_chromium: FAIL: bad PNG filter {f}")
    rows.append(line)
    prev = line

counts, total = {}, w * h
for line in rows:
    for x in range(0, stride, bpp):
        px = bytes(line[x:x + 3])
        counts[px] = counts.get(px, 0) + 1

def near(rgb, tol=28):
    return sum(n for px, n in counts.items() if max(abs(px[k] - rgb[k]) for k in range(3)) <= tol)

top = max(counts.values())
dark = sum(n for px, n in counts.items() if max(px) < 110)  # text, axes, measured lines
checks = [
    ("not one flat colour (share of pixels off the commonest colour)", 1 - top / total, 0.15),
    ("distinct colours", len(counts), 200),
    ("dark text/line pixels", dark, 15000),
    ("faulty row highlight #fef2f2", counts.get(bytes((0xfe, 0xf2, 0xf2)), 0), 5000),
    ("ROC/series blue #2563eb", near((0x25, 0x63, 0xeb)), 150),
    ("ROC/series amber #d97706", near((0xd9, 0x77, 0x06)), 150),
    ("ROC/series violet #7c3aed", near((0x7c, 0x3a, 0xed)), 150),
    ("faulty red #dc2626 (tags, markers)", near((0xdc, 0x26, 0x26)), 100),
    ("normal teal #0f766e (markers)", near((0x0f, 0x76, 0x6e)), 50),
    ("reconstructed orange #ea580c", near((0xea, 0x58, 0x0c)), 150),
]
bad = 0
for name, got, minimum in checks:
    ok = got >= minimum
    bad += not ok
    shown = f"{got:.3f}" if isinstance(got, float) else str(got)
    print(("ok: " if ok else "report_renders_in_chromium: FAIL: ") + f"screenshot {name}: {shown} (need >= {minimum})",
          file=sys.stdout if ok else sys.stderr)
sys.exit(1 if bad else 0)
PY
fi

if ((failures)); then
  echo "report_renders_in_chromium: $failures check(s) failed; see $out" >&2
  exit 1
fi
echo "report_renders_in_chromium: all checks passed ($(wc -c <"$out/sample.html") byte report, screenshot $out/out.png)"
