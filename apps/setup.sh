#!/usr/bin/env bash
# Installs the Debian packages edgeqc needs (only those missing) and builds it (Release).
#   apps/setup.sh          native build in ./build, benchmarks included
#   apps/setup.sh aarch64  cross build of the CLI and the tests in ./build-aarch64 (run them under qemu-aarch64)
#   apps/setup.sh sanitize the CLI, the tests and the fuzz targets with clang's AddressSanitizer and UBSan in
#                          ./build-sanitize
# Run by apps/demo.sh and apps/test.sh; safe to run again: it only does what is not done yet.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=${1:-native}
packages=(g++ cmake make pkg-config libeigen3-dev libstb-dev libcli11-dev libxsimd-dev doctest-dev nlohmann-json3-dev
          libturbojpeg0-dev libpng-dev libmosquitto-dev libsqlite3-dev libssl-dev mosquitto mosquitto-clients openssl)
foreign_architecture=
case "$target" in
  native) build=build; configure=(-DEDGEQC_BUILD_BENCHMARKS=ON); targets=() ;;
  aarch64)
    build=build-aarch64
    # The edge node's libraries for the target, as Debian arm64 packages (multiarch).
    foreign_architecture=arm64
    packages+=(g++-aarch64-linux-gnu qemu-user libturbojpeg0-dev:arm64 libpng-dev:arm64 libmosquitto-dev:arm64 libsqlite3-dev:arm64
              libssl-dev:arm64)
    configure=(-DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake)
    targets=(--target edgeqc edgeqc-edge edgeqc_tests) ;;
  sanitize)
    # clang: AddressSanitizer and UBSan over the whole build, which also makes it the build of the libFuzzer
    # targets (EDGEQC_FUZZ).
    build=build-sanitize
    packages+=(clang libclang-rt-dev libomp-dev)
    configure=(-DCMAKE_CXX_COMPILER=clang++ -DEDGEQC_FUZZ=ON)
    targets=(--target edgeqc edgeqc-edge edgeqc_tests write_fuzz_seeds fuzz_image fuzz_model_file fuzz_voc fuzz_mjpeg
             fuzz_envelope fuzz_command) ;;
  *) echo "setup: unknown target '$target' (expected native, aarch64 or sanitize)" >&2; exit 2 ;;
esac

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_if_needed=()
  [ "$(id -u)" -eq 0 ] || sudo_if_needed=(sudo)
  if [ -n "$foreign_architecture" ] && ! dpkg --print-foreign-architectures | grep -qx "$foreign_architecture"; then
    "${sudo_if_needed[@]}" dpkg --add-architecture "$foreign_architecture"
  fi
  "${sudo_if_needed[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_if_needed[@]}" apt-get install -y -qq "${missing[@]}"
fi

log=$build.log
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "${configure[@]}" > "$log" 2>&1 || { cat "$log"; exit 1; }
cmake --build "$build" -j"$(nproc)" "${targets[@]}" >> "$log" 2>&1 || { tail -50 "$log"; exit 1; }
echo "setup: built $build/edgeqc, $build/edgeqc-infer, $build/edgeqc-edge and $build/tests/edgeqc_tests (log: $log)"
