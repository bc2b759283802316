// Packed, register-blocked f32 GEMM written once against xsimd::batch<float, Arch>; the per-arch sources
// (gemm_f32_avx2.cpp, gemm_f32_sse2.cpp, gemm_f32_neon64.cpp) only instantiate it with their own compiler flags.
// Blocking follows Goto/BLIS: B is packed into kc x NR micro-panels that stay in L1, A into MR x kc micro-panels
// streamed from L2, and the micro-kernel keeps an MR x NR tile of C in registers. Nothing here tests CPU flags.
#pragma once

#include <omp.h>
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/kernels.hpp"
#include "engine/kernels/padded_planes.hpp"
#include "engine/kernels/simd_arch.hpp"
#include "engine/kernels/team.hpp"
#include "engine/kernels/transpose_f32.hpp"

namespace edgeqc {

// Register tile per arch: `rows` of A times `vectors` SIMD vectors of B, all accumulators held in registers.
// 16 vector registers (x86): 6 x 2 = 12 accumulators + 2 B vectors + 1 broadcast A. (4 x 3 measured the same on
// large products and 2.5 % slower at batch-1 inference, whose Winograd products are only 12-40 columns wide.)
template <class Arch>
struct GemmTileShape {
    static constexpr int rows = 6, vectors = 2;
};
// 32 vector registers (AVX-512): 12 x 2 = 24 accumulators + 2 B vectors + a broadcast. (14 x 2 leaves GCC 12 one
// register short: it spills an accumulator inside the loop; measured 2-8 % slower.)
// With A packed beforehand (inference weights, training's Winograd weights, bf16 products too), its depth blocks (kc)
// go to 576 (one block for a 64-channel 3x3 convolution, 8 for 512 channels), where they stop at 256 otherwise: the
// B micro-panel (72 KiB) then streams from L2, but C is merged a third as often. The packed convolutions at batch
// 32, an image per thread, measured 3-11 % faster (1152 about the same, the whole depth slower), the batch-1 plan
// and bf16 training the same; GEMMs that pack A as they go (training's, shared by the threads) measured 1-6 %
// slower with 576 and keep 256.
// 3x3 convolutions from the image go by positions (multiply_conv3x3): the reference network's conv layers, 2
// threads, batch 32, ran 1.04x (conv3, 64 -> 512 at 20x30) to 1.4x (conv2, 32 -> 64 at 40x60) as fast as on B
// packed from the image, and 1.2-2.1x at batch 1. (AVX2's narrow tile, 16 channels by 6 outputs, ran conv1 21 %
// and conv5 11 % slower at batch 32: conv1's 9 depths are too few to repay merging the turned-around sums, conv5's
// rows of 7 become tiles of 3 and 4 outputs, too few accumulators. AVX2 keeps the packed B.)
template <>
struct GemmTileShape<xsimd::avx512bw> {
    static constexpr int rows = 12, vectors = 2, packed_a_depth_block = 576;
    static constexpr bool conv3x3_by_positions = true;
};
// 32 vector registers (AArch64): 8 x 3 = 24 accumulators + 3 B vectors + broadcasts.
template <>
struct GemmTileShape<xsimd::neon64> {
    static constexpr int rows = 8, vectors = 3;
};

// How the packed GEMM stores and multiplies its operands; the default keeps them in f32 (F32Operands, below). A
// policy names its register tile (Shape: rows of A, and SIMD vectors of B's columns, as GemmTileShape), packs
// kc-deep micro-panels into float-sized slots, at most kc x tile width of them, so that every policy shares the
// driver's blocking and workspace, and multiplies two such panels into a tile of C:
//   using Shape = ...;
//   static void pack_a(a, lda, transposed, row, rows, depth, kc, tile_rows, packed);
//   static void pack_b(b, ldb, transposed, depth, kc, column, columns, tile_columns, packed);
//   template <int kVectors> static void micro_kernel(kc, a_panel, b_panel, c, ldc, rows, columns, merge);
// (optim/kernels/gemm_bf16_operands.hpp packs bf16 pairs into the slots and multiplies them with vdpbf16ps;
// gemm_bf16_amx_bf16.cpp, with a tile shape of its own, with tdpbf16ps.)
template <class Arch>
struct F32Operands;

template <class Arch, class Operands = F32Operands<Arch>>
struct PackedGemmF32 {
    // The GemmF32 contract: packs op(A) and op(B) block by block as it goes, into the workspace.
    void operator()(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a, int lda,
                    const float* b, int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue,
                    float* workspace) const {
        multiply(transpose_a, transpose_b, m, n, k, alpha, a, lda, nullptr, b, ldb, beta, c, ldc, epilogue, workspace);
    }
    // The GemmPackAF32 contract: every depth block of op(A), one after the other, each as multiply() packs it.
    std::size_t pack_a(bool transpose_a, int m, int k, const float* a, int lda, float* packed) const;
    // The GemmWorkspaceF32 contract: a block of B (and, unless A comes packed, a block of A).
    std::size_t workspace_floats(int m, int n, int k, bool a_packed) const;
    // With prepacked_a (from pack_a), a and lda are unused and A is not packed again.
    void multiply(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a, int lda,
                  const float* prepacked_a, const float* b, int ldb, float beta, float* c, int ldc,
                  const GemmEpilogue& epilogue, float* workspace) const;
    // The GemmPackANarrowF32 and GemmNarrowF32 contracts: the register tile turned around, `vectors` SIMD vectors of
    // A's rows (kNarrowRows) by `rows` of B's columns, A packed in panels of that many rows over the whole depth, and
    // B's values broadcast straight from B.
    static constexpr int kNarrowRows =
        GemmTileShape<Arch>::vectors * static_cast<int>(Arch::alignment() / sizeof(float));
    std::size_t pack_a_narrow(int m, int k, const float* a, int lda, float* packed) const
        requires std::is_same_v<Operands, F32Operands<Arch>>;
    void multiply_narrow(int m, int n, int k, const float* packed_a, const float* b, int ldb, float* c, int ldc,
                         const GemmEpilogue& epilogue) const
        requires std::is_same_v<Operands, F32Operands<Arch>>;
    // The GemmConv3x3PackAF32, GemmConv3x3WorkspaceF32 and GemmConv3x3F32 contracts: multiply() with B = im2col of a
    // 3x3, stride-1, padding-1 convolution's input, read from a copy of the images with a zero border around each
    // plane instead of from an im2col matrix, in the same depth blocks, hence the same bits. Where the tile shape
    // says so (kConv3x3ByPositions), on the narrow tile: A's rows in vectors (A packed once in narrow panels), B's
    // values broadcast from the planes where they lie, not packed, and no outputs computed past a row's end.
    // Otherwise multiply() on B packed from the planes.
    std::size_t conv3x3_pack_a(int m, int channels, const float* a, float* packed) const
        requires std::is_same_v<Operands, F32Operands<Arch>>;
    std::size_t conv3x3_workspace_floats(int m, int channels, int height, int width, int images) const
        requires std::is_same_v<Operands, F32Operands<Arch>>;
    void multiply_conv3x3(int m, int channels, int height, int width, int images, const float* packed_a,
                          const float* x, float* c, const GemmEpilogue& epilogue, float* workspace) const
        requires std::is_same_v<Operands, F32Operands<Arch>>;

private:
    // multiply()'s blocked product once the operands are checked: `prepare()` runs first on every thread of the team
    // (an orphaned `omp for` may share work out), then pack_b(depth, kc, column, columns, packed) packs each kc x
    // NR micro-panel of B, as Operands::pack_b does from a matrix.
    template <class Prepare, class PackB>
    void multiply_blocks(bool transpose_a, int m, int n, int k, float alpha, const float* a, int lda,
                         const float* prepacked_a, float beta, float* c, int ldc, const GemmEpilogue& epilogue,
                         float* workspace, const Prepare& prepare, const PackB& pack_b) const;
    // Thin products (at most 160 columns, B within 4 MiB, at least half a narrow panel of A's rows) run on the narrow
    // tile, each thread on its own panels with B read where it lies: no packing of B, no barrier, and columns a few
    // at a time (35 columns cost 36 there, 48 on the packed tile). Measured on AVX-512 from 16 rows and 32 columns to
    // 160 columns: 1.04 to 4.8 times the packed path's speed (a single panel runs on one thread and still wins); from
    // 300 columns on, the packed path is as fast or faster.
    static bool thin(int m, int n, int k)
        requires std::is_same_v<Operands, F32Operands<Arch>>;
    void multiply_thin(bool transpose_a, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                       int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue) const
        requires std::is_same_v<Operands, F32Operands<Arch>>;
    static constexpr bool kConv3x3ByPositions = [] {
        if constexpr (requires { GemmTileShape<Arch>::conv3x3_by_positions; })
            return GemmTileShape<Arch>::conv3x3_by_positions;
        return false;
    }();
    // multiply_conv3x3 once there is a product: A as pack_a_narrow() packs it, each thread on its share of the
    // narrow panels against bands of output rows; or multiply() on B packed from the planes, A as pack_a() packs it.
    void multiply_conv3x3_by_positions(int m, int channels, int height, int width, int images, const float* packed_a,
                                       const float* x, float* c, const GemmEpilogue& epilogue, float* workspace) const
        requires std::is_same_v<Operands, F32Operands<Arch>>;
    void multiply_conv3x3_by_columns(int m, int channels, int height, int width, int images, const float* packed_a,
                                     const float* x, float* c, const GemmEpilogue& epilogue, float* workspace) const
        requires std::is_same_v<Operands, F32Operands<Arch>>;
};

// Unnamed: each per-arch source compiles these helpers with its own flags, and a helper with external linkage would
// be one symbol that the linker keeps from any one of them (an AVX-512 copy could then run on an AVX2-only CPU).
namespace {
namespace gemm_detail {

constexpr int kDepthBlock = 256;        // kc: a kc x NR micro-panel of B (16 KiB on AVX2) stays in L1
constexpr int kRowBlockTarget = 144;    // mc: an mc x kc block of A (144 KiB) stays in L2
constexpr int kColumnBlock = 4096;      // nc: a kc x nc block of B (4 MiB) stays in the shared L3
constexpr double kParallelMinFlops = 2e6;  // smaller products lose more to thread start-up than they gain
// Thin products: at most this many columns (their sums stay on the stack) and this much of B (4 MiB, from L2 and L3).
constexpr int kThinMaxColumns = 160;
constexpr std::size_t kThinMaxBFloats = 1024 * 1024;
// The convolution GEMM from the image passes a depth block of A over bands of tiles of at most this many outputs.
constexpr int kBandPositions = 256;

inline int round_up(int value, int multiple) { return (value + multiple - 1) / multiple * multiple; }

// The block size, a multiple of `multiple`, that cuts `extent` into as few blocks of at most about `target` as it
// can, all of about the same size: k = 576 becomes 3 x 192 rather than 256 + 256 + 64, m = 512 becomes 4 x 132
// rather than 3 x 144 + 80, so that the threads' shares and the depth blocks' work come out even.
inline int balanced_block(int extent, int target, int multiple) {
    const int blocks = (extent + target - 1) / target;
    return round_up((extent + blocks - 1) / blocks, multiple);
}

// Packs `count` stored rows (stride ld) of kc floats each, from source, as kc groups of `tile` floats, zero-padded:
// group p holds every row's value p. Whole blocks of the vector width go through in-register transposes (8 to 16
// times fewer instructions on AVX-512 and AVX2); the rest goes element by element, reading along the rows.
template <class Arch>
inline void pack_transposed(const float* source, std::ptrdiff_t ld, int count, int kc, int tile, float* packed) {
    int p = 0;
    constexpr int kWidth = VectorTranspose<Arch>::kWidth;
    // Tiles of whole vectors, or of one vector's half or more (the register tiles' 12 of 16 and 6 of 8): a group's
    // store then runs at most onto the next group, which a later store overwrites; a block's last group runs onto
    // the group after the block, which must exist. Other tile widths go element by element.
    const bool whole_vectors = tile % kWidth == 0;
    if (whole_vectors || (tile < kWidth && 2 * tile >= kWidth)) {
        const int end = whole_vectors ? kc : kc - 1;
        for (; p + kWidth <= end; p += kWidth)
            for (int first = 0; first < tile; first += kWidth) {
                const int rows = std::clamp(count - first, 0, kWidth);  // 0: a panel of zeros past the edge
                VectorTranspose<Arch>::transpose(rows > 0 ? source + first * ld + p : source, ld, rows,
                                                 packed + static_cast<std::ptrdiff_t>(p) * tile + first, tile);
            }
    }
    if (count < tile) std::fill(packed + std::ptrdiff_t{p} * tile, packed + std::ptrdiff_t{kc} * tile, 0.0f);
    for (int i = 0; i < count; ++i) {
        const float* row = source + i * ld;
        for (int q = p; q < kc; ++q) packed[static_cast<std::ptrdiff_t>(q) * tile + i] = row[q];
    }
}

// Packs rows [row, row + rows) x depth [depth, depth + kc) of op(A) as kc groups of `tile_rows` floats, zero-padded.
template <class Arch>
inline void pack_a(const float* a, int lda, bool transposed, int row, int rows, int depth, int kc, int tile_rows,
                   float* packed) {
    if (!transposed) {
        pack_transposed<Arch>(a + static_cast<std::ptrdiff_t>(row) * lda + depth, lda, rows, kc, tile_rows, packed);
        return;
    }
    if (rows < tile_rows) std::fill_n(packed, static_cast<std::ptrdiff_t>(kc) * tile_rows, 0.0f);
    for (int p = 0; p < kc; ++p)
        std::copy_n(a + static_cast<std::ptrdiff_t>(depth + p) * lda + row, rows,
                    packed + static_cast<std::ptrdiff_t>(p) * tile_rows);
}

// Packs depth [depth, depth + kc) x columns [column, column + columns) of op(B) as kc groups of `tile_columns`,
// zero-padded.
template <class Arch>
inline void pack_b(const float* b, int ldb, bool transposed, int depth, int kc, int column, int columns,
                   int tile_columns, float* packed) {
    if (transposed) {
        pack_transposed<Arch>(b + static_cast<std::ptrdiff_t>(column) * ldb + depth, ldb, columns, kc, tile_columns,
                              packed);
        return;
    }
    if (columns < tile_columns) std::fill_n(packed, static_cast<std::ptrdiff_t>(kc) * tile_columns, 0.0f);
    for (int p = 0; p < kc; ++p)
        std::copy_n(b + static_cast<std::ptrdiff_t>(depth + p) * ldb + column, columns,
                    packed + static_cast<std::ptrdiff_t>(p) * tile_columns);
}

using padded_planes_detail::pad_planes;
using padded_planes_detail::PaddedPlanes;

// Packs depth [depth, depth + kc) x columns [column, column + columns) of a 3x3 convolution's im2col, read from its
// padded planes, as pack_b packs them from the matrix. Run by run: a run is columns whose outputs are consecutive in
// one row, so each tap reads it as one stretch of a plane. A run is copied in whole vectors (read past it from the
// planes or their margin), writing up to a vector past its end into columns written after it: the next run, the zero
// columns, the next depth's row; the last depth's row is copied exactly, so nothing lands past the panel.
template <class Arch>
inline void pack_conv3x3(const PaddedPlanes& padded, const float* planes, int depth, int kc, int column, int columns,
                         int tile_columns, float* packed) {
    using Batch = xsimd::batch<float, Arch>;
    constexpr int kWidth = static_cast<int>(Batch::size), kMaxColumns = 64;
    static_assert(GemmTileShape<Arch>::vectors * kWidth <= kMaxColumns);
    int runs = 0, first[kMaxColumns], length[kMaxColumns];
    std::ptrdiff_t base[kMaxColumns];
    for (int j = 0; j < columns; j += length[runs++]) {
        first[runs] = j;
        length[runs] = std::min(padded.width - (column + j) % padded.width, columns - j);
        base[runs] = padded.base(column + j);
    }
    for (int p = 0; p < kc; ++p) {
        const float* source = planes + padded.offset(depth + p);
        float* row = packed + static_cast<std::ptrdiff_t>(p) * tile_columns;
        const int spill = p + 1 < kc ? kWidth - 1 : 0;  // how far past a run's end whole vectors may go
        for (int r = 0; r < runs; ++r) {
            const float* from = source + base[r];
            float* to = row + first[r];
            int j = 0;
            for (; j + kWidth <= length[r] + spill; j += kWidth)
                Batch::load_unaligned(from + j).store_unaligned(to + j);
            for (; j < length[r]; ++j) to[j] = from[j];
        }
        std::fill(row + columns, row + tile_columns, 0.0f);
    }
}

// Floats of multiply_conv3x3's product of several images (m x n, each image's columns copied out of it afterwards),
// rounded to keep what follows it 64-byte aligned; none for one image, whose product is C itself.
inline std::size_t conv3x3_product_floats(int m, int n, int images) {
    return images > 1 ? (static_cast<std::size_t>(m) * static_cast<std::size_t>(n) + 15) / 16 * 16 : 0;
}

// How one depth block's partial product is merged into C: c = alpha * product + beta * c, then, on the last
// depth block only, + row_bias and ReLU. beta is the caller's on the first block and 1 afterwards.
struct TileMerge {
    float alpha, beta;
    const float* row_bias;  // indexed by the tile's first row; null when absent or not the last block
    bool relu;

