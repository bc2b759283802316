#!/usr/bin/env bash
# Int8 speed benchmark, in one run: edgeqc's int8 plan against its own float plan (build/edgeqc_quantized, which
# also times each conv layer) and against PyTorch's static post-training int8 model of the same network on every
# quantized backend Debian's build offers (bench/torch_quantized.py), at batch 1 and 32, in ROUNDS rounds that
# alternate which engine goes first (the machines here drift in speed within minutes, as throughput.sh says). Prints
# a markdown table of the medians and of the per-round ratios against edgeqc float and against PyTorch's fastest
# backend. Copy it into bench/RESULTS.md with the machine, the thread count and the date.
#
# Usage: bench/quantized.sh [ARCH]          (default: edgeqc's default network)
# Environment: THREADS [2]  SECONDS [5] (minimum measuring time per figure)  ROUNDS [3]  BUILD [build]
#              PYTHON [/usr/bin/python3]
# Run it on an otherwise idle machine.
set -euo pipefail

seconds=$(printenv SECONDS || echo 5)
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
arch=${1:-c32bn-p-c64bn-p-c512bn-p-c512bn-p-c256bn-p-fc}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "quantized.sh: ROUNDS must be a positive whole number, not '$ROUNDS'" >&2; exit 1; }
[ -x "$BUILD/edgeqc_quantized" ] || { echo "quantized.sh: no $BUILD/edgeqc_quantized; build the benchmarks" >&2; exit 1; }

outputs=$(mktemp -d)
trap 'rm -rf "$outputs"' EXIT
# One engine in one round: its output goes to the terminal and to ENGINE_ROUND.txt.
measure() {
    local engine=$1 round=$2
    echo "== round $round: $engine ($THREADS threads, $seconds s per figure)"
    if [ "$engine" = edgeqc ]; then
        OMP_NUM_THREADS=$THREADS "$BUILD/edgeqc_quantized" "$arch" "$seconds"
    else
        (cd bench && "$PYTHON" torch_quantized.py --arch "$arch" --threads "$THREADS" --seconds "$seconds")
    fi | tee "$outputs/${engine}_${round}.txt"
}
for round in $(seq 1 "$ROUNDS"); do
    if (( round % 2 )); then measure edgeqc "$round"; measure torch "$round"
    else measure torch "$round"; measure edgeqc "$round"; fi
done

echo
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
echo "$arch, $THREADS threads, $seconds s per figure, $ROUNDS rounds, $cpu"
echo
"$PYTHON" - "$outputs" "$ROUNDS" <<'PY'
import re, statistics, sys
from pathlib import Path

outputs, rounds = Path(sys.argv[1]), int(sys.argv[2])
edgeqc = {}  # (batch, round) -> (float img/s, int8 img/s)
torch = {}   # (batch, round) -> (img/s, backend) of the fastest backend
for path in outputs.glob("*.txt"):
    engine, round_ = path.stem.split("_")
    for line in path.read_text().splitlines():
        words = line.split()
        if engine == "edgeqc" and len(words) >= 3 and re.fullmatch(r"infer_b[0-9]+_img_per_s", words[0]):
            edgeqc[int(words[0][7:].split("_")[0]), int(round_)] = (float(words[1]), float(words[2]))
        match = re.fullmatch(r"int8_([a-z0-9]+)_b([0-9]+)_img_per_s", words[0]) if words else None
        if engine == "torch" and match and len(words) >= 2:
            key = (int(match.group(2)), int(round_))
            if key not in torch or float(words[1]) > torch[key][0]:
                torch[key] = (float(words[1]), match.group(1))

def cell(values, digits):
    if not values:
        return "n/a"
    text = f"{statistics.median(values):.{digits}f}"
    return text + (f" ({min(values):.{digits}f}-{max(values):.{digits}f})" if len(values) > 1 else "")

print("| batch | edgeqc float img/s | edgeqc int8 img/s | int8 / float | PyTorch int8 img/s (fastest backend) "
      "| edgeqc int8 / PyTorch int8 |")
print("|---:|---:|---:|---:|---:|---:|")
for batch in (1, 32):
    runs = [r for r in range(1, rounds + 1) if (batch, r) in edgeqc and (batch, r) in torch]
    floats = [edgeqc[batch, r][0] for r in runs]
    int8s = [edgeqc[batch, r][1] for r in runs]
    torches = [torch[batch, r][0] for r in runs]
    backends = "/".join(sorted({torch[batch, r][1] for r in runs})) or "no figures"
    print(f"| {batch} | {cell(floats, 1)} | {cell(int8s, 1)} | {cell([i / f for i, f in zip(int8s, floats)], 2)} "
          f"| {cell(torches, 1)} ({backends}) | {cell([i / t for i, t in zip(int8s, torches)], 2)} |")
print()
print("Medians over the rounds (range); each ratio is taken within a round, edgeqc and PyTorch measured back to back.")
PY
