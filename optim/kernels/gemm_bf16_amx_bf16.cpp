// The f32 GEMM family with bf16 products for AMX-BF16 (train --precision bf16 where the CPU has the tiles): the
// packed GEMM's driver and the AVX-512 BF16 operands' rounding and packing (gemm_bf16_operands.hpp), multiplied by
// tdpbf16ps, which adds 16 x 16 x 32 bf16 products into 16 x 16 f32 sums in one instruction (256 times what one
// vdpbf16ps does). Built with the AMX tile and bf16 flags, listed only where the CPU has them and Linux granted the
// tile state (cpu_has_amx_bf16).
#include <array>

#include "engine/kernels/amx_tiles.hpp"
#include "optim/kernels/gemm_bf16_operands.hpp"

namespace edgeqc {

namespace {

// A step of the depth: 16 pairs (32 depths), a tile row of A and the rows of a B tile. A panel shallower than one step
// (a first convolution of one channel: 9 deep, 5 pairs) takes one step of its own pairs only: the driver gives a
// panel kc rows of slots, which 16 per row would overflow there.
constexpr int kPairsPerStep = 16, kTileRows = 16, kTileColumns = 16;
int pair_count(int kc) { return (kc + 1) / 2; }
int steps(int kc) { return (pair_count(kc) + kPairsPerStep - 1) / kPairsPerStep; }
int pairs_per_step(int kc) { return std::min(pair_count(kc), kPairsPerStep); }

// One layout per number of pairs in a step (1 to 16): C tiles 0-3 of 16 x 16 sums, A tiles 4 and 5 of 16 rows of
// `pairs` slots, B tiles 6 and 7 of `pairs` rows of 16 columns' slots.
const std::array<TileConfig, kPairsPerStep + 1> kConfigs = [] {
    std::array<TileConfig, kPairsPerStep + 1> configs{};
    for (int pairs = 1; pairs <= kPairsPerStep; ++pairs)
        for (int tile = 0; tile < 8; ++tile) {
            const bool b_tile = tile >= 6;
            configs[pairs].bytes_per_row[tile] = static_cast<std::uint16_t>(tile >= 4 && !b_tile ? 4 * pairs : 64);
            configs[pairs].rows[tile] = static_cast<std::uint8_t>(b_tile ? pairs : kTileRows);
        }
    return configs;
}();

// A as tdpbf16ps reads it: per step, each row's slots one after the other (a tile row), where Bf16Operands packs a
// slot row per pair across the rows. B as Bf16Operands packs it (a pair row across the columns), zero-padded to
// whole steps. Either fits the kc x tile width slots the driver gives a panel: whole steps of 16 pairs for kc >= 32
// (16 x ceil(kc / 32) <= kc), the pairs alone below.
struct AmxBf16Operands : Bf16Operands {
    struct Shape {
        static constexpr int rows = 2 * kTileRows, vectors = 2;  // 32 x 32: two A tiles by two B tiles
    };
    static constexpr int kRows = Shape::rows;

    static void pack_a(const float* a, int lda, bool transposed, int row, int rows, int depth, int kc, int,
                       float* packed) {
        const int slots = pairs_per_step(kc), step_floats = kRows * slots;
        if (!transposed && slots == kPairsPerStep) {  // a row's 32 depths of a step: one conversion, one tile row
            for (int i = 0; i < kRows; ++i) {
                // Rows past m load nothing (count 0): zero.
                const float* run = i < rows ? a + static_cast<std::ptrdiff_t>(row + i) * lda + depth : a;
                for (int step = 0; step < steps(kc); ++step) {
                    const int first = 2 * kPairsPerStep * step, count = i < rows ? std::min(2 * kWidth, kc - first) : 0;
                    const __m512 low = _mm512_maskz_loadu_ps(lanes(std::min(count, kWidth)), run + first);
                    const __m512 high = _mm512_maskz_loadu_ps(lanes(std::max(count - kWidth, 0)), run + first + kWidth);
                    _mm512_storeu_si512(packed + step * step_floats + i * slots, bits(_mm512_cvtne2ps_pbh(high, low)));
                }
            }
            return;
        }
        // Otherwise the vector kernel's packing (a slot row per pair across the rows), then each row's slots of a
        // step gathered into its tile row.
        alignas(64) float pairs[kMaxPairs * kRows];
        Bf16Operands::pack_a(a, lda, transposed, row, rows, depth, kc, kRows, pairs);
        const __m512i slot_offsets = _mm512_mullo_epi32(
            _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(kRows));
        for (int step = 0; step < steps(kc); ++step) {
            const int present = std::clamp(pair_count(kc) - step * kPairsPerStep, 0, slots);
            const float* step_pairs = pairs + step * kPairsPerStep * kRows;
            for (int i = 0; i < kRows; ++i) {
                const __m512i row_slots = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes(present),
                                                                      slot_offsets, step_pairs + i, 4);
                _mm512_mask_storeu_epi32(packed + step * step_floats + i * slots, lanes(slots), row_slots);
            }
        }
    }
    static void pack_b(const float* b, int ldb, bool transposed, int depth, int kc, int column, int columns,
                       int tile_columns, float* packed) {
        Bf16Operands::pack_b(b, ldb, transposed, depth, kc, column, columns, tile_columns, packed);
        std::fill(packed + static_cast<std::ptrdiff_t>(pair_count(kc)) * tile_columns,
                  packed + static_cast<std::ptrdiff_t>(steps(kc)) * pairs_per_step(kc) * tile_columns, 0.0f);
    }

