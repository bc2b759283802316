#!/usr/bin/env bash
# The main job end to end on data edgeqc makes itself: generate a synthetic additive-manufacturing surface
# dataset, train the default network on it, evaluate on a separately generated test set, classify a few images
# (with the full tool, then with edgeqc-infer, the runtime-only binary for the edge, which also shows its memory).
# Everything goes to out/demo/. EPOCHS, PER_CLASS and THREADS may be set in the environment.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash apps/setup.sh

EPOCHS=${EPOCHS:-10}
PER_CLASS=${PER_CLASS:-200}
THREADS=${THREADS:-0}
demo=out/demo
rm -rf "$demo"
mkdir -p "$demo"

./build/edgeqc synth "$demo/train" --per-class "$PER_CLASS" --seed 1
./build/edgeqc synth "$demo/test" --per-class $((PER_CLASS / 2)) --seed 2
./build/edgeqc train "$demo/train" --out "$demo/model.eqc" --epochs "$EPOCHS" --threads "$THREADS" --seed 1
./build/edgeqc eval "$demo/model.eqc" "$demo/test" --threads "$THREADS"
./build/edgeqc predict "$demo/model.eqc" "$demo"/test/crack/crack_0000.png "$demo"/test/normal/normal_0000.png \
  "$demo"/test/spatter/spatter_0000.png
./build/edgeqc-infer "$demo/model.eqc" "$demo"/test/crack/crack_0000.png "$demo"/test/normal/normal_0000.png \
  "$demo"/test/spatter/spatter_0000.png --memory
echo "demo: model, logs and data are in $demo/"
