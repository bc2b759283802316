#!/usr/bin/env bash
# Int8 speed benchmark, in one run: edgeqc's int8 plan against its own float plan (build/edgeqc_quantized, which
# also times each conv layer) and against PyTorch's static post-training int8 model of the same network on every
# quantized backend Debian's build offers (bench/torch_quantized.py), at batch 1 and 32. Prints a markdown table
# with the ratios against edgeqc float and against PyTorch's fastest backend. Copy it into bench/RESULTS.md with
# the machine, the thread count and the date.
#
# Usage: bench/quantized.sh [ARCH]          (default: edgeqc's default network)
# Environment: THREADS [2]  SECONDS [5] (minimum measuring time per figure)  BUILD [build]  PYTHON [/usr/bin/python3]
# Run it on an otherwise idle machine.
set -euo pipefail

seconds=$(printenv SECONDS || echo 5)
THREADS=${THREADS:-2}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
arch=${1:-c32bn-p-c64bn-p-c512bn-p-c512bn-p-c256bn-p-fc}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ -x "$BUILD/edgeqc_quantized" ] || { echo "quantized.sh: no $BUILD/edgeqc_quantized; build the benchmarks" >&2; exit 1; }

outputs=$(mktemp -d)
trap 'rm -rf "$outputs"' EXIT
echo "== edgeqc ($THREADS threads, $seconds s per figure)"
OMP_NUM_THREADS=$THREADS "$BUILD/edgeqc_quantized" "$arch" "$seconds" | tee "$outputs/edgeqc.txt"
echo "== PyTorch int8 ($THREADS threads, $seconds s per figure)"
(cd bench && "$PYTHON" torch_quantized.py --arch "$arch" --threads "$THREADS" --seconds "$seconds") | tee "$outputs/torch.txt"

echo
echo "$arch, $THREADS threads, $seconds s per figure, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo
awk '
    FNR == 1 { engine = (FILENAME ~ /edgeqc\.txt$/) ? "edgeqc" : "torch" }
    engine == "edgeqc" && $1 ~ /^infer_b/ { batch = substr($1, 8) + 0; float_[batch] = $2; int8[batch] = $3 }
    engine == "torch" && $1 ~ /^int8_.*_img_per_s$/ {
        split($1, part, "_"); batch = substr(part[3], 2) + 0
        if ($2 + 0 > best[batch]) { best[batch] = $2 + 0; backend[batch] = part[2] }
    }
    END {
        print "| batch | edgeqc float img/s | edgeqc int8 img/s | int8 / float | PyTorch int8 img/s (fastest backend) | edgeqc int8 / PyTorch int8 |"
        print "|---:|---:|---:|---:|---:|---:|"
        split("1 32", batches, " ")
        for (i = 1; i <= 2; ++i) {
            b = batches[i]
            printf "| %d | %.1f | %.1f | %.2f | %.1f (%s) | %.2f |\n", b, float_[b], int8[b], int8[b] / float_[b],
                   best[b], backend[b], (best[b] > 0 ? int8[b] / best[b] : 0)
        }
    }' "$outputs/edgeqc.txt" "$outputs/torch.txt"
