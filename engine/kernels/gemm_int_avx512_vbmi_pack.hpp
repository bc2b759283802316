// A 3x3 convolution's s8 GEMM B panel packed in AVX-512 VBMI byte shuffles, for the tiles whose B panels are 32
// columns of four-byte groups (AMX and VNNI): the tile's pack_conv3x3_panel (gemm_int.hpp). Compiled for VBMI by
// its own target attribute, so that a source built without -mavx512vbmi (VNNI's: Cascade Lake has VNNI and no
// VBMI) holds it and calls it only where the CPU has VBMI.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

namespace edgeqc {
// Unnamed, as gemm_int.hpp's helpers: each source that includes it compiles its own copy.
namespace {

// The panel straight from the padded planes (PackedGemmInt::multiply_conv3x3), four taps (a group) at a time: each
// tap's 32 columns come from two 64-byte loads, one from the first column and one from the 17th (the pooled order
// takes its halves from two rows), permuted by vpermt2b into one half of a register (taps 0 and 1 share one, 2 and 3
// the other); then two vpermt2b interleave the four into groups. Declines (false) a panel with a column in neither
// 64 bytes, for the driver's run-by-run packing (the driver's panels never have one: a half's 16 columns span at
// most 46 bytes of one image's rows, 2 of border a row).
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) inline bool pack_conv3x3_panel_vbmi(
    const std::uint8_t* planes, const std::ptrdiff_t* offsets, const int* base, int depth, std::uint8_t* out) {
    constexpr int kColumns = 32, kTaps = 4, kWindow = 64;
    // The second load where some column lies outside the first, else the first again (already in cache).
    const auto in_first = [&](int j) { return base[j] >= base[0] && base[j] - base[0] < kWindow; };
    bool one_window = true;
    for (int j = 0; j < kColumns; ++j) one_window = one_window && in_first(j);
    const std::uint8_t* windows[2] = {planes + base[0], planes + base[one_window ? 0 : kColumns / 2]};
    alignas(64) std::uint8_t columns[64];  // both halves: a column's byte in the two loads (the second's from 64)
    for (int j = 0; j < kColumns; ++j) {
        const std::ptrdiff_t index = in_first(j) ? base[j] - base[0] : planes + base[j] - windows[1] + kWindow;
        if (index < 0 || index >= 2 * kWindow) return false;
        columns[j] = columns[j + kColumns] = static_cast<std::uint8_t>(index);
    }
    const __m512i gather = _mm512_load_si512(columns);
    // Byte 4j + q of the group layout is column j of tap q: byte (q % 2) * 32 + j of the first register for taps 0
    // and 1, of the second (numbered from 64) for taps 2 and 3.
    static constexpr auto interleave = [](int first_column) {
        std::array<std::uint8_t, 64> index{};
        for (int j = 0; j < 16; ++j)
            for (int q = 0; q < kTaps; ++q) index[4 * j + q] = (q / 2) * 64 + (q % 2) * 32 + first_column + j;
        return index;
    };
    alignas(64) static constexpr std::array<std::uint8_t, 64> kLowColumns = interleave(0),
                                                               kHighColumns = interleave(16);
    const __m512i low_columns = _mm512_load_si512(kLowColumns.data());
    const __m512i high_columns = _mm512_load_si512(kHighColumns.data());
    constexpr __mmask64 kLowHalf = 0xFFFFFFFFull, kHighHalf = ~kLowHalf;
    for (int p = 0; p < depth; p += kTaps) {
        // Each tap's 32 columns into one half of its pair's register; zero where the depth is past k (offset -1,
        // whose loads read the planes' start, never used).
        __m512i taps[kTaps];
        for (int q = 0; q < kTaps; ++q) {
            const std::ptrdiff_t offset = offsets[p + q], at = std::max(offset, std::ptrdiff_t{0});
            taps[q] = _mm512_maskz_permutex2var_epi8(offset >= 0 ? (q % 2 ? kHighHalf : kLowHalf) : 0,
                                                     _mm512_loadu_si512(windows[0] + at), gather,
                                                     _mm512_loadu_si512(windows[1] + at));
        }
        const __m512i pairs[2] = {_mm512_or_si512(taps[0], taps[1]), _mm512_or_si512(taps[2], taps[3])};
        _mm512_storeu_si512(out, _mm512_permutex2var_epi8(pairs[0], low_columns, pairs[1]));
        _mm512_storeu_si512(out + 64, _mm512_permutex2var_epi8(pairs[0], high_columns, pairs[1]));
        out += kColumns * kTaps;
    }
    return true;
}

}  // namespace
}  // namespace edgeqc
