#!/usr/bin/env bash
# Throughput benchmark, edgeqc against PyTorch: runs build/edgeqc_throughput and bench/torch_throughput.py with the
# same network, threads and seconds per figure, in ROUNDS rounds that alternate the two engines figure kind by
# figure kind (training, then inference; which engine goes first alternates too), and prints a markdown table of
# each engine's median figures and the median (and range) of the per-round ratios edgeqc / PyTorch. The machines
# here drift in speed by tens of percent within minutes; a ratio of figures measured seconds apart, taken over
# several rounds, holds where one run of each engine does not. Copy the table into bench/RESULTS.md with the machine
# and the date.
#
# Usage: bench/throughput.sh [ARCH]          (default: edgeqc's default network)
# Environment (defaults in brackets; relative paths are relative to the repository root):
#   THREADS [2]  SECONDS [10] (minimum measuring time per figure)  ROUNDS [3]  BUILD [build]  PYTHON [/usr/bin/python3]
# Run it on an otherwise idle machine: with 2 threads on 2 cores, any other load distorts both engines' figures.
set -euo pipefail

# SECONDS is also bash's own counter of seconds since the shell started (always set, 0 when not given), so the value
# is read from the environment this script was started with.
seconds=$(printenv SECONDS || echo 10)
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
arch=${1:-c32bn-p-c64bn-p-c512bn-p-c512bn-p-c256bn-p-fc}

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() { echo "throughput.sh: $*" >&2; exit 1; }
[[ $seconds =~ ^[0-9]+([.][0-9]+)?$ ]] || fail "SECONDS must be a number of seconds, not '$seconds'"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || fail "THREADS must be a positive whole number, not '$THREADS'"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || fail "ROUNDS must be a positive whole number, not '$ROUNDS'"
[ -x "$BUILD/edgeqc_throughput" ] ||
    fail "no $BUILD/edgeqc_throughput; build it (cmake --build $BUILD --target edgeqc_throughput) or set BUILD"
command -v "$PYTHON" > /dev/null || fail "no Python at '$PYTHON'; set PYTHON to one with torch (Debian: python3-torch)"

outputs=$(mktemp -d)
trap 'rm -rf "$outputs"' EXIT

# Figures from different machines are told apart by their CPU and the instruction sets the kernels could use.
echo "== machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; SIMD:" \
    "$(grep -m1 -o -w 'avx2\|fma\|avx512[a-z_0-9]*\|avx_vnni\|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
# One figure kind of one engine in one round: its output goes to the terminal and to ENGINE_KIND_ROUND.txt.
measure() {
    local engine=$1 kind=$2 round=$3
    echo "== round $round: $engine $kind ($THREADS threads, $seconds s per figure)"
    if [ "$engine" = edgeqc ]; then
        OMP_NUM_THREADS=$THREADS "$BUILD/edgeqc_throughput" --figure "$kind" "$arch" "$seconds"
    else
        # PyTorch's training and inference run in separate processes, so the inference figures do not start in a
        # process that already holds training's autograd buffers and Adam state.
        "$PYTHON" bench/torch_throughput.py --arch "$arch" --threads "$THREADS" --seconds "$seconds" --figure "$kind"
    fi | tee "$outputs/${engine}_${kind}_${round}.txt"
}
for round in $(seq 1 "$ROUNDS"); do
    for kind in train infer; do
        if (( round % 2 )); then measure edgeqc $kind "$round"; measure torch $kind "$round"
        else measure torch $kind "$round"; measure edgeqc $kind "$round"; fi
    done
done

echo
echo "$arch, $THREADS threads, $seconds s per figure, $ROUNDS rounds"
echo
# Figure lines are `key value  (note)`; header lines' second word is not a number, so they are skipped.
"$PYTHON" - "$outputs" "$ROUNDS" <<'PY'
import re, statistics, sys
from pathlib import Path

outputs, rounds = Path(sys.argv[1]), int(sys.argv[2])
value = {}  # (engine, key, round) -> figure
for path in outputs.glob("*.txt"):
    engine, _, round_ = path.stem.split("_")
    for line in path.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and re.fullmatch(r"[0-9]+([.][0-9]+)?", words[1]):
            value[engine, words[0], int(round_)] = float(words[1])

def figures(engine, key):
    return [value[engine, key, r] for r in range(1, rounds + 1) if (engine, key, r) in value]

def ratios(numerator, denominator):
    return [value[numerator + (r,)] / value[denominator + (r,)] for r in range(1, rounds + 1)
            if numerator + (r,) in value and denominator + (r,) in value and value[denominator + (r,)] > 0]

def cell(values, digits):
    if not values:
        return "n/a"
    text = f"{statistics.median(values):.{digits}f}"
    return text + (f" ({min(values):.{digits}f}-{max(values):.{digits}f})" if len(values) > 1 else "")

print("| figure | edgeqc, median | PyTorch, median | edgeqc / PyTorch, median of the rounds (range) |")
print("|---|---:|---:|---:|")
for key in ("train_img_per_s", "infer_b32_img_per_s", "infer_b1_img_per_s", "peak_rss_mib_after_training"):
    print(f"| {key} | {cell(figures('edgeqc', key), 1)} | {cell(figures('torch', key), 1)} | "
          f"{cell(ratios(('edgeqc', key), ('torch', key)), 2)} |")
print()
print("img/s: a ratio above 1 means edgeqc is faster; peak RSS: a ratio below 1 means edgeqc uses less memory.")
if figures("edgeqc", "train_bf16_img_per_s"):
    print(f"edgeqc bf16 training (--precision bf16): {cell(figures('edgeqc', 'train_bf16_img_per_s'), 1)} img/s, "
          f"{cell(ratios(('edgeqc', 'train_bf16_img_per_s'), ('edgeqc', 'train_img_per_s')), 2)}x edgeqc f32 "
          f"training, {cell(ratios(('edgeqc', 'train_bf16_img_per_s'), ('torch', 'train_img_per_s')), 2)}x PyTorch "
          "(f32) training")
PY
