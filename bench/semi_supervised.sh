#!/usr/bin/env bash
# Pseudo-labelling when labels are scarce (issue 4): keeps every 10th training image of a set with its label,
# hands the other 90 % to `edgeqc train --unlabelled` without labels, and compares against training on the
# labelled 10 % alone; both are evaluated on the set's test split. The folders are symlinks under $OUT, so no
# image is copied. Prints a markdown table for bench/RESULTS.md.
#
# Usage: bench/semi_supervised.sh [SET]   (default neu_steel)
# Environment (defaults in brackets): EPOCHS [30]  THREADS [2]  SEED [1]  KEEP [10] (keep every KEEP-th image)
#   DATASETS [../shared/datasets]  BUILD [build]  OUT [bench/out/semi]  EXTRA (arguments for both runs)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

EPOCHS=${EPOCHS:-30}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
KEEP=${KEEP:-10}
DATASETS=${DATASETS:-../shared/datasets}
BUILD=${BUILD:-build}
OUT=${OUT:-bench/out/semi}
read -r -a extra <<< "${EXTRA:-}"
set_name=${1:-neu_steel}
data="$DATASETS/$set_name"
[ -d "$data/train" ] || { echo "no folder $data/train" >&2; exit 1; }

rm -rf "$OUT/$set_name"
labelled="$OUT/$set_name/labelled"
unlabelled="$OUT/$set_name/unlabelled"
mkdir -p "$unlabelled"
for class_dir in "$data"/train/*/; do
    class=$(basename "$class_dir")
    mkdir -p "$labelled/$class"
    i=0
    while IFS= read -r image; do
        if [ $((i % KEEP)) -eq 0 ]; then
            ln -s "$(realpath "$image")" "$labelled/$class/"
        else
            ln -s "$(realpath "$image")" "$unlabelled/${class}__$(basename "$image")"
        fi
        i=$((i + 1))
    done < <(find "$class_dir" -type f ! -name '.*' | sort)
done
echo "labelled: $(find "$labelled" -type l | wc -l) images; unlabelled: $(find "$unlabelled" -type l | wc -l) images"

for run in labelled_only pseudo_labels; do
    args=()
    [ "$run" = pseudo_labels ] && args=(--unlabelled "$unlabelled")
    name="$OUT/$set_name/$run"
    echo "== $set_name / $run"
    "$BUILD/edgeqc" train "$labelled" --out "$name.eqc" --epochs "$EPOCHS" --threads "$THREADS" --seed "$SEED" \
        "${args[@]}" "${extra[@]}" 2>&1 | tee "$name.train.txt"
    "$BUILD/edgeqc" eval "$name.eqc" "$data/test" --threads "$THREADS" --json > "$name.eval.json"
done

echo
echo "$set_name: every ${KEEP}th training image labelled, epochs $EPOCHS, threads $THREADS, seed $SEED, extra: ${EXTRA:-(none)}"
echo
/usr/bin/python3 - "$OUT/$set_name" <<'PY'
import json, os, re, sys
out = sys.argv[1]
print("| run | test accuracy | test macro-F1 | pseudo-labelled images in the last epoch |")
print("|---|---:|---:|---:|")
for run in ("labelled_only", "pseudo_labels"):
    ev = json.load(open(os.path.join(out, run + ".eval.json")))
    log = json.load(open(os.path.join(out, run + ".log.json")))
    print(f"| {run} | {ev['accuracy']:.4f} | {ev['macro_f1']:.4f} | {log['epochs'][-1].get('pseudo_labelled', 0)} |")
PY
