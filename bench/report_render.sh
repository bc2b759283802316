#!/usr/bin/env bash
# Checks that edgeqc's HTML report renders in a real browser: trains a small model on synthetic data with
# --report, evaluates it with --report, screenshots both pages in headless Chromium (Debian's chromium) and
# checks each screenshot is the expected size and not blank (PIL from Debian's python3-pil).
#
# Usage: bench/report_render.sh      Environment: BUILD [build]  OUT [bench/out/report]  CHROMIUM [chromium]
# Needs: apt-get install -y chromium python3-pil
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-bench/out/report}
CHROMIUM=${CHROMIUM:-chromium}
command -v "$CHROMIUM" > /dev/null || { echo "no $CHROMIUM: apt-get install -y chromium" >&2; exit 1; }
/usr/bin/python3 -c "import PIL" 2> /dev/null || { echo "no PIL: apt-get install -y python3-pil" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT"
"$BUILD/edgeqc" synth "$OUT/train" --per-class 40 --size 40x60 --seed 1
"$BUILD/edgeqc" synth "$OUT/test" --per-class 12 --size 40x60 --seed 2
"$BUILD/edgeqc" train "$OUT/train" --out "$OUT/model.eqc" --size 40x60 --arch c8bn-p-c16bn-p-c16bn-p-fc --epochs 6 \
    --augment --report "$OUT/train.html"
"$BUILD/edgeqc" eval "$OUT/model.eqc" "$OUT/test" --report "$OUT/eval.html"

for page in train eval; do
    # --virtual-time-budget lets the page finish layout before the shot; no network is needed or used.
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,2400 \
        --virtual-time-budget=2000 --screenshot="$OUT/$page.png" "file://$(realpath "$OUT/$page.html")" 2> "$OUT/$page.chromium.log"
    /usr/bin/python3 - "$OUT/$page.png" <<'PY'
import sys
from PIL import Image, ImageStat
path = sys.argv[1]
image = Image.open(path).convert("L")
if image.size != (1200, 2400):
    sys.exit(f"{path}: screenshot is {image.size}, expected (1200, 2400)")
# A rendered report has text, charts and thumbnails: far from uniform. A blank page has stddev ~0.
stddev = ImageStat.Stat(image).stddev[0]
dark = sum(image.histogram()[:128]) / (image.size[0] * image.size[1])
if stddev < 10 or dark < 0.005:
    sys.exit(f"{path}: looks blank (stddev {stddev:.1f}, dark share {dark:.4f})")
print(f"{path}: rendered, {image.size[0]}x{image.size[1]}, grey stddev {stddev:.1f}, dark share {dark:.3f}")
PY
done
echo "reports render: $OUT/train.png $OUT/eval.png"