    float apply(float product, const float* old, int row) const {
        float value = alpha * product;
        if (beta != 0.0f) value += beta * *old;
        if (row_bias) value += row_bias[row];
        return relu && value < 0.0f ? 0.0f : value;  // NaN passes through, as in PyTorch
    }
};

// A vector of sums of one row of C merged as TileMerge::apply() merges one (bar beta's multiply-add, fused here);
// old() gives C's values there, read only when beta is not 0.
template <class Batch, class Old>
inline Batch merge_vector(Batch sums, const TileMerge& merge, int row, const Old& old) {
    Batch value = merge.alpha == 1.0f ? sums : sums * Batch(merge.alpha);
    if (merge.beta != 0.0f) value = xsimd::fma(Batch(merge.beta), old(), value);
    if (merge.row_bias) value += Batch(merge.row_bias[row]);
    // Not xsimd::max: x86's max returns its second operand for NaN; NaN must pass, as in PyTorch.
    if (merge.relu) value = xsimd::select(value < Batch(0.0f), Batch(0.0f), value);
    return value;
}

// Merges a kRows x (kVectors SIMD vectors) tile of sums into C[rows x columns] (the valid part of an edge tile only).
template <class Arch, int kVectors, int kRows = GemmTileShape<Arch>::rows>
inline void merge_tile(const xsimd::batch<float, Arch> (&acc)[kRows][kVectors], float* c, int ldc, int rows,
                       int columns, const TileMerge& merge) {
    using Batch = xsimd::batch<float, Arch>;
    constexpr int kWidth = static_cast<int>(Batch::size), kColumns = kVectors * kWidth;
    if (rows == kRows && columns == kColumns) {
#pragma GCC unroll 16
        for (int i = 0; i < kRows; ++i) {
            float* c_row = c + static_cast<std::ptrdiff_t>(i) * ldc;
#pragma GCC unroll 4
            for (int v = 0; v < kVectors; ++v)
                merge_vector(acc[i][v], merge, i, [&] { return Batch::load_unaligned(c_row + v * kWidth); })
                    .store_unaligned(c_row + v * kWidth);
        }
        return;
    }
    // Edge tile: spill the registers and merge only the valid part.
    alignas(64) float tile[kRows * kColumns];
    for (int i = 0; i < kRows; ++i)
        for (int v = 0; v < kVectors; ++v) acc[i][v].store_aligned(tile + i * kColumns + v * kWidth);
    for (int i = 0; i < rows; ++i) {
        float* c_row = c + static_cast<std::ptrdiff_t>(i) * ldc;
        for (int j = 0; j < columns; ++j) c_row[j] = merge.apply(tile[i * kColumns + j], c_row + j, i);
    }
}

// One step of the register tiles: acc[i][v] += broadcasts[i] x vectors[v], kBroadcasts values and kVectors SIMD
// vectors.
template <class Arch, int kBroadcasts, int kVectors>
inline void outer_product_step(const float* broadcasts, const float* vectors,
                               xsimd::batch<float, Arch> (&acc)[kBroadcasts][kVectors]) {
    using Batch = xsimd::batch<float, Arch>;
    constexpr int kWidth = static_cast<int>(Batch::size);
    Batch vector_row[kVectors];
#pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) vector_row[v] = Batch::load_unaligned(vectors + v * kWidth);
#pragma GCC unroll 16
    for (int i = 0; i < kBroadcasts; ++i) {
        const Batch value(broadcasts[i]);
#pragma GCC unroll 4
        for (int v = 0; v < kVectors; ++v) acc[i][v] = xsimd::fma(value, vector_row[v], acc[i][v]);
    }
}

// The register tile of both GEMMs: acc[i][v] += the sum over `depth` steps of broadcasts[i] x vectors[v], each
// step's kBroadcasts values and kVectors SIMD vectors read at the operands' next stride. Step p also asks for the
// cache line prefetch + 64 p into L2, while p < prefetch_lines.
template <class Arch, int kBroadcasts, int kVectors>
inline void outer_product_sums(int depth, const float* broadcasts, std::ptrdiff_t broadcast_stride,
                               const float* vectors, std::ptrdiff_t vector_stride,
                               xsimd::batch<float, Arch> (&acc)[kBroadcasts][kVectors],
                               const char* prefetch = nullptr, int prefetch_lines = 0) {
#pragma GCC unroll 4
    for (int p = 0; p < depth; ++p) {
        outer_product_step<Arch>(broadcasts, vectors, acc);
        if (p < prefetch_lines) __builtin_prefetch(prefetch + 64 * static_cast<std::ptrdiff_t>(p), 0, 2);
        broadcasts += broadcast_stride;
        vectors += vector_stride;
    }
}

// One MR x (kVectors SIMD vectors) tile: C[rows x columns] merged with the product of two packed micro-panels.
// kVectors is the arch's full tile width, or fewer for a last panel that narrow (a 40-column product then costs
// 40 columns of work, not 48); b_panel rows are always the full packed width apart.
template <class Arch, int kVectors = GemmTileShape<Arch>::vectors>
inline void micro_kernel(int kc, const float* a_panel, const float* b_panel, float* c, int ldc, int rows, int columns,
                         const TileMerge& merge) {
    constexpr int kRows = GemmTileShape<Arch>::rows;
    constexpr int kPackedColumns = GemmTileShape<Arch>::vectors * static_cast<int>(xsimd::batch<float, Arch>::size);
    xsimd::batch<float, Arch> acc[kRows][kVectors];
#pragma GCC unroll 16
    for (int i = 0; i < kRows; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < kVectors; ++v) acc[i][v] = xsimd::batch<float, Arch>(0.0f);
    outer_product_sums<Arch>(kc, a_panel, kRows, b_panel, kPackedColumns, acc);
    merge_tile<Arch, kVectors>(acc, c, ldc, rows, columns, merge);
}

// The blocking of one product with a register tile of Shape: how multiply() walks it and how much of the workspace
// it packs into.
template <class Arch, class Shape>
struct Blocking {
    static constexpr int kRows = Shape::rows;
    static constexpr int kWidth = static_cast<int>(xsimd::batch<float, Arch>::size);
    static constexpr int kColumns = Shape::vectors * kWidth;
    int row_block, depth_block, column_block;
    std::ptrdiff_t padded_rows;
    // kDepthBlock, or with A packed beforehand the tile's own target where it names one.
    static constexpr int depth_target(bool a_packed) {
        if constexpr (requires { Shape::packed_a_depth_block; })
            if (a_packed) return Shape::packed_a_depth_block;
        return kDepthBlock;
    }
    // The buffers hold depth blocks of min(depth target, k), the most any product of depth k or less cuts (an even
    // cut of a smaller k can be deeper than one of k: 250 in one block, 1152 as 5 x 231): a workspace for a product
    // then serves every smaller one, which callers rely on (a batch's last chunk is narrower).
    std::size_t depth_capacity;
    Blocking(int m, int n, int k, bool a_packed)
        : row_block(balanced_block(m, kRowBlockTarget, kRows)),
          depth_block(balanced_block(k, depth_target(a_packed), 1)),
          // A whole number of micro-panels (NR need not divide kColumnBlock: it is 12 on NEON).
          column_block(std::min(round_up(n, kColumns), kColumnBlock / kColumns * kColumns)),
          padded_rows(round_up(m, kRows)),
          depth_capacity(static_cast<std::size_t>(std::min(depth_target(a_packed), k))) {}
    // Floats of packed A, rounded up so that packed B after it starts 64-byte aligned.
    std::size_t a_floats(bool a_packed) const {
        return a_packed ? 0 : (static_cast<std::size_t>(padded_rows) * depth_capacity + 15) / 16 * 16;
    }
    std::size_t b_floats() const { return static_cast<std::size_t>(column_block) * depth_capacity; }
};

}  // namespace gemm_detail
}  // namespace

// The operands as given, in f32.
template <class Arch>
struct F32Operands {
    using Shape = GemmTileShape<Arch>;
    static void pack_a(const float* a, int lda, bool transposed, int row, int rows, int depth, int kc, int tile_rows,
                       float* packed) {
        gemm_detail::pack_a<Arch>(a, lda, transposed, row, rows, depth, kc, tile_rows, packed);
    }
    static void pack_b(const float* b, int ldb, bool transposed, int depth, int kc, int column, int columns,
                       int tile_columns, float* packed) {
        gemm_detail::pack_b<Arch>(b, ldb, transposed, depth, kc, column, columns, tile_columns, packed);
    }
    template <int kVectors>
    static void micro_kernel(int kc, const float* a_panel, const float* b_panel, float* c, int ldc, int rows,
                             int columns, const gemm_detail::TileMerge& merge) {
        gemm_detail::micro_kernel<Arch, kVectors>(kc, a_panel, b_panel, c, ldc, rows, columns, merge);
    }
};

template <class Arch, class Operands>
std::size_t PackedGemmF32<Arch, Operands>::pack_a(bool transpose_a, int m, int k, const float* a, int lda,
                                                  float* packed) const {
    using namespace gemm_detail;
    constexpr int kRows = Operands::Shape::rows;
    const std::size_t padded_rows = static_cast<std::size_t>(round_up(std::max(m, 0), kRows));
    if (!packed || m <= 0 || k <= 0) return padded_rows * static_cast<std::size_t>(std::max(k, 0));
    // Depth blocks as multiply() cuts them with A packed.
    const int depth_block = Blocking<Arch, typename Operands::Shape>(m, 1, k, true).depth_block;
    for (int pc = 0; pc < k; pc += depth_block) {
        const int kc = std::min(depth_block, k - pc);
        float* block = packed + padded_rows * pc;
        for (int row = 0; row < m; row += kRows)
            Operands::pack_a(a, lda, transpose_a, row, std::min(kRows, m - row), pc, kc, kRows,
                             block + static_cast<std::ptrdiff_t>(row) * kc);
    }
    return padded_rows * k;
}

template <class Arch, class Operands>
std::size_t PackedGemmF32<Arch, Operands>::workspace_floats(int m, int n, int k, bool a_packed) const {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    const gemm_detail::Blocking<Arch, typename Operands::Shape> blocking(m, n, k, a_packed);
    return blocking.a_floats(a_packed) + blocking.b_floats();
}

template <class Arch, class Operands>
void PackedGemmF32<Arch, Operands>::multiply(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha,
                                             const float* a, int lda, const float* prepacked_a, const float* b,
                                             int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue,
                                             float* workspace) const {
    using namespace gemm_detail;
    constexpr int kColumns = Operands::Shape::vectors * static_cast<int>(xsimd::batch<float, Arch>::size);
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {  // no product: only beta, bias and ReLU
        const TileMerge merge{alpha, beta, epilogue.row_bias, epilogue.relu};
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) {
                float* out = c + static_cast<std::ptrdiff_t>(i) * ldc + j;
                *out = merge.apply(0.0f, out, i);
            }
        return;
    }