    // Two A tiles (rows 0-15, 16-31) by one or two B tiles (columns 0-15, 16-31) into C tiles 0, 1 (rows 0-15) and
    // 2, 3 (rows 16-31), then merged into C by the vector code, 16 rows at a time.
    template <int kVectors>
    static void micro_kernel(int kc, const float* a_panel, const float* b_panel, float* c, int ldc, int rows,
                             int columns, const gemm_detail::TileMerge& merge) {
        using Batch = xsimd::batch<float, xsimd::avx512bw>;
        constexpr int kPackedColumns = Shape::vectors * kWidth, kBRowBytes = kPackedColumns * 4;
        const int slots = pairs_per_step(kc), a_row_bytes = 4 * slots;
        const int a_step_floats = kRows * slots, b_step_floats = slots * kPackedColumns;
        use_tile_config(kConfigs[slots]);
        _tile_zero(0);
        _tile_zero(2);
        if constexpr (kVectors == 2) {
            _tile_zero(1);
            _tile_zero(3);
        }
        for (int step = 0; step < steps(kc); ++step) {
            const float* a_step = a_panel + step * a_step_floats;
            const float* b_step = b_panel + step * b_step_floats;
            _tile_loadd(4, a_step, a_row_bytes);
            _tile_loadd(5, a_step + kTileRows * slots, a_row_bytes);
            _tile_loadd(6, b_step, kBRowBytes);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(2, 5, 6);
            if constexpr (kVectors == 2) {
                _tile_loadd(7, b_step + kTileColumns, kBRowBytes);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(3, 5, 7);
            }
        }
        alignas(64) float sums[kRows][kPackedColumns];
        _tile_stored(0, &sums[0][0], kBRowBytes);
        _tile_stored(2, &sums[kTileRows][0], kBRowBytes);
        if constexpr (kVectors == 2) {
            _tile_stored(1, &sums[0][kTileColumns], kBRowBytes);
            _tile_stored(3, &sums[kTileRows][kTileColumns], kBRowBytes);
        }
        for (int half = 0; half < 2 && half * kTileRows < rows; ++half) {
            Batch acc[kTileRows][kVectors];
            for (int i = 0; i < kTileRows; ++i)
                for (int v = 0; v < kVectors; ++v)
                    acc[i][v] = Batch::load_aligned(&sums[half * kTileRows + i][v * kWidth]);
            gemm_detail::TileMerge half_merge = merge;
            if (half_merge.row_bias) half_merge.row_bias += half * kTileRows;
            gemm_detail::merge_tile<xsimd::avx512bw, kVectors, kTileRows>(
                acc, c + static_cast<std::ptrdiff_t>(half) * kTileRows * ldc, ldc,
                std::min(kTileRows, rows - half * kTileRows), columns, half_merge);
        }
    }

private:
    static constexpr int kMaxPairs = gemm_detail::kDepthBlock / 2;  // a depth block's pairs, at most
};

}  // namespace

// Installed by optim/training_kernels.cpp where the CPU has AMX-BF16.
void install_gemm_bf16_amx_bf16(TrainingKernelTable& table) { install_bf16_gemm<AmxBf16Operands>(table); }

}  // namespace edgeqc
