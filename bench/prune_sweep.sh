#!/usr/bin/env bash
# Pruning sweep on real sets: trains the default network on <set>/train (or reuses OUT/<set>/base.eqc), prunes it
# with `edgeqc prune --target-flops` in STEPS steps (each fine-tuned, each step's model kept: one pruning level per
# step), then for the unpruned model and every level: test accuracy and macro-F1 in float and int8 (quantized on
# <set>/train), file sizes, and batch-1 speed of the level's architecture in float and int8 (build/edgeqc_quantized:
# float and int8 plans in one run; speed does not depend on the weights). A row "0, N more epochs" gives the unpruned
# model trained as many more epochs as the pruned ones were fine-tuned, in the same rounds. The latencies are measured last, in one
# pass, after all training: run it on an otherwise idle machine. Prints a markdown table per set.
#
# Usage: bench/prune_sweep.sh [SET...]          (default: neu_steel magnetic_tile)
# Environment (defaults in brackets):
#   EPOCHS [20] (base training)  STEPS [5]  FINETUNE [3] (epochs per step)  TARGET_FLOPS [0.1]  CRITERION [auto]
#   THREADS [2]  SEED [1]  SECONDS [3] (minimum measuring time per speed figure)  DATASETS [../shared/datasets]
#   BUILD [build]  OUT [bench/out/prune]  PYTHON [/usr/bin/python3]
set -euo pipefail

EPOCHS=${EPOCHS:-20}
STEPS=${STEPS:-5}
FINETUNE=${FINETUNE:-3}
TARGET_FLOPS=${TARGET_FLOPS:-0.1}
CRITERION=${CRITERION:-auto}
THREADS=${THREADS:-2}
SEED=${SEED:-1}
seconds=$(printenv SECONDS || echo 3)  # bash's own SECONDS counts up from 0: read the value given
DATASETS=${DATASETS:-../shared/datasets}
BUILD=${BUILD:-build}
OUT=${OUT:-bench/out/prune}
PYTHON=${PYTHON:-/usr/bin/python3}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
fail() { echo "prune_sweep.sh: $*" >&2; exit 1; }
for binary in edgeqc edgeqc_quantized; do
    [ -x "$BUILD/$binary" ] || fail "no $BUILD/$binary; build the project with -DEDGEQC_BUILD_BENCHMARKS=ON or set BUILD"
done
if [ "$#" -gt 0 ]; then sets=("$@"); else sets=(neu_steel magnetic_tile); fi
edgeqc() { "$BUILD/edgeqc" "$@"; }
json() { "$PYTHON" -c "import json, sys; d = json.load(open(sys.argv[1])); print($2)" "$1"; }

for set in "${sets[@]}"; do
    data="$DATASETS/$set"
    [ -d "$data/train" ] && [ -d "$data/test" ] || fail "no $data/train and $data/test"
    out="$OUT/$set"
    mkdir -p "$out"
    base="$out/base.eqc"
    if [ ! -f "$base" ]; then
        echo "== $set: training the unpruned model ($EPOCHS epochs)"
        edgeqc train "$data/train" --out "$base" --epochs "$EPOCHS" --seed "$SEED" --threads "$THREADS" > "$out/base.txt"
    fi
    echo "== $set: pruning to $TARGET_FLOPS of the FLOPs in $STEPS steps, $FINETUNE fine-tuning epochs each"
    edgeqc prune "$base" "$data/train" --out "$out/pruned.eqc" --target-flops "$TARGET_FLOPS" --steps "$STEPS" \
        --finetune-epochs "$FINETUNE" --criterion "$CRITERION" --seed "$SEED" --threads "$THREADS" --json \
        > "$out/prune.json" 2> "$out/prune.log"
    # The unpruned model given the same extra training as the pruned ones (STEPS rounds of FINETUNE epochs from the
    # previous round's model, as prune fine-tunes), so that the table compares pruning, not training for longer.
    echo "== $set: the unpruned model, $STEPS rounds of $FINETUNE more epochs"
    previous="$base"
    for ((round = 1; round <= STEPS; ++round)); do
        edgeqc train "$data/train" --out "$out/unpruned.round$round.eqc" --init "$previous" --epochs "$FINETUNE" \
            --seed "$SEED" --threads "$THREADS" > "$out/unpruned.round$round.txt" 2>&1
        previous="$out/unpruned.round$round.eqc"
    done
    edgeqc eval "$previous" "$data/test" --threads "$THREADS" --json > "$out/unpruned.eval.json" 2> /dev/null
    levels=$(json "$out/prune.json" "len(d['steps'])")
    for ((level = 0; level < levels; ++level)); do
        model=$(json "$out/prune.json" "d['steps'][$level]['model']")
        edgeqc quantize "$model" "$data/train" --out "$out/level$level.int8.eqc" --threads "$THREADS" > /dev/null
        edgeqc eval "$model" "$data/test" --threads "$THREADS" --json > "$out/level$level.eval.json" 2> /dev/null
        edgeqc eval "$out/level$level.int8.eqc" "$data/test" --threads "$THREADS" --json \
            > "$out/level$level.int8.eval.json" 2> /dev/null
    done
