#!/usr/bin/env bash
# Long fuzzing runs: every libFuzzer target of tests/fuzz for PER_TARGET seconds (two at a time), in the clang
# AddressSanitizer + UBSan build that apps/setup.sh sanitize makes (BUILD), keeping the corpus between runs. Prints
# one line per target (executions, findings) to record in bench/RESULTS.md with the machine and the date.
# Usage: PER_TARGET=3600 bench/fuzz.sh     Environment: PER_TARGET [1800]  BUILD [build-sanitize]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PER_TARGET=${PER_TARGET:-1800}
BUILD=${BUILD:-build-sanitize}
[ -x "$BUILD/fuzz/write_fuzz_seeds" ] || bash apps/setup.sh sanitize
echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(git rev-parse --short HEAD), $PER_TARGET s per target"
bash tests/fuzz/run.sh "$BUILD" "$PER_TARGET"
