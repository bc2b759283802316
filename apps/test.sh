#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs the whole doctest suite through CTest: natively,
# then with AddressSanitizer + UBSan (kernels index packed buffers by hand) and the fuzz targets, then cross-built for
# aarch64 under qemu-aarch64 (so the NEON kernels meet the scalar reference too).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash apps/setup.sh
(cd build && ctest --output-on-failure -j1)
bash apps/setup.sh sanitize
(cd build-sanitize && ctest --output-on-failure -j1)
# Every parser of files and network payloads, fuzzed for a minute each (bench/fuzz.sh runs them for longer).
bash tests/fuzz/run.sh build-sanitize "${EDGEQC_FUZZ_SECONDS:-60}"
bash apps/setup.sh aarch64
(cd build-aarch64 && ctest --output-on-failure -j1)
