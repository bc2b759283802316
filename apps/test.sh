#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs the whole doctest suite through CTest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash apps/setup.sh
cd build
ctest --output-on-failure -j1
