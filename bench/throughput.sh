#!/usr/bin/env bash
# Throughput benchmark, edgeqc against PyTorch in the same run: runs build/edgeqc_throughput and
# bench/torch_throughput.py with the same network, threads and seconds per figure, then prints a markdown table of
# both engines' figures and the ratio edgeqc / PyTorch. Copy it into bench/RESULTS.md with the machine and the date.
#
# Usage: bench/throughput.sh [ARCH]          (default: edgeqc's default network)
# Environment (defaults in brackets; relative paths are relative to the repository root):
#   THREADS [2]  SECONDS [10] (minimum measuring time per figure)  BUILD [build]  PYTHON [/usr/bin/python3]
# Run it on an otherwise idle machine: with 2 threads on 2 cores, any other load distorts both engines' figures.
set -euo pipefail

# SECONDS is also bash's own counter of seconds since the shell started (always set, 0 when not given), so the value
# is read from the environment this script was started with.
seconds=$(printenv SECONDS || echo 10)
THREADS=${THREADS:-2}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
arch=${1:-c32bn-p-c64bn-p-c512bn-p-c512bn-p-c256bn-p-fc}

cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() { echo "throughput.sh: $*" >&2; exit 1; }
[[ $seconds =~ ^[0-9]+([.][0-9]+)?$ ]] || fail "SECONDS must be a number of seconds, not '$seconds'"
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || fail "THREADS must be a positive whole number, not '$THREADS'"
[ -x "$BUILD/edgeqc_throughput" ] ||
    fail "no $BUILD/edgeqc_throughput; build it (cmake --build $BUILD --target edgeqc_throughput) or set BUILD"
command -v "$PYTHON" > /dev/null || fail "no Python at '$PYTHON'; set PYTHON to one with torch (Debian: python3-torch)"

outputs=$(mktemp -d)
trap 'rm -rf "$outputs"' EXIT

# Figures from different machines are told apart by their CPU and the instruction sets the kernels could use.
echo "== machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; SIMD:" \
    "$(grep -m1 -o -w 'avx2\|fma\|avx512[a-z_0-9]*\|avx_vnni\|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "== edgeqc ($THREADS threads, $seconds s per figure)"
OMP_NUM_THREADS=$THREADS "$BUILD/edgeqc_throughput" "$arch" "$seconds" | tee "$outputs/edgeqc.txt"
# PyTorch's training and inference run in separate processes, so the inference figures do not start in a process
# that already holds training's autograd buffers and Adam state.
for figure in train infer; do
    echo "== PyTorch $figure ($THREADS threads, $seconds s per figure)"
    "$PYTHON" bench/torch_throughput.py --arch "$arch" --threads "$THREADS" --seconds "$seconds" --figure "$figure" |
        tee "$outputs/torch_$figure.txt"
done

echo
echo "$arch, $THREADS threads, $seconds s per figure"
echo
# Figure lines are `key value  (note)`; the header lines' second word is not a number, so they are skipped.
awk '
    FNR == 1 { engine = (FILENAME ~ /edgeqc\.txt$/) ? "edgeqc" : "torch" }
    $2 ~ /^[0-9]+([.][0-9]+)?$/ { value[engine, $1] = $2 }
    END {
        split("train_img_per_s infer_b32_img_per_s infer_b1_img_per_s peak_rss_mib_after_training", keys, " ")
        print "| figure | edgeqc | PyTorch | edgeqc / PyTorch |"
        print "|---|---:|---:|---:|"
        for (i = 1; i <= 4; ++i) {
            key = keys[i]
            edgeqc = (("edgeqc", key) in value) ? value["edgeqc", key] : "n/a"
            torch = (("torch", key) in value) ? value["torch", key] : "n/a"
            ratio = (edgeqc != "n/a" && torch != "n/a" && torch > 0) ? sprintf("%.2f", edgeqc / torch) : "n/a"
            print "| " key " | " edgeqc " | " torch " | " ratio " |"
        }
        print ""
        print "img/s: a ratio above 1 means edgeqc is faster; peak RSS: a ratio below 1 means edgeqc uses less memory."
        if (("edgeqc", "train_bf16_img_per_s") in value)
            printf "edgeqc bf16 training (--precision bf16): %s img/s, %.2fx edgeqc f32 training, %.2fx PyTorch (f32) training\n",
                value["edgeqc", "train_bf16_img_per_s"], value["edgeqc", "train_bf16_img_per_s"] / value["edgeqc", "train_img_per_s"],
                value["edgeqc", "train_bf16_img_per_s"] / value["torch", "train_img_per_s"]
    }
' "$outputs/edgeqc.txt" "$outputs/torch_train.txt" "$outputs/torch_infer.txt"