    if constexpr (std::is_same_v<Operands, F32Operands<Arch>>) {
        if (!prepacked_a && !transpose_b && thin(m, n, k)) {
            multiply_thin(transpose_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue);
            return;
        }
    }
    multiply_blocks(transpose_a, m, n, k, alpha, a, lda, prepacked_a, beta, c, ldc, epilogue, workspace, [] {},
                    [&](int depth, int kc, int column, int columns, float* packed) {
                        Operands::pack_b(b, ldb, transpose_b, depth, kc, column, columns, kColumns, packed);
                    });
}

template <class Arch, class Operands>
template <class Prepare, class PackB>
void PackedGemmF32<Arch, Operands>::multiply_blocks(bool transpose_a, int m, int n, int k, float alpha, const float* a,
                                                    int lda, const float* prepacked_a, float beta, float* c, int ldc,
                                                    const GemmEpilogue& epilogue, float* workspace,
                                                    const Prepare& prepare, const PackB& pack_b) const {
    using namespace gemm_detail;
    constexpr int kRows = Operands::Shape::rows;
    constexpr int kWidth = static_cast<int>(xsimd::batch<float, Arch>::size);
    constexpr int kVectors = Operands::Shape::vectors, kColumns = kVectors * kWidth;
    const Blocking<Arch, typename Operands::Shape> blocking(m, n, k, prepacked_a != nullptr);
    const int row_block = blocking.row_block, depth_block = blocking.depth_block, column_block = blocking.column_block;
    const std::ptrdiff_t padded_rows = blocking.padded_rows;
    float* a_workspace = prepacked_a ? nullptr : workspace;
    float* b_packed = workspace + blocking.a_floats(prepacked_a != nullptr);
    // Inside an outer parallel loop (e.g. one GEMM per thread) the GEMM runs on its caller's thread alone.
    const bool parallel = 2.0 * m * n * k >= kParallelMinFlops;

    const int row_panels = (m + kRows - 1) / kRows;
    const int row_blocks = (m + row_block - 1) / row_block;

    run_in_team(parallel, [&] {
        const int threads = omp_get_num_threads(), thread = omp_get_thread_num();
        prepare();
        for (int jc = 0; jc < n; jc += column_block) {
            const int nc = std::min(column_block, n - jc);
            const int column_panels = (nc + kColumns - 1) / kColumns;
            // Each thread takes a share of the column panels and packs them itself, so that B needs no barrier (and,
            // with A prepacked, nothing does), unless sharing out the row panels instead comes out more even: a
            // product 150 columns wide is 5 panels, which two threads cannot split evenly, but 43 row panels they can.
            // Compared: the busiest thread's columns (or rows), each as a share of its dimension.
            const int busiest_columns = std::min(nc, (column_panels + threads - 1) / threads * kColumns);
            const int busiest_rows = std::min(m, (row_panels + threads - 1) / threads * kRows);
            const bool split_columns = static_cast<double>(busiest_columns) / nc <= static_cast<double>(busiest_rows) / m;
            const int my_first_panel = split_columns ? column_panels * thread / threads : 0;
            const int my_last_panel = split_columns ? column_panels * (thread + 1) / threads : column_panels;
            for (int pc = 0; pc < k; pc += depth_block) {
                const int kc = std::min(depth_block, k - pc);
                const bool last = pc + kc == k;
                const TileMerge merge{alpha, pc == 0 ? beta : 1.0f, last ? epilogue.row_bias : nullptr,
                                      last && epilogue.relu};
                // Each panel has a slot of the full depth block, the same for every depth block: a thread's slots
                // then stay its own when the last depth block is shorter, and need no barrier between them.
                const auto b_panel_of = [&](int panel) {
                    return b_packed + static_cast<std::ptrdiff_t>(panel) * kColumns * depth_block;
                };
                const auto pack_b_panel = [&](int panel) {
                    pack_b(pc, kc, jc + panel * kColumns, std::min(kColumns, nc - panel * kColumns), b_panel_of(panel));
                };
                if (split_columns) {
                    for (int panel = my_first_panel; panel < my_last_panel; ++panel) pack_b_panel(panel);
                } else {
#pragma omp for schedule(static)
                    for (int panel = 0; panel < column_panels; ++panel) pack_b_panel(panel);
                }
                const float* a_packed = prepacked_a ? prepacked_a + padded_rows * pc : a_workspace;
                if (!prepacked_a) {
#pragma omp for schedule(static)
                    for (int panel = 0; panel < row_panels; ++panel)
                        Operands::pack_a(a, lda, transpose_a, panel * kRows, std::min(kRows, m - panel * kRows), pc,
                                         kc, kRows, a_workspace + static_cast<std::ptrdiff_t>(panel) * kRows * kc);
                }
                const auto tile = [&](int panel, int row) {
                    TileMerge tile_merge = merge;
                    if (tile_merge.row_bias) tile_merge.row_bias += row;
                    const int column = panel * kColumns;
                    const int columns = std::min(kColumns, nc - column);
                    const float* a_panel = a_packed + static_cast<std::ptrdiff_t>(row) * kc;
                    float* c_tile = c + static_cast<std::ptrdiff_t>(row) * ldc + jc + column;
                    const int rows = std::min(kRows, m - row);
                    if (columns <= kWidth)
                        Operands::template micro_kernel<1>(kc, a_panel, b_panel_of(panel), c_tile, ldc, rows, columns,
                                                           tile_merge);
                    else
                        Operands::template micro_kernel<kVectors>(kc, a_panel, b_panel_of(panel), c_tile, ldc, rows,
                                                                  columns, tile_merge);
                };
                if (split_columns) {
                    // The thread's B panels stay in L2 while the blocks of A pass them, one L2-sized block at a time.
                    for (int block = 0; block < row_blocks; ++block)
                        for (int panel = my_first_panel; panel < my_last_panel; ++panel)
                            for (int row = block * row_block; row < std::min(m, (block + 1) * row_block); row += kRows)
                                tile(panel, row);
                    // A (packed here) is packed anew for the next depth block: every thread must be done with it.
                    if (!prepacked_a) {
#pragma omp barrier
                    }
                } else {
                    // Each thread's row panels against every B panel; the for's barrier guards B, packed anew next.
#pragma omp for schedule(static)
                    for (int panel_row = 0; panel_row < row_panels; ++panel_row)
                        for (int panel = 0; panel < column_panels; ++panel) tile(panel, panel_row * kRows);
                }
            }
            // The next column block shares the panels out anew (or splits rows instead): every thread must be done
            // with this one's. The condition is the same on every thread.
            if (jc + column_block < n) {
#pragma omp barrier
            }
        }
    });
}

