#!/usr/bin/env bash
# Recipe ablation (issue 4): trains edgeqc's default network on real imbalanced sets with and without class
# balancing (oversampling) and augmentation, evaluates each on the set's test split and prints a markdown table
# of test accuracy, macro-F1 and balanced accuracy. Copy the table into bench/RESULTS.md with the machine and date.
#
# Usage: bench/ablation.sh [SET...]    (default: magnetic_tile pblm_lpbf)
# Environment (defaults in brackets): EPOCHS [20]  THREADS [2]  SEED [1]  DATASETS [../shared/datasets]
#   BUILD [build]  OUT [bench/out/ablation]  ARMS ["baseline balance augment both"]  EXTRA (arguments for every arm)
# The arms: baseline = the default recipe; balance = --balance oversample; augment = --augment; both = both;
# weights = --balance weights; flips, rotation, zoom, translate, brightness and noise = that one part of --augment
# alone, at its --augment default. Every arm gets the same number of optimizer steps: an oversampled epoch holds
# K x (largest class) images instead of all of them once, so the oversampled arms run proportionally fewer
# epochs (EPOCHS x plain / oversampled, rounded; the table shows each arm's epochs and images per epoch).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

EPOCHS=${EPOCHS:-20}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
DATASETS=${DATASETS:-../shared/datasets}
BUILD=${BUILD:-build}
OUT=${OUT:-bench/out/ablation}
read -r -a arms <<< "${ARMS:-baseline balance augment both}"
read -r -a extra <<< "${EXTRA:-}"
if [ "$#" -gt 0 ]; then sets=("$@"); else sets=(magnetic_tile pblm_lpbf); fi

arm_arguments() {
    case "$1" in
        baseline) ;;
        balance) echo "--balance oversample" ;;
        augment) echo "--augment" ;;
        both) echo "--balance oversample --augment" ;;
        weights) echo "--balance weights" ;;
        flips) echo "--hflip --vflip" ;;
        rotation) echo "--rotation 20" ;;
        zoom) echo "--zoom 0.1" ;;
        translate) echo "--translate 0.05" ;;
        brightness) echo "--brightness 0.2" ;;
        noise) echo "--noise 0.02" ;;
        *) echo "unknown arm '$1' (use baseline, balance, augment, both, weights or one augmentation part:" \
                "flips, rotation, zoom, translate, brightness, noise)" >&2; exit 2 ;;
    esac
}

mkdir -p "$OUT"
for set in "${sets[@]}"; do
    data="$DATASETS/$set"
    if [ ! -d "$data" ]; then
        echo "skip $set: no folder $data"
        continue
    fi
    # Training images per epoch without and with oversampling, from the folder counts and the trainer's split
    # (floor(0.2 n) of each class's n images are held out for validation).
    oversampled_epochs=$(/usr/bin/python3 - "$data/train" "$EPOCHS" <<'PY'
import os, sys
root, epochs = sys.argv[1], int(sys.argv[2])
def images(folder):
    return sum(1 for _, dirs, files in os.walk(folder) for f in files
               if not f.startswith(".") and os.path.splitext(f)[1].lower() in {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pnm"})
train = [n - int(0.2 * n) for n in (images(os.path.join(root, c)) for c in sorted(os.listdir(root)) if not c.startswith("."))]
print(max(1, round(epochs * sum(train) / (len(train) * max(train)))))
PY
)
    for arm in "${arms[@]}"; do
        read -r -a arm_args <<< "$(arm_arguments "$arm")"
        epochs=$EPOCHS
        case "$arm" in balance|both) epochs=$oversampled_epochs ;; esac
        name="$OUT/$set.$arm"
        rm -f "$name".{eqc,last.eqc,log.json,log.csv,eval.json,train.txt}
        echo "== $set / $arm: edgeqc train --epochs $epochs ${arm_args[*]} ${extra[*]}"
        "$BUILD/edgeqc" train "$data/train" --out "$name.eqc" --epochs "$epochs" --threads "$THREADS" --seed "$SEED" \
            "${arm_args[@]}" "${extra[@]}" 2>&1 | tee "$name.train.txt"
        "$BUILD/edgeqc" eval "$name.eqc" "$data/test" --threads "$THREADS" --json > "$name.eval.json"
    done
done

echo
echo "epochs $EPOCHS, threads $THREADS, seed $SEED, extra: ${EXTRA:-(none)}"
echo
/usr/bin/python3 - "$OUT" "${#arms[@]}" "${arms[@]}" "${sets[@]}" <<'PY'
import json, os, re, sys
out, count = sys.argv[1], int(sys.argv[2])
arms, sets = sys.argv[3:3 + count], sys.argv[3 + count:]
print("| set | arm | test accuracy | test macro-F1 | test balanced accuracy | epochs | images per epoch | kept epoch |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for s in sets:
    for arm in arms:
        base = os.path.join(out, s + "." + arm)
        try:
            ev = json.load(open(base + ".eval.json"))
            text = open(base + ".train.txt").read()
        except (OSError, ValueError):
            continue
        per_epoch = re.search(r"every class drawn (\d+) times", text)
        split = re.search(r"split: (\d+) training", text)
        classes = len(ev["per_class"])
        images = int(per_epoch.group(1)) * classes if per_epoch else int(split.group(1)) if split else 0
        kept = re.search(r"at epoch (\d+)", text)
        epochs = len(re.findall(r"^epoch +\d+/", text, re.M))
        print(f"| {s} | {arm} | {ev['accuracy']:.4f} | {ev['macro_f1']:.4f} | {ev['balanced_accuracy']:.4f} | {epochs} | {images} | "
              f"{kept.group(1) if kept else '?'} |")
PY
