# Cross-compiles edgeqc for 64-bit ARM Linux (e.g. the Raspberry Pi 4B) with Debian's g++-aarch64-linux-gnu;
# tests then run under qemu-aarch64 (Debian's qemu-user). Usage:
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake && cmake --build build-aarch64
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# The C and C++ runtimes must come from the cross toolchain's folder, matching its dynamic loader: Debian's arm64
# packages (the edge node's libraries) bring a second libc into /lib/aarch64-linux-gnu, and a libc that does not
# match the loader hangs OpenMP programs under qemu.
set(EDGEQC_QEMU_ARGUMENTS -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/usr/aarch64-linux-gnu/lib)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64 ${EDGEQC_QEMU_ARGUMENTS})

# Libraries come from the cross sysroot or Debian's arm64 packages; the header-only dependencies (Eigen, xsimd, CLI11, nlohmann-json, stb,
# doctest) are arch-independent Debian packages under the build machine's /usr, found through their CMake files.
# Libraries installed as Debian arm64 packages (libmosquitto-dev:arm64, libsqlite3-dev:arm64) live in the
# multiarch folders under /, which the second root finds (/usr/lib/aarch64-linux-gnu).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /)
# pkg-config (whose hints FindOpenSSL follows) must describe the arm64 packages, not the build machine's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# The build machine's /usr/include must come after the cross C library's headers, never before them: CMake
# leaves implicit directories off the command line, and -idirafter searches /usr/include last.
list(APPEND CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES /usr/include)
set(CMAKE_CXX_FLAGS_INIT "-idirafter /usr/include")