namespace {
namespace gemm_detail {

// One narrow tile's sums, kColumns columns by kRows = kVectors SIMD vectors of rows, kept column by column at `sums`
// (kRows floats apart, as the registers hold them) and added to what is there when `accumulate`: A a packed panel over
// depth k, B's kColumns columns read from b (row stride ldb), prefetching as outer_product_sums() does.
template <class Arch, int kColumns>
void narrow_sums(int k, const float* a_panel, const float* b, int ldb, float* sums, bool accumulate,
                 const char* prefetch, int prefetch_lines) {
    using Batch = xsimd::batch<float, Arch>;
    constexpr int kVectors = GemmTileShape<Arch>::vectors, kWidth = static_cast<int>(Batch::size);
    constexpr int kRows = kVectors * kWidth;
    Batch acc[kColumns][kVectors];
#pragma GCC unroll 16
    for (int j = 0; j < kColumns; ++j)
#pragma GCC unroll 4
        for (int v = 0; v < kVectors; ++v)
            acc[j][v] = accumulate ? Batch::load_unaligned(sums + j * kRows + v * kWidth) : Batch(0.0f);
    outer_product_sums<Arch>(k, b, ldb, a_panel, kRows, acc, prefetch, prefetch_lines);
#pragma GCC unroll 16
    for (int j = 0; j < kColumns; ++j)
#pragma GCC unroll 4
        for (int v = 0; v < kVectors; ++v) acc[j][v].store_unaligned(sums + j * kRows + v * kWidth);
}

using NarrowSums = void (*)(int, const float*, const float*, int, float*, bool, const char*, int);

// narrow_sums for 1 ... GemmTileShape<Arch>::rows columns, indexed by columns - 1: the last tile of a product
// takes only the columns it has.
template <class Arch, std::size_t... kColumns>
constexpr std::array<NarrowSums, sizeof...(kColumns)> narrow_tiles(std::index_sequence<kColumns...>) {
    return {narrow_sums<Arch, static_cast<int>(kColumns) + 1>...};
}

// One tile of multiply_conv3x3: the sums over depth [0, kc) of kColumns outputs side by side in a row by a narrow
// panel's kRows = kVectors SIMD vectors of rows, kept as narrow_sums() keeps them. The outputs' values at depth p are
// read at b + offsets[p] (b: the first output's place in the padded planes). With `accumulate` the block is summed on
// its own and then added to the sums there, as the packed GEMM merges a depth block into C: the same bits.
template <class Arch, int kColumns>
void plane_sums(int kc, const float* a_block, const float* b, const std::ptrdiff_t* offsets, float* sums,
                bool accumulate) {
    using Batch = xsimd::batch<float, Arch>;
    constexpr int kVectors = GemmTileShape<Arch>::vectors, kWidth = static_cast<int>(Batch::size);
    constexpr int kRows = kVectors * kWidth;
    Batch acc[kColumns][kVectors];
#pragma GCC unroll 16
    for (int j = 0; j < kColumns; ++j)
#pragma GCC unroll 4
        for (int v = 0; v < kVectors; ++v) acc[j][v] = Batch(0.0f);
#pragma GCC unroll 4
    for (int p = 0; p < kc; ++p) {
        outer_product_step<Arch>(b + offsets[p], a_block, acc);
        a_block += kRows;
    }
#pragma GCC unroll 16
    for (int j = 0; j < kColumns; ++j)
#pragma GCC unroll 4
        for (int v = 0; v < kVectors; ++v) {
            float* to = sums + j * kRows + v * kWidth;
            (accumulate ? acc[j][v] + Batch::load_aligned(to) : acc[j][v]).store_aligned(to);
        }
}

using PlaneSums = void (*)(int, const float*, const float*, const std::ptrdiff_t*, float*, bool);

// plane_sums for 1 ... GemmTileShape<Arch>::rows columns, indexed by columns - 1.
template <class Arch, std::size_t... kColumns>
constexpr std::array<PlaneSums, sizeof...(kColumns)> plane_tiles(std::index_sequence<kColumns...>) {
    return {plane_sums<Arch, static_cast<int>(kColumns) + 1>...};
}

// Merges narrow sums (`columns` columns of kRows, as narrow_sums() leaves them) into C[rows x columns], a vector's
// worth of rows and columns at a time, transposed in registers: a shallow product's merge one value at a time cost as
// much as its sums.
template <class Arch, int kRows>
void merge_narrow_sums(const float* sums, int columns, float* c, int ldc, int rows, const TileMerge& merge) {
    using Transpose = VectorTranspose<Arch>;
    using Batch = xsimd::batch<float, Arch>;
    constexpr int kWidth = Transpose::kWidth;
    static_assert(kRows % kWidth == 0, "a column of sums is whole vectors");
    for (int first = 0; first < rows; first += kWidth)
        for (int column = 0; column < columns; column += kWidth) {
            const int count = std::min(kWidth, columns - column);
            typename Transpose::Register row_sums[kWidth];  // row first + i's sums in these columns
            Transpose::transpose_registers(sums + column * kRows + first, kRows, count, row_sums);
#pragma GCC unroll 16
            for (int i = 0; i < kWidth; ++i) {
                if (first + i >= rows) break;
                float* c_row = c + static_cast<std::ptrdiff_t>(first + i) * ldc + column;
                const Batch value = merge_vector(Batch(row_sums[i]), merge, first + i,
                                                 [&] { return Batch(Transpose::load_first(c_row, count)); });
                Transpose::store_first(c_row, value, count);
            }
        }
}

}  // namespace gemm_detail
}  // namespace

