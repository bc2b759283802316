// AMX tile configuration shared by the kernels that use the tiles (int8 inference, bf16 training): each states the
// layout it needs, and a thread reloads its tile registers' layout only when the kernel before used another one.
// Included only by sources built with the AMX flags, which run only where the CPU has AMX.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace edgeqc {

// Palette 1's layout (the LDTILECFG operand): bytes per row and rows of each of the 8 tile registers.
struct alignas(64) TileConfig {
    std::uint8_t palette = 1;
    std::uint8_t start_row = 0;
    std::uint8_t reserved[14] = {};
    std::uint16_t bytes_per_row[16] = {};
    std::uint8_t rows[16] = {};
};

// Loads `config` (a kernel's static object: its address names it) unless this thread's tiles already have it.
// Loading a layout zeroes the tiles, so a kernel calls this before it starts accumulating, never in between. Not in an
// unnamed namespace, unlike the kernels' helpers: its thread_local must be one for all the AMX kernels. It assumes
// nothing else in the process loads or releases tile layouts (edgeqc links no other AMX code).
inline void use_tile_config(const TileConfig& config) {
    thread_local const TileConfig* loaded = nullptr;
    if (loaded == &config) return;
    _tile_loadconfig(&config);
    loaded = &config;
}

}  // namespace edgeqc
