#!/usr/bin/env bash
# Accuracy and time of DCT-scaled JPEG decoding (edgeqc-edge's camera frames) on the real sets' test images, as they
# are and enlarged 2x and 4x, with the decoded frame kept at 1x and at 2x the model's input size: prints a markdown
# table to copy into bench/RESULTS.md. Trains a float model per set when MODELS has none (EPOCHS, seed 1; the same
# folder as bench/quantize_accuracy.sh, so their models are shared).
#
# Usage: bench/decode_scaling.sh [SET...]   (default: neu_steel magnetic_tile pblm_lpbf; in713c_slm_defects is PNG)
# Environment: MODELS [bench/out/quantize]  EPOCHS [10]  THREADS [2]  DATASETS [../shared/datasets]  BUILD [build]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODELS=${MODELS:-bench/out/quantize}
EPOCHS=${EPOCHS:-10}
THREADS=${THREADS:-2}
DATASETS=${DATASETS:-../shared/datasets}
BUILD=${BUILD:-build}
for tool in edgeqc edgeqc_decode_scaling; do
    [ -x "$BUILD/$tool" ] || { echo "decode_scaling.sh: no $BUILD/$tool; build with -DEDGEQC_BUILD_BENCHMARKS=ON or set BUILD" >&2; exit 1; }
done
if [ "$#" -gt 0 ]; then sets=("$@"); else sets=(neu_steel magnetic_tile pblm_lpbf); fi
mkdir -p "$MODELS"

echo "| set | enlarged | margin | JPEGs | decoded smaller | agreement % | accuracy full % | accuracy scaled % | ms full | ms scaled |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for set in "${sets[@]}"; do
    data="$DATASETS/$set"
    if [ ! -d "$data" ]; then
        echo "skip $set: no folder $data" >&2
        continue
    fi
    model="$MODELS/$set.eqc"
    if [ ! -f "$model" ]; then
        echo "== $set: training the float model ($EPOCHS epochs)" >&2
        "$BUILD/edgeqc" train "$data/train" --out "$model" --epochs "$EPOCHS" --threads "$THREADS" --seed 1 > "$MODELS/$set.train.txt"
    fi
    for enlarge in 1 2 4; do
        for margin in 1 2; do
            echo -n "| $set "
            "$BUILD/edgeqc_decode_scaling" "$model" "$data/test" "$enlarge" "$margin"
        done
    done
done
