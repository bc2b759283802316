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
// tap's 32 columns are one 64-byte load permuted by vpermb into one half of a register (taps 0 and 1 share one, 2
// and 3 the other), then two vpermt2b interleave the four into groups. Declines (false) a panel whose columns span
// 64 bytes or more of a plane (32 columns and two bytes of border per row break: only images one output wide) for
// the driver's run-by-run packing.
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) inline bool pack_conv3x3_panel_vbmi(
    const std::uint8_t* planes, const std::ptrdiff_t* offsets, const int* base, int depth, std::uint8_t* out) {
    constexpr int kColumns = 32, kTaps = 4;
    alignas(64) std::uint8_t columns[64];  // both halves: a column's offset from the panel's first
    for (int j = 0; j < kColumns; ++j) {
        if (base[j] - base[0] >= 64) return false;
        columns[j] = columns[j + kColumns] = static_cast<std::uint8_t>(base[j] - base[0]);
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
    const std::uint8_t* first = planes + base[0];
    for (int p = 0; p < depth; p += kTaps) {
        __m512i pairs[2];
        for (int pair = 0; pair < 2; ++pair) {
            // Depths past k (offset -1) stay zero; their load reads the planes' start, which is never used.
            const std::ptrdiff_t even = offsets[p + 2 * pair], odd = offsets[p + 2 * pair + 1];
            const __m512i even_bytes = _mm512_loadu_si512(first + std::max(even, std::ptrdiff_t{0}));
            const __m512i odd_bytes = _mm512_loadu_si512(first + std::max(odd, std::ptrdiff_t{0}));
            pairs[pair] = _mm512_maskz_permutexvar_epi8(even >= 0 ? kLowHalf : 0, gather, even_bytes);
            pairs[pair] = _mm512_mask_permutexvar_epi8(pairs[pair], odd >= 0 ? kHighHalf : 0, gather, odd_bytes);
        }
        _mm512_storeu_si512(out, _mm512_permutex2var_epi8(pairs[0], low_columns, pairs[1]));
        _mm512_storeu_si512(out + 64, _mm512_permutex2var_epi8(pairs[0], high_columns, pairs[1]));
        out += kColumns * kTaps;
    }
    return true;
}

}  // namespace
}  // namespace edgeqc