template <class Arch, class Operands>
std::size_t PackedGemmF32<Arch, Operands>::pack_a_narrow(int m, int k, const float* a, int lda, float* packed) const
    requires std::is_same_v<Operands, F32Operands<Arch>>
{
    constexpr int kRows = kNarrowRows;
    const std::size_t padded_rows = static_cast<std::size_t>(gemm_detail::round_up(std::max(m, 0), kRows));
    if (!packed || m <= 0 || k <= 0) return padded_rows * static_cast<std::size_t>(std::max(k, 0));
    for (int row = 0; row < m; row += kRows)
        gemm_detail::pack_a<Arch>(a, lda, false, row, std::min(kRows, m - row), 0, k, kRows,
                            packed + static_cast<std::ptrdiff_t>(row) * k);
    return padded_rows * k;
}

template <class Arch, class Operands>
void PackedGemmF32<Arch, Operands>::multiply_narrow(int m, int n, int k, const float* packed_a, const float* b,
                                                    int ldb, float* c, int ldc, const GemmEpilogue& epilogue) const
    requires std::is_same_v<Operands, F32Operands<Arch>>
{
    constexpr int kColumns = GemmTileShape<Arch>::rows, kRows = kNarrowRows;
    static constexpr auto kTiles = gemm_detail::narrow_tiles<Arch>(std::make_index_sequence<kColumns>{});
    // A panel is read from memory by its first tile and from L2 by the others, which meanwhile prefetch the next panel
    // into L2, a line per step (15 % faster on 512 x 40 x 512 products, whose 1 MiB of A comes from L3).
    const int panel_lines = static_cast<int>(static_cast<std::size_t>(k) * kRows * sizeof(float) / 64);
    const gemm_detail::TileMerge merge{1.0f, 0.0f, nullptr, epilogue.relu};
    alignas(64) float sums[kColumns * kRows];
    for (int row = 0; row < m; row += kRows) {
        const float* a_panel = packed_a + static_cast<std::ptrdiff_t>(row) * k;
        const auto* next_panel = reinterpret_cast<const char*>(a_panel + static_cast<std::ptrdiff_t>(kRows) * k);
        gemm_detail::TileMerge tile_merge = merge;
        if (epilogue.row_bias) tile_merge.row_bias = epilogue.row_bias + row;
        for (int column = 0, tile = 0; column < n; column += kColumns, ++tile) {
            const int first_line = (tile - 1) * k;
            const bool prefetching = row + kRows < m && tile > 0 && first_line < panel_lines;
            const int columns = std::min(kColumns, n - column);
            kTiles[columns - 1](k, a_panel, b + column, ldb, sums, false,
                                prefetching ? next_panel + 64 * static_cast<std::ptrdiff_t>(first_line) : nullptr,
                                prefetching ? panel_lines - first_line : 0);
            float* c_tile = c + static_cast<std::ptrdiff_t>(row) * ldc + column;
            gemm_detail::merge_narrow_sums<Arch, kRows>(sums, columns, c_tile, ldc, std::min(kRows, m - row), tile_merge);
        }
    }
}

