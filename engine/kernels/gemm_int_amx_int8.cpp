// AMX-INT8 tile of the s8 GEMM: tdpbsud multiplies a 16 x 64 tile of s8 weights by a 64 x 16 tile of 7-bit
// activations (unsigned), 16 384 multiply-adds into 16 x 16 int32 sums in one instruction, 256 times what one
// vpdpbusd does. Built with the AMX tile and int8 flags and AVX-512 (BW and VBMI, for the packing and epilogue),
// listed only where the CPU has AMX-INT8 and VBMI and Linux granted the process its tile state (cpu_has_amx_int8).
#include <immintrin.h>

#include <algorithm>
#include <array>

#include "engine/kernels/amx_tiles.hpp"
#include "engine/kernels/gemm_int.hpp"
#include "engine/kernels/gemm_int_avx512_epilogue.hpp"

namespace edgeqc {

namespace {

// Every tile 16 rows of 64 bytes (A: 16 weight rows of 64 depths; B: 16 depth groups of four, for 16 columns; C: 16
// rows of 16 int32 sums).
const TileConfig kTiles = [] {
    TileConfig config;
    for (int tile = 0; tile < 8; ++tile) {
        config.bytes_per_row[tile] = 64;
        config.rows[tile] = 16;
    }
    return config;
}();

}  // namespace

// 32 rows x 32 columns: four C tiles (0-3), two A tiles (4, 5) of 16 rows and two B tiles (6, 7) of 16 columns,
// the eight tile registers. A's panel holds, per 64 depths, its 32 rows of 64 bytes (kAGroup); B's, per 16 groups,
// 16 rows of 32 columns' groups, so a B tile is every other 64 bytes of it.
template <>
struct IntTile<S8Operands, AmxInt8> : Avx512QuantizedEpilogue {
    static constexpr int kRows = 32, kColumns = 32, kAGroup = 64, kDepthMultiple = 64;

    static void sums(int groups, const std::int8_t* a, const std::uint8_t* b, std::int32_t* out) {
        constexpr int kRowBytes = 64, kTileBytes = 16 * kRowBytes, kBRowBytes = kColumns * 4;
        use_tile_config(kTiles);
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (int step = 0; step < groups / 16; ++step) {
            _tile_loadd(4, a, kRowBytes);
            _tile_loadd(5, a + kTileBytes, kRowBytes);
            _tile_loadd(6, b, kBRowBytes);
            _tile_loadd(7, b + kRowBytes, kBRowBytes);
            _tile_dpbsud(0, 4, 6);
            _tile_dpbsud(1, 4, 7);
            _tile_dpbsud(2, 5, 6);
            _tile_dpbsud(3, 5, 7);
            a += 2 * kTileBytes;
            b += 16 * kBRowBytes;
        }
        constexpr int kOutRowBytes = kColumns * 4;
        _tile_stored(0, out, kOutRowBytes);
        _tile_stored(1, out + 16, kOutRowBytes);
        _tile_stored(2, out + 16 * kColumns, kOutRowBytes);
        _tile_stored(3, out + 16 * kColumns + 16, kOutRowBytes);
    }

    // A 3x3 convolution's B panel straight from its padded planes (PackedGemmInt::multiply_conv3x3), four taps (a
    // group) at a time: each tap's 32 columns are one 64-byte load permuted by vpermb into one half of a register
    // (taps 0 and 1 share one, 2 and 3 the other), then two vpermt2b interleave the four into groups. Declines
    // (false) a panel whose columns span 64 bytes or more of a plane (32 columns and two bytes of border per row
    // break: only images one output wide) for the driver's run-by-run packing.
    static bool pack_conv3x3_panel(const std::uint8_t* planes, const std::ptrdiff_t* offsets, const int* base,
                                   int depth, std::uint8_t* out) {
        constexpr int kTaps = 4;
        alignas(64) std::uint8_t columns[64];  // both halves: a column's offset from the panel's first
        for (int j = 0; j < kColumns; ++j) {
            if (base[j] - base[0] >= 64) return false;
            columns[j] = columns[j + kColumns] = static_cast<std::uint8_t>(base[j] - base[0]);
        }
        const __m512i gather = _mm512_load_si512(columns);
        // Byte 4j + q of the group layout is column j of tap q: byte (q % 2) * 32 + j of the first register for
        // taps 0 and 1, of the second (numbered from 64) for taps 2 and 3.
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
};

template struct PackedGemmInt<S8Operands, AmxInt8>;

}  // namespace edgeqc
