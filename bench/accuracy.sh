#!/usr/bin/env bash
# Accuracy benchmark: trains and evaluates edgeqc and the PyTorch reference (bench/torch_ref.py) on the real
# defect-image sets, then prints a markdown table of test accuracy, macro-F1 and seconds per epoch for both.
# Copy the table into bench/RESULTS.md ("Accuracy on real data") together with the machine and the date.
#
# Usage: bench/accuracy.sh [SET...]          (default sets: neu_steel magnetic_tile in713c_slm_defects)
# Environment (defaults in brackets; relative paths are relative to the repository root):
#   EPOCHS [30]  THREADS [2]  SEED [1]  DATASETS [../shared/datasets]  BUILD [build]  OUT [bench/out]
#   PYTHON [/usr/bin/python3]
#   EDGEQC_ARGS  extra arguments for `edgeqc train`, e.g. a different --arch or --precision bf16
#   TORCH [1]    0 skips the PyTorch reference (edgeqc against edgeqc, e.g. --precision bf16 against f32)
#   TORCH_ARGS   extra arguments for torch_ref.py; they come last, so they override the recipe below
# torch_ref.py defaults to a constant learning rate without warm-up, whereas edgeqc defaults to one warm-up
# epoch and cosine decay, so the script passes edgeqc's defaults to torch_ref.py explicitly (TORCH_RECIPE).
# The paper's exact network on both sides:
#   EDGEQC_ARGS="--arch c32-p-c64-p-c512-p-c512-p-c256-p-fc --init torch --warmup-epochs 0 --schedule constant" \
#   TORCH_ARGS="$EDGEQC_ARGS" bench/accuracy.sh magnetic_tile
# Outputs per set in $OUT: SET.eqc, SET.log.json/.csv (edgeqc train log), SET.eval.json, SET.torch.json and the
# console logs SET.train.txt, SET.torch.txt. Earlier outputs of a set are deleted before it is run again.
# One seed cannot separate the engines on a small test set: run several (SEED=N OUT=bench/out/seedN ...) and compare
# them with bench/seed_compare.py SET bench/out/seed*.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

EPOCHS=${EPOCHS:-30}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
DATASETS=${DATASETS:-../shared/datasets}
BUILD=${BUILD:-build}
OUT=${OUT:-bench/out}
PYTHON=${PYTHON:-/usr/bin/python3}
TORCH=${TORCH:-1}
TORCH_RECIPE=${TORCH_RECIPE:---warmup-epochs 1 --schedule cosine}
read -r -a edgeqc_args <<< "${EDGEQC_ARGS:-}"
read -r -a torch_recipe <<< "$TORCH_RECIPE"
read -r -a torch_args <<< "${TORCH_ARGS:-}"

if [ "$#" -gt 0 ]; then sets=("$@"); else sets=(neu_steel magnetic_tile in713c_slm_defects); fi

mkdir -p "$OUT"

seconds_since() { awk -v start="$1" -v now="$EPOCHREALTIME" 'BEGIN { printf "%.1f", now - start }'; }

ran=()
for set in "${sets[@]}"; do
    data="$DATASETS/$set"
    if [ ! -d "$data" ]; then
        echo "skip $set: no folder $data"
        continue
    fi
    rm -f "$OUT/$set".{eqc,last.eqc,log.json,log.csv,eval.json,torch.json,train.txt,torch.txt}

    echo "== $set: edgeqc train ($EPOCHS epochs, $THREADS threads) ${EDGEQC_ARGS:-}"
    start=$EPOCHREALTIME
    "$BUILD/edgeqc" train "$data/train" --out "$OUT/$set.eqc" --epochs "$EPOCHS" --threads "$THREADS" --seed "$SEED" \
        "${edgeqc_args[@]}" 2>&1 | tee "$OUT/$set.train.txt"
    echo "== $set: edgeqc train took $(seconds_since "$start") s"

    echo "== $set: edgeqc eval"
    start=$EPOCHREALTIME
    # `edgeqc eval --json` prints the metrics as JSON on stdout.
    "$BUILD/edgeqc" eval "$OUT/$set.eqc" "$data/test" --threads "$THREADS" --json > "$OUT/$set.eval.json"
    echo "== $set: edgeqc eval took $(seconds_since "$start") s"

    if [ "$TORCH" != 0 ]; then
        echo "== $set: torch_ref.py ($EPOCHS epochs, $THREADS threads) $TORCH_RECIPE ${TORCH_ARGS:-}"
        start=$EPOCHREALTIME
        "$PYTHON" bench/torch_ref.py "$data" --epochs "$EPOCHS" --threads "$THREADS" --seed "$SEED" --json "$OUT/$set.torch.json" \
            "${torch_recipe[@]}" "${torch_args[@]}" 2>&1 | tee "$OUT/$set.torch.txt"
        echo "== $set: torch_ref.py took $(seconds_since "$start") s"
    fi
    ran+=("$set")
done

echo
echo "epochs $EPOCHS, threads $THREADS, seed $SEED, edgeqc args: ${EDGEQC_ARGS:-(defaults)}, torch args: $TORCH_RECIPE ${TORCH_ARGS:-}"
echo
"$PYTHON" -c '
import json, os, sys

out, sets = sys.argv[1], sys.argv[2:]

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def metric(data, *keys, digits=4):
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return "n/a"
        data = data[key]
    return "%.*f" % (digits, data) if isinstance(data, (int, float)) else "n/a"

def edgeqc_epoch_seconds(log):
    epochs = log.get("epochs") if isinstance(log, dict) else None
    if not epochs:
        return "n/a"
    return "%.2f" % (sum(e["seconds"] for e in epochs) / len(epochs))

print("| set | edgeqc acc | edgeqc macro-F1 | torch acc | torch macro-F1 | edgeqc s/epoch | torch s/epoch |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name in sets:
    ev = load(os.path.join(out, name + ".eval.json"))
    log = load(os.path.join(out, name + ".log.json"))
    th = load(os.path.join(out, name + ".torch.json"))
    cells = [name, metric(ev, "accuracy"), metric(ev, "macro_f1"),
             metric(th, "test", "accuracy"), metric(th, "test", "macro_f1"),
             edgeqc_epoch_seconds(log), metric(th, "timing", "mean_epoch_seconds", digits=2)]
    print("| " + " | ".join(cells) + " |")
' "$OUT" "${ran[@]}"
