#!/usr/bin/env bash
# Accuracy of int8 models against their float originals on the real sets, for every calibration method: trains a
# float model per set when MODELS has none (EPOCHS, seed 1), quantizes it with each method calibrating on the
# set's training folder, and evaluates both on the test folder with `eval --compare`; then PyTorch's own
# post-training quantization of the same float weights (bench/torch_ptq_accuracy.py) side by side. Prints a
# markdown table (top-1 agreement with the float model, accuracy and macro-F1 of both, and their differences) to
# copy into bench/RESULTS.md with the machine and the date.
#
# Usage: bench/quantize_accuracy.sh [SET...]   (default: neu_steel magnetic_tile pblm_lpbf in713c_slm_defects)
# Environment (defaults in brackets; relative paths are relative to the repository root):
#   MODELS [bench/out/quantize] (float models SET.eqc, and the int8 ones written beside them)
#   EPOCHS [10]  THREADS [2]  IMAGES [500]  DATASETS [../shared/datasets]  BUILD [build]
#   PYTHON [/usr/bin/python3] (with torch: Debian's python3-torch; without it the PyTorch rows are left out)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

MODELS=${MODELS:-bench/out/quantize}
EPOCHS=${EPOCHS:-10}
THREADS=${THREADS:-2}
IMAGES=${IMAGES:-500}
DATASETS=${DATASETS:-../shared/datasets}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
[ -x "$BUILD/edgeqc" ] || { echo "quantize_accuracy.sh: no $BUILD/edgeqc; build it or set BUILD" >&2; exit 1; }
if [ "$#" -gt 0 ]; then sets=("$@"); else sets=(neu_steel magnetic_tile pblm_lpbf in713c_slm_defects); fi
mkdir -p "$MODELS"

rows=()
for set in "${sets[@]}"; do
    data="$DATASETS/$set"
    if [ ! -d "$data" ]; then
        echo "skip $set: no folder $data"
        continue
    fi
    float="$MODELS/$set.eqc"
    if [ ! -f "$float" ]; then
        echo "== $set: training the float model ($EPOCHS epochs)"
        "$BUILD/edgeqc" train "$data/train" --out "$float" --epochs "$EPOCHS" --threads "$THREADS" --seed 1 > "$MODELS/$set.train.txt"
    fi
    for method in kl percentile mse minmax; do
        int8="$MODELS/$set.$method.eqc"
        echo "== $set: quantize --method $method"
        "$BUILD/edgeqc" quantize "$float" "$data/train" --out "$int8" --method "$method" --images "$IMAGES" \
            --threads "$THREADS" --json 2> /dev/null > "$MODELS/$set.$method.quantize.json"
        "$BUILD/edgeqc" eval "$float" "$data/test" --threads "$THREADS" --json 2> /dev/null > "$MODELS/$set.float.eval.json"
        "$BUILD/edgeqc" eval "$int8" "$data/test" --threads "$THREADS" --compare "$float" --json 2> /dev/null \
            > "$MODELS/$set.$method.eval.json"
        rows+=("$(python3 - "$MODELS/$set.float.eval.json" "$MODELS/$set.$method.eval.json" "$set" "$method" <<'PY'
import json, sys
f, q = (json.load(open(p)) for p in sys.argv[1:3])
c = q["compare"]
print(f"| {sys.argv[3]} | {sys.argv[4]} | {c['images']} | {100 * c['top1_agreement']:.2f} % | "
      f"{f['accuracy']:.4f} | {q['accuracy']:.4f} | {100 * c['accuracy_delta']:+.2f} | "
      f"{f['macro_f1']:.4f} | {q['macro_f1']:.4f} | {c['macro_f1_delta']:+.4f} |")
PY
)")
    done
    if "$PYTHON" -c "import torch" 2> /dev/null; then
        echo "== $set: PyTorch post-training quantization of the same weights"
        float_path=$(realpath "$float") data_path=$(realpath "$data")
        rows+=("$(cd bench && "$PYTHON" torch_ptq_accuracy.py "$float_path" "$data_path" --threads "$THREADS" \
            --images "$IMAGES")")
    fi
done

echo
echo "| set | method | test images | top-1 agreement | float accuracy | int8 accuracy | accuracy change (points) | float macro-F1 | int8 macro-F1 | macro-F1 change |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