done

for set in "${sets[@]}"; do
    out="$OUT/$set"
    levels=$(json "$out/prune.json" "len(d['steps'])")
    height_width=$(json "$out/prune.json" "d['input']")
    echo
    echo "$set: \`edgeqc prune --target-flops $TARGET_FLOPS --steps $STEPS --finetune-epochs $FINETUNE --criterion" \
         "$CRITERION\`, $THREADS threads, input $height_width, $(lscpu | sed -n 's/^Model name: *//p' | head -1)"
    echo
    echo "| level | filters | parameters | MFLOP | fp32 file (KiB) | fp32 acc | fp32 macro-F1 | fp32 b1 ms (speed-up) |" \
         "int8 file (KiB) | int8 acc | int8 macro-F1 | int8 b1 ms (speed-up vs unpruned fp32) |"
    echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    base_ms=""
    for ((level = 0; level < levels; ++level)); do
        step="d['steps'][$level]"
        arch=$(json "$out/prune.json" "$step['architecture']")
        model=$(json "$out/prune.json" "$step['model']")
        speeds=$(OMP_NUM_THREADS=$THREADS "$BUILD/edgeqc_quantized" "$arch" "$seconds" "$height_width" |
                 awk '$1 == "infer_b1_img_per_s" { print 1000 / $2, 1000 / $3 }')
        read -r float_ms int8_ms <<< "$speeds"
        base_ms=${base_ms:-$float_ms}
        "$PYTHON" - "$out/prune.json" "$level" "$model" "$out/level$level.int8.eqc" "$out/level$level.eval.json" \
            "$out/level$level.int8.eval.json" "$float_ms" "$int8_ms" "$base_ms" << 'EOF'
import json, os, sys
prune, level, model, int8, evaluation, int8_evaluation = sys.argv[1:7]
float_ms, int8_ms, base_ms = map(float, sys.argv[7:10])
step = json.load(open(prune))["steps"][int(level)]
f, q = json.load(open(evaluation)), json.load(open(int8_evaluation))
print(f"| {level} | {'-'.join(map(str, step['filters']))} | {step['parameters']} | {step['flops'] / 1e6:.1f} | "
      f"{os.path.getsize(model) / 1024:.0f} | {f['accuracy']:.4f} | {f['macro_f1']:.4f} | "
      f"{float_ms:.3f} ({base_ms / float_ms:.2f}x) | {os.path.getsize(int8) / 1024:.0f} | {q['accuracy']:.4f} | "
      f"{q['macro_f1']:.4f} | {int8_ms:.3f} ({base_ms / int8_ms:.2f}x) |")
EOF
    done
    "$PYTHON" -c "import json, sys; f = json.load(open(sys.argv[1])); print(f'| 0, {sys.argv[2]} more epochs | | | | | ' +
                  f'{f[\"accuracy\"]:.4f} | {f[\"macro_f1\"]:.4f} | | | | | |')" "$out/unpruned.eval.json" $((STEPS * FINETUNE))
done
