// AMX-INT8 tile of the s8 GEMM: tdpbsud multiplies a 16 x 64 tile of s8 weights by a 64 x 16 tile of 7-bit
// activations (unsigned), 16 384 multiply-adds into 16 x 16 int32 sums in one instruction, 256 times what one
// vpdpbusd does. Built with the AMX tile and int8 flags and AVX-512 (BW and VBMI, for the packing and epilogue),
// listed only where the CPU has AMX-INT8 and VBMI and Linux granted the process its tile state (cpu_has_amx_int8).
#include <immintrin.h>

#include "engine/kernels/amx_tiles.hpp"
#include "engine/kernels/gemm_int.hpp"
#include "engine/kernels/gemm_int_avx512_epilogue.hpp"
#include "engine/kernels/gemm_int_avx512_vbmi_pack.hpp"

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
struct IntTile<S8Operands, AmxInt8> : Avx512QuantizedEpilogue<32> {
    static constexpr int kRows = 32, kColumns = 32, kAGroup = 64, kDepthMultiple = 64;

    static void sums(int groups, const std::int8_t* a, const std::uint8_t* b, std::int32_t* out) {
        tile_sums<2>(groups, a, b, out);
    }
    // The left 16 columns alone (C tiles 0 and 2 from B tile 6): half the multiply-adds where no more are used.
    static void sums_half(int groups, const std::int8_t* a, const std::uint8_t* b, std::int32_t* out) {
        tile_sums<1>(groups, a, b, out);
    }

    // A 3x3 convolution's B panel in vpermb shuffles: every AMX CPU has VBMI.
    static bool pack_conv3x3_panel(const std::uint8_t* planes, const std::ptrdiff_t* offsets, const int* base,
                                   int depth, std::uint8_t* out) {
        static_assert(kColumns == 32, "the VBMI packer writes panels of 32 columns");
        return pack_conv3x3_panel_vbmi(planes, offsets, base, depth, out);
    }

private:
    template <int kBTiles>
    static void tile_sums(int groups, const std::int8_t* a, const std::uint8_t* b, std::int32_t* out) {
        constexpr int kRowBytes = 64, kTileBytes = 16 * kRowBytes, kBRowBytes = kColumns * 4;
        use_tile_config(kTiles);
        _tile_zero(0);
        _tile_zero(2);
        if constexpr (kBTiles == 2) {
            _tile_zero(1);
            _tile_zero(3);
        }
        for (int step = 0; step < groups / 16; ++step) {
            _tile_loadd(4, a, kRowBytes);
            _tile_loadd(5, a + kTileBytes, kRowBytes);
            _tile_loadd(6, b, kBRowBytes);
            _tile_dpbsud(0, 4, 6);
            _tile_dpbsud(2, 5, 6);
            if constexpr (kBTiles == 2) {
                _tile_loadd(7, b + kRowBytes, kBRowBytes);
                _tile_dpbsud(1, 4, 7);
                _tile_dpbsud(3, 5, 7);
            }
            a += 2 * kTileBytes;
            b += 16 * kBRowBytes;
        }
        constexpr int kOutRowBytes = kColumns * 4;
        _tile_stored(0, out, kOutRowBytes);
        _tile_stored(2, out + 16 * kColumns, kOutRowBytes);
        if constexpr (kBTiles == 2) {
            _tile_stored(1, out + 16, kOutRowBytes);
            _tile_stored(3, out + 16 * kColumns + 16, kOutRowBytes);
        }
    }
};

template struct PackedGemmInt<S8Operands, AmxInt8>;

}  // namespace edgeqc