template <class Arch, class Operands>
std::size_t PackedGemmF32<Arch, Operands>::conv3x3_pack_a(int m, int channels, const float* a, float* packed) const
    requires std::is_same_v<Operands, F32Operands<Arch>>
{
    const int k = 9 * channels;
    if constexpr (kConv3x3ByPositions) return pack_a_narrow(m, k, a, k, packed);
    return pack_a(false, m, k, a, k, packed);
}

template <class Arch, class Operands>
std::size_t PackedGemmF32<Arch, Operands>::conv3x3_workspace_floats(int m, int channels, int height, int width,
                                                                    int images) const
    requires std::is_same_v<Operands, F32Operands<Arch>>
{
    const gemm_detail::PaddedPlanes padded{channels, height, width, images};
    // By positions: the padded planes. By columns: the planes, the product of several images, the GEMM's packing
    // space.
    if constexpr (kConv3x3ByPositions) return padded.elements();
    const int n = height * width * images;
    return padded.elements() + gemm_detail::conv3x3_product_floats(m, n, images) +
           workspace_floats(m, n, 9 * channels, true);
}

template <class Arch, class Operands>
void PackedGemmF32<Arch, Operands>::multiply_conv3x3(int m, int channels, int height, int width, int images,
                                                     const float* packed_a, const float* x, float* c,
                                                     const GemmEpilogue& epilogue, float* workspace) const
    requires std::is_same_v<Operands, F32Operands<Arch>>
{
    const int positions = height * width, k = 9 * channels;
    if (m <= 0 || positions <= 0 || images <= 0) return;
    if (k <= 0) {  // no product: multiply() sets C to the bias
        const std::size_t image_out = static_cast<std::size_t>(m) * positions;
        for (int image = 0; image < images; ++image)
            multiply(false, false, m, positions, 0, 1.0f, nullptr, 0, packed_a, x, positions, 0.0f,
                     c + image * image_out, positions, epilogue, workspace);
        return;
    }
    if constexpr (kConv3x3ByPositions)
        multiply_conv3x3_by_positions(m, channels, height, width, images, packed_a, x, c, epilogue, workspace);
    else
        multiply_conv3x3_by_columns(m, channels, height, width, images, packed_a, x, c, epilogue, workspace);
}

