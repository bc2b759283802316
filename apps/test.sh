#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs the whole doctest suite through CTest: natively,
# then with AddressSanitizer + UBSan (kernels index packed buffers by hand), then cross-built for aarch64 under
# qemu-aarch64 (so the NEON kernels meet the scalar reference too).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash apps/setup.sh
(cd build && ctest --output-on-failure -j1)
bash apps/setup.sh sanitize
# An allocation too large for the machine returns null (std::bad_alloc), as without the sanitizer: the tests of
# the out-of-memory paths need that.
(cd build-sanitize && ASAN_OPTIONS=allocator_may_return_null=1 ctest --output-on-failure -j1)
bash apps/setup.sh aarch64
(cd build-aarch64 && ctest --output-on-failure -j1)
