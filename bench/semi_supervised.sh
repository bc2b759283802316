#!/usr/bin/env bash
# Pseudo-labelling when labels are scarce (issue 4): keeps every 10th training image of a set with its label,
# hands the other 90 % to `edgeqc train --unlabelled` without labels, and compares against training on the
# labelled 10 % alone; all runs are evaluated on the set's test split. The folders are symlinks under $OUT, so no
# image is copied. Prints a markdown table for bench/RESULTS.md.
#
# The runs (RUNS picks them, in order):
#   labelled_only  the labelled 10 % alone
#   pseudo_labels  the same with --unlabelled: the model in training labels the rest from --pseudo-start on
#   continued      labelled_only's model trained STUDENT_EPOCHS more epochs on the labelled images (--init)
#   self_training  labelled_only's model as the teacher: the same continuation with --unlabelled from epoch 1
# The last two need labelled_only's model and differ only in the unlabelled images, so their difference is what
# the pseudo-labels bring. Before the table, the teacher's guesses on the unlabelled images are scored against
# their true classes (kept in the symlink names) at several confidence thresholds.
#
# Usage: bench/semi_supervised.sh [SET]   (default neu_steel)
# Environment (defaults in brackets): EPOCHS [30]  THREADS [2]  SEED [1]  KEEP [10] (keep every KEEP-th image)
#   DATASETS [../shared/datasets]  BUILD [build]  OUT [bench/out/semi]  RUNS ["labelled_only pseudo_labels"]
#   EXTRA (arguments for the pseudo-labelling runs)  STUDENT_EPOCHS [10]  STUDENT_LR [3e-4]
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
read -r -a runs <<< "${RUNS:-labelled_only pseudo_labels}"
STUDENT_EPOCHS=${STUDENT_EPOCHS:-10}
STUDENT_LR=${STUDENT_LR:-3e-4}
set_name=${1:-neu_steel}
data="$DATASETS/$set_name"
[ -d "$data/train" ] || { echo "no folder $data/train" >&2; exit 1; }

labelled="$OUT/$set_name/labelled"
unlabelled="$OUT/$set_name/unlabelled"
rm -rf "$labelled" "$unlabelled"   # rebuilt each time; earlier runs' models stay for the continuation runs
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

teacher="$OUT/$set_name/labelled_only.eqc"
for run in "${runs[@]}"; do
    case "$run" in
        labelled_only) args=(--epochs "$EPOCHS") ;;
        pseudo_labels) args=(--epochs "$EPOCHS" --unlabelled "$unlabelled" "${extra[@]}") ;;
        continued) args=(--init "$teacher" --epochs "$STUDENT_EPOCHS" --lr "$STUDENT_LR") ;;
        self_training) args=(--init "$teacher" --epochs "$STUDENT_EPOCHS" --lr "$STUDENT_LR" --unlabelled "$unlabelled"
                             --pseudo-start 1 --pseudo-rampup 1 "${extra[@]}") ;;
        *) echo "unknown run '$run' (use labelled_only, pseudo_labels, continued or self_training)" >&2; exit 2 ;;
    esac
    case "$run" in
        continued|self_training) [ -f "$teacher" ] || { echo "$run needs $teacher: run labelled_only first" >&2; exit 1; } ;;
    esac
    name="$OUT/$set_name/$run"
    echo "== $set_name / $run"
    "$BUILD/edgeqc" train "$labelled" --out "$name.eqc" --threads "$THREADS" --seed "$SEED" "${args[@]}" 2>&1 | tee "$name.train.txt"
    "$BUILD/edgeqc" eval "$name.eqc" "$data/test" --threads "$THREADS" --json > "$name.eval.json"
done

if [ -f "$teacher" ]; then
    echo
    echo "labelled_only's guesses on the unlabelled images:"
    "$BUILD/edgeqc" predict "$teacher" "$unlabelled"/* --threads "$THREADS" --json > "$OUT/$set_name/teacher_guesses.jsonl"
    /usr/bin/python3 - "$OUT/$set_name/teacher_guesses.jsonl" <<'PY'
import json, os, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
print("| confidence >= | images | correct | precision |")
print("|---:|---:|---:|---:|")
for threshold in (0.0, 0.9, 0.95, 0.99):
    kept = [r for r in rows if r["confidence"] >= threshold]
    correct = sum(os.path.basename(r["image"]).split("__")[0] == r["class"] for r in kept)
    print(f"| {threshold} | {len(kept)} | {correct} | {correct / max(1, len(kept)):.3f} |")
PY
fi

echo
echo "$set_name: every ${KEEP}th training image labelled, epochs $EPOCHS (continuations $STUDENT_EPOCHS at lr $STUDENT_LR)," \
     "threads $THREADS, seed $SEED, extra: ${EXTRA:-(none)}"
echo
/usr/bin/python3 - "$OUT/$set_name" <<'PY'
import json, os, re, sys
out = sys.argv[1]
print("| run | test accuracy | test macro-F1 | pseudo-labelled images in the last epoch |")
print("|---|---:|---:|---:|")
for run in ("labelled_only", "pseudo_labels", "continued", "self_training"):
    try:
        ev = json.load(open(os.path.join(out, run + ".eval.json")))
        log = json.load(open(os.path.join(out, run + ".log.json")))
    except (OSError, ValueError):
        continue
    print(f"| {run} | {ev['accuracy']:.4f} | {ev['macro_f1']:.4f} | {log['epochs'][-1].get('pseudo_labelled', 0)} |")
PY