template <class Arch, class Operands>
void PackedGemmF32<Arch, Operands>::multiply_conv3x3_by_positions(int m, int channels, int height, int width,
                                                                  int images, const float* packed_a, const float* x,
                                                                  float* c, const GemmEpilogue& epilogue,
                                                                  float* workspace) const
    requires std::is_same_v<Operands, F32Operands<Arch>>
{
    using namespace gemm_detail;
    constexpr int kColumns = GemmTileShape<Arch>::rows, kRows = kNarrowRows;
    static constexpr auto kTiles = plane_tiles<Arch>(std::make_index_sequence<kColumns>{});
    const int positions = height * width, k = 9 * channels;
    const std::size_t image_out = static_cast<std::size_t>(m) * positions;
    const PaddedPlanes padded{channels, height, width, images};
    float* planes = workspace;
    std::vector<std::ptrdiff_t> offsets(static_cast<std::size_t>(k));  // where each depth reads, in the planes
    // The packed GEMM's depth blocks: each output's sums are then its sums on im2col, bit for bit.
    const int depth_block = Blocking<Arch, typename F32Operands<Arch>::Shape>(m, 1, k, true).depth_block;
    // A row of outputs in as few tiles as the tile's width allows, of about equal widths (15 as 7 + 8, not 12 + 3).
    const int row_tiles = (width + kColumns - 1) / kColumns;
    // A unit of work: one narrow panel of A against a band of rows of outputs (the images' rows one after the
    // other), a depth block at a time, so that a block of A serves every tile of the band while it is in cache (where
    // each tile went through the whole depth, conv4 of the reference network streamed its 590 KB panel of A once per
    // tile). Units go panel by panel: a thread's panel stays in cache while it passes the bands.
    const int rows = images * height;
    const int band_rows = std::clamp(kBandPositions / (row_tiles * kColumns), 1, rows);
    const int bands = (rows + band_rows - 1) / band_rows, panels = (m + kRows - 1) / kRows, units = panels * bands;
    const bool parallel = 2.0 * m * positions * images * k >= kParallelMinFlops;
    run_in_team(parallel, [&] {
        pad_planes(padded, x, 0.0f, planes);
#pragma omp for schedule(static)
        for (int p = 0; p < k; ++p) offsets[p] = padded.offset(p);
        const int threads = omp_get_num_threads(), thread = omp_get_thread_num();
        const int tile_floats = kColumns * kRows;
        std::vector<float, xsimd::aligned_allocator<float, 64>> sums(
            static_cast<std::size_t>(band_rows) * row_tiles * tile_floats);
        for (int unit = units * thread / threads; unit < units * (thread + 1) / threads; ++unit) {
            const int panel = unit / bands, first_row = unit % bands * band_rows;
            const int last_row = std::min(rows, first_row + band_rows), first_output = panel * kRows;
            const float* a_panel = packed_a + static_cast<std::ptrdiff_t>(first_output) * k;
            const TileMerge merge{1.0f, 0.0f, epilogue.row_bias ? epilogue.row_bias + first_output : nullptr,
                                  epilogue.relu};
            for (int pc = 0; pc < k; pc += depth_block) {
                const int kc = std::min(depth_block, k - pc);
                for (int row = first_row; row < last_row; ++row)
                    for (int tile = 0; tile < row_tiles; ++tile) {
                        const int image = row / height, y = row % height;
                        const int first = width * tile / row_tiles, columns = width * (tile + 1) / row_tiles - first;
                        float* tile_sums = sums.data() + ((row - first_row) * row_tiles + tile) * tile_floats;
                        kTiles[columns - 1](kc, a_panel + static_cast<std::ptrdiff_t>(pc) * kRows,
                                            planes + padded.base(image * positions + y * width + first), &offsets[pc],
                                            tile_sums, pc > 0);
                        if (pc + kc == k)
                            merge_narrow_sums<Arch, kRows>(tile_sums, columns,
                                                           c + image * image_out +
                                                               static_cast<std::size_t>(first_output) * positions +
                                                               y * width + first,
                                                           positions, std::min(kRows, m - first_output), merge);
                    }
            }
        }
    });
}

template <class Arch, class Operands>
void PackedGemmF32<Arch, Operands>::multiply_conv3x3_by_columns(int m, int channels, int height, int width,
                                                                int images, const float* packed_a, const float* x,
                                                                float* c, const GemmEpilogue& epilogue,
                                                                float* workspace) const
    requires std::is_same_v<Operands, F32Operands<Arch>>
{
    using namespace gemm_detail;
    constexpr int kColumns = GemmTileShape<Arch>::vectors * static_cast<int>(xsimd::batch<float, Arch>::size);
    const int positions = height * width, n = positions * images, k = 9 * channels;
    const std::size_t image_out = static_cast<std::size_t>(m) * positions;
    const PaddedPlanes padded{channels, height, width, images};
    float* planes = workspace;  // 64 floats a multiple: what follows stays 64-byte aligned
    // One image: C itself; several: their product, m x n, then each image's columns copied out to C.
    float* product = images > 1 ? workspace + padded.elements() : c;
    float* gemm_workspace = workspace + padded.elements() + conv3x3_product_floats(m, n, images);
    multiply_blocks(
        false, m, n, k, 1.0f, nullptr, 0, packed_a, 0.0f, product, n, epilogue, gemm_workspace,
        [&] { pad_planes(padded, x, 0.0f, planes); },  // its `omp for` ends in a barrier: the planes are complete
        [&](int depth, int kc, int column, int columns, float* packed) {
            pack_conv3x3<Arch>(padded, planes, depth, kc, column, columns, kColumns, packed);
        });
    if (images > 1)
        for (int image = 0; image < images; ++image)
            for (int row = 0; row < m; ++row)
                std::copy_n(product + static_cast<std::size_t>(row) * n + static_cast<std::size_t>(image) * positions,
                            positions, c + image * image_out + static_cast<std::size_t>(row) * positions);
}

template <class Arch, class Operands>
bool PackedGemmF32<Arch, Operands>::thin(int m, int n, int k)
    requires std::is_same_v<Operands, F32Operands<Arch>>
{
    // Not the thread count: the two routes sum in different orders, and training must give the same bits on any
    // number of threads.
    return 2 * m >= kNarrowRows && n <= gemm_detail::kThinMaxColumns &&
           static_cast<std::size_t>(n) * static_cast<std::size_t>(k) <= gemm_detail::kThinMaxBFloats;
}

template <class Arch, class Operands>
void PackedGemmF32<Arch, Operands>::multiply_thin(bool transpose_a, int m, int n, int k, float alpha, const float* a,
                                                  int lda, const float* b, int ldb, float beta, float* c, int ldc,
                                                  const GemmEpilogue& epilogue) const
    requires std::is_same_v<Operands, F32Operands<Arch>>
{
    using namespace gemm_detail;
    constexpr int kColumns = GemmTileShape<Arch>::rows, kRows = kNarrowRows;
    static constexpr auto kTiles = narrow_tiles<Arch>(std::make_index_sequence<kColumns>{});
    const int depth_block = balanced_block(k, kDepthBlock, 1);
    const int panels = (m + kRows - 1) / kRows, tiles = (n + kColumns - 1) / kColumns;
    const bool parallel = 2.0 * m * n * k >= kParallelMinFlops;
    // Each thread packs its own panels of A, a depth block at a time, and keeps their sums in a buffer of its own: no
    // workspace and no barrier. B is read where it lies; the thread's panels pass each depth block of it in turn, so
    // that the block (k x n floats of at most 256 x 160) stays in L2 and B comes from memory once per thread.
    run_in_team(parallel, [&] {
        const int threads = omp_get_num_threads(), thread = omp_get_thread_num();
        const int first = panels * thread / threads, last = panels * (thread + 1) / threads;
        const std::size_t panel_sums = static_cast<std::size_t>(tiles) * kColumns * kRows;
        std::vector<float, xsimd::aligned_allocator<float, 64>> sums(panel_sums * (last - first));
        alignas(64) float a_block[kRows * kDepthBlock];
        for (int pc = 0; pc < k; pc += depth_block) {
            const int kc = std::min(depth_block, k - pc);
            for (int panel = first; panel < last; ++panel) {
                const int row = panel * kRows, rows = std::min(kRows, m - row);
                gemm_detail::pack_a<Arch>(a, lda, transpose_a, row, rows, pc, kc, kRows, a_block);
                for (int tile = 0; tile < tiles; ++tile) {
                    const int column = tile * kColumns;
                    const float* b_block = b + static_cast<std::ptrdiff_t>(pc) * ldb + column;
                    kTiles[std::min(kColumns, n - column) - 1](
                        kc, a_block, b_block, ldb, sums.data() + (panel - first) * panel_sums + tile * kColumns * kRows,
                        pc > 0, nullptr, 0);
                }
            }
        }
        for (int panel = first; panel < last; ++panel) {
            const int row = panel * kRows, rows = std::min(kRows, m - row);
            TileMerge merge{alpha, beta, epilogue.row_bias ? epilogue.row_bias + row : nullptr, epilogue.relu};
            for (int tile = 0; tile < tiles; ++tile) {
                const int column = tile * kColumns;
                merge_narrow_sums<Arch, kRows>(sums.data() + (panel - first) * panel_sums + tile * kColumns * kRows,
                                               std::min(kColumns, n - column),
                                               c + static_cast<std::ptrdiff_t>(row) * ldc + column, ldc, rows, merge);
            }
        }
    });
}

EDGEQC_EXTERN_SIMD_KERNEL(PackedGemmF32)

}  // namespace edgeqc
