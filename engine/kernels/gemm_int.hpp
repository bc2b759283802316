// Packed integer GEMMs of quantized inference, summed exactly in int32 and finished by one epilogue (per row a
// bias and a scale, requantized to 7-bit activations, dequantized to floats or kept as sums; ReLU fused):
//   s8:  A the s8 weights (m x k) times B the 7-bit activations (k x n), for im2col convolutions and dense layers;
//   s16: A and B int16, for the int8 Winograd convolution's transformed weights and inputs.
// The driver (packing, blocking, threads, epilogue) is written once here; each arch's source supplies only the
// register tiles IntTile<S8Operands, Arch> and IntTile<S16Operands, Arch> in its own intrinsics (xsimd has no widening integer dot
// products) and instantiates the driver for them.
//
// Packed layout, shared by every arch: k is zero-padded to a multiple of kDepthMultiple and cut into groups of
// Operands::kGroup consecutive values, 32 bits in all (four s8 or two s16); a panel of A holds, group after group,
// its rows' groups side by side, and a panel of B the same for its columns. One 32-bit lane then holds a group of one
// row or column, which is what AVX2's vpmaddubsw + vpmaddwd or vpmaddwd, AVX-VNNI's vpdpbusd and ARM's smull/smlal
// + sadalp or sdot consume. A tile may ask for A in longer groups and a deeper padding (AMX's tiles: 64 bytes of one
// row, a tile row), through Tile::kAGroup and Tile::kDepthMultiple.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "engine/kernels.hpp"
#include "engine/kernels/padded_planes.hpp"
#include "engine/kernels/simd_arch.hpp"

namespace edgeqc {

// The operands of the two GEMMs: element types of A and B, and the values of a 32-bit group.
struct S8Operands {
    using A = std::int8_t;
    using B = std::uint8_t;
    static constexpr int kGroup = 4;
};
struct S16Operands {
    using A = std::int16_t;
    using B = std::int16_t;
    static constexpr int kGroup = 2;
};

// The register tile of one arch for one kind of operands: kRows x kColumns int32 sums of a packed A panel (kRows
// rows) times a packed B panel (kColumns columns) over `groups` groups of B, stored row-major into `sums`:
//   static constexpr int kRows, kColumns;
//   static void sums(int groups, const Operands::A* a, const Operands::B* b, std::int32_t* sums);
// and optionally sums_half (the same for a panel's first kColumns / 2 columns alone, which the driver calls where
// no more are used), kAGroup (values of a row of A side by side in its panel; Operands::kGroup if absent),
// kDepthMultiple (the depth padding, a multiple of kAGroup; 8 if absent), finish_quantized (finish_sums into 7-bit
// activations, the same bits in the tile's own vectors) and pack_conv3x3_panel (a convolution's B panel packed in the
// tile's own instructions, or false to leave it to pack_conv3x3_runs). Only declared here: each arch's source
// specializes it.
template <class Operands, class Arch>
struct IntTile;

// Unnamed: each per-arch source compiles these helpers with its own flags, and a helper with external linkage would
// be one symbol that the linker keeps from any one of them (an AVX-512 copy could then run on an AVX2-only CPU).
namespace {
namespace int_gemm_detail {

constexpr int kDepthMultiple = 8;                // NEON's s8 tile takes two groups per step (smull + smlal)
constexpr std::size_t kRowBlockBytes = 256 << 10;  // a block of packed A that stays in L2 while B panels pass
constexpr double kParallelMinOps = 2e6;          // smaller products lose more to thread start-up than they gain

// The 32 bits of one packed group (four s8 or two s16), for a tile to broadcast.
inline std::int32_t group_bits(const void* group) {
    std::int32_t bits;
    std::memcpy(&bits, group, sizeof bits);
    return bits;
}

// The depth padding and the A group length of a tile: its own, or the defaults every vector tile shares.
template <class Tile>
constexpr int depth_multiple() {
    if constexpr (requires { Tile::kDepthMultiple; }) return Tile::kDepthMultiple;
    else return kDepthMultiple;
}
template <class Tile, class Operands>
constexpr int a_group() {
    if constexpr (requires { Tile::kAGroup; }) return Tile::kAGroup;
    else return Operands::kGroup;
}

constexpr std::size_t round_up(std::size_t value, std::size_t multiple) {
    return (value + multiple - 1) / multiple * multiple;
}

template <class Tile>
int padded_depth(int k) {
    return static_cast<int>(round_up(static_cast<std::size_t>(k), depth_multiple<Tile>()));
}

// Packs `lines` lines (rows of A, or columns of B) of depth k into one panel of `panel_lines` lines in the group
// layout (groups of kGroup), zero-padded to `depth`; element (line, p) is source[line * line_stride + p *
// depth_stride]. Lines and depth beyond the source are zero, so padding adds nothing to any sum.
template <int kGroup, class T>
void pack_panel(const T* source, std::ptrdiff_t line_stride, std::ptrdiff_t depth_stride, int lines, int k,
                int depth, int panel_lines, T* packed) {
    if (lines < panel_lines || depth > k) std::fill_n(packed, static_cast<std::ptrdiff_t>(depth) * panel_lines, T(0));
    const auto at = [&](int line, int p) -> T& {
        return packed[static_cast<std::ptrdiff_t>(p / kGroup) * panel_lines * kGroup + line * kGroup + p % kGroup];
    };
    if (depth_stride == 1) {  // each line's depth is contiguous in the source
        for (int line = 0; line < lines; ++line)
            for (int p = 0; p < k; ++p) at(line, p) = source[line * line_stride + p];
    } else {  // lines are contiguous: read along them
        // A group of kGroup depth rows at a time, each read along its lines: the compiler turns this into an
        // interleave of whole vectors, where one depth row at a time is a scatter of single values (it was most of
        // an int8 im2col layer's packing time).
        int p = 0;
        if (line_stride == 1)
            for (; p + kGroup <= k; p += kGroup) {
                const T* __restrict rows[kGroup];
                for (int q = 0; q < kGroup; ++q) rows[q] = source + static_cast<std::ptrdiff_t>(p + q) * depth_stride;
                T* __restrict out = &at(0, p);
                for (int line = 0; line < lines; ++line)
                    for (int q = 0; q < kGroup; ++q) out[line * kGroup + q] = rows[q][line];
            }
        for (; p < k; ++p)
            for (int line = 0; line < lines; ++line) at(line, p) = source[line * line_stride + p * depth_stride];
    }
}

// Round to nearest, ties to even, of |value| <= 2^22 (as std::nearbyint in the default rounding mode): adding
// 1.5 x 2^23 leaves no fraction bits, the FPU rounds, and subtracting it back is exact. Unlike nearbyint it needs
// no SSE4.1 (roundps) to vectorize, so every arch's build computes it in vectors, and all get the same bits.
constexpr float kRoundingShifter = 12582912.0f;  // 1.5 x 2^23
inline float round_to_even(float value) {
    return (value + kRoundingShifter) - kRoundingShifter;
}

// The epilogue of `count` sums of row `row`, columns [column, column + count): the one definition every arch and
// the reference share, so that their outputs agree bit for bit (the same float operations in the same order;
// clamping before rounding equals clamping after, as the bounds are whole numbers). Loops over locals the
// compiler vectorizes.
inline void finish_sums(const std::int32_t* sums, int count, int row, int column, const IntegerGemmEpilogue& e) {
    const std::ptrdiff_t offset = static_cast<std::ptrdiff_t>(row) * e.ldc + column;
    const std::int32_t* __restrict in = sums;
    if (e.sums) {
        std::int32_t* __restrict out = e.sums + offset;
        for (int j = 0; j < count; ++j) out[j] = in[j];
        return;
    }
    const std::int32_t bias = e.row_bias ? e.row_bias[row] : 0;
    const float scale = e.row_scale[row];
    if (e.quantized) {
        const auto low = static_cast<float>(e.relu ? 0 : -e.zero_point);
        const auto high = static_cast<float>(kActivationMax - e.zero_point);
        const int zero_point = e.zero_point;
        std::uint8_t* __restrict out = e.quantized + offset;
        for (int j = 0; j < count; ++j) {
            float value = static_cast<float>(in[j] + bias) * scale;
            value = value < low ? low : value;
            value = value > high ? high : value;
            out[j] = static_cast<std::uint8_t>(static_cast<int>(round_to_even(value)) + zero_point);
        }
        return;
    }
    const bool relu = e.relu;
    float* __restrict out = e.real + offset;
    for (int j = 0; j < count; ++j) {
        const float value = static_cast<float>(in[j] + bias) * scale;
        out[j] = relu && value < 0.0f ? 0.0f : value;
    }
}

// The epilogue of an empty product (k = 0): every sum is 0.
inline void finish_empty_product(int m, int n, const IntegerGemmEpilogue& epilogue) {
    const std::int32_t zero = 0;
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) finish_sums(&zero, 1, i, j, epilogue);
}

}  // namespace int_gemm_detail
}  // namespace

// The GEMM of one kind of operands on one arch.
template <class Operands, class Arch>
struct PackedGemmInt {
    using A = typename Operands::A;
    using B = typename Operands::B;
    // The GemmPackA contract: row panels of Tile::kRows rows, depth padded.
    std::size_t pack_a(int m, int k, const A* a, int lda, A* packed) const;
    // The GemmWorkspace contract: the whole of B, packed.
    std::size_t workspace_bytes(int m, int n, int k) const;
    // The GemmPackedA contract.
    void multiply(bool transpose_b, int m, int n, int k, const A* packed_a, const B* b, int ldb,
                  const IntegerGemmEpilogue& epilogue, unsigned char* workspace) const;
    // The GemmPackB contract: op(B) as multiply() packs it into its workspace (workspace_bytes of it).
    std::size_t pack_b(bool transpose_b, int n, int k, const B* b, int ldb, B* packed) const;
    // The GemmPackedAB contract: multiply() with B packed beforehand.
    void multiply_packed(int m, int n, int k, const A* packed_a, const B* packed_b,
                         const IntegerGemmEpilogue& epilogue) const;
    // The GemmConv3x3S8 contracts: B = im2col of a 3x3, stride-1, padding-1 convolution's input, packed straight
    // from the image (through a copy of it with its padding around each plane) instead of from an im2col matrix.
    std::size_t conv3x3_workspace_bytes(int m, int channels, int height, int width) const
        requires std::is_same_v<Operands, S8Operands>;
    void multiply_conv3x3(int m, int channels, int height, int width, const A* packed_a, const B* x, B padding,
                          const IntegerGemmEpilogue& epilogue, unsigned char* workspace) const
        requires std::is_same_v<Operands, S8Operands>;

private:
    // Packs every column panel, as an orphaned `omp for` (inside a parallel region, the team shares the panels).
    void pack_b_panels(bool transpose_b, int n, int k, const B* b, int ldb, B* packed) const;
    // Every tile of C, shared out among the threads of the enclosing team: each must call it with the same
    // arguments (orphaned; it ends in no barrier).
    void compute(int m, int n, int k, const A* packed_a, const B* packed_b, const IntegerGemmEpilogue& epilogue) const;
};

template <class Operands, class Arch>
std::size_t PackedGemmInt<Operands, Arch>::pack_a(int m, int k, const A* a, int lda, A* packed) const {
    using namespace int_gemm_detail;
    using Tile = IntTile<Operands, Arch>;
    constexpr int kRows = Tile::kRows;
    if (m <= 0 || k <= 0) return 0;
    const int panels = (m + kRows - 1) / kRows, depth = padded_depth<Tile>(k);
    const std::size_t panel_elements = static_cast<std::size_t>(depth) * kRows;
    if (packed)
        for (int panel = 0; panel < panels; ++panel)
            pack_panel<a_group<Tile, Operands>()>(a + static_cast<std::ptrdiff_t>(panel) * kRows * lda, lda, 1,
                                                  std::min(kRows, m - panel * kRows), k, depth, kRows,
                                                  packed + panel * panel_elements);
    return panels * panel_elements;
}

template <class Operands, class Arch>
std::size_t PackedGemmInt<Operands, Arch>::workspace_bytes(int m, int n, int k) const {
    using namespace int_gemm_detail;
    using Tile = IntTile<Operands, Arch>;
    constexpr int kColumns = Tile::kColumns;
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    return static_cast<std::size_t>((n + kColumns - 1) / kColumns) * kColumns * padded_depth<Tile>(k) * sizeof(B);
}

template <class Operands, class Arch>
void PackedGemmInt<Operands, Arch>::pack_b_panels(bool transpose_b, int n, int k, const B* b, int ldb,
                                                   B* packed) const {
    using namespace int_gemm_detail;
    using Tile = IntTile<Operands, Arch>;
    constexpr int kColumns = Tile::kColumns;
    const int depth = padded_depth<Tile>(k), column_panels = (n + kColumns - 1) / kColumns;
    const std::ptrdiff_t line_stride = transpose_b ? ldb : 1, depth_stride = transpose_b ? 1 : ldb;
#pragma omp for schedule(static)
    for (int panel = 0; panel < column_panels; ++panel)
        pack_panel<Operands::kGroup>(b + panel * kColumns * line_stride, line_stride, depth_stride,
                                     std::min(kColumns, n - panel * kColumns), k, depth, kColumns,
                                     packed + static_cast<std::ptrdiff_t>(panel) * kColumns * depth);
}

template <class Operands, class Arch>
void PackedGemmInt<Operands, Arch>::compute(int m, int n, int k, const A* packed_a, const B* packed_b,
                                            const IntegerGemmEpilogue& epilogue) const {
    using namespace int_gemm_detail;
    using Tile = IntTile<Operands, Arch>;
    constexpr int kRows = Tile::kRows, kColumns = Tile::kColumns, kGroup = Operands::kGroup;
    static_assert(sizeof(A) * kGroup == 4 && sizeof(B) * kGroup == 4, "a group is one 32-bit lane");
    static_assert(depth_multiple<Tile>() % a_group<Tile, Operands>() == 0, "the padding holds whole A groups");
    const int depth = padded_depth<Tile>(k), groups = depth / kGroup;
    const int column_panels = (n + kColumns - 1) / kColumns, row_panels = (m + kRows - 1) / kRows;
    const int most_panels =
        std::max(1, static_cast<int>(kRowBlockBytes / (static_cast<std::size_t>(depth) * kRows * sizeof(A))));
    // The fewest blocks of at most that many panels, each of ceil(panels / blocks) but the last (16 panels at
    // most 14 a block: 8 and 8, not 14 and 2).
    const int row_blocks = (row_panels + most_panels - 1) / most_panels;
    const int block_panels = (row_panels + row_blocks - 1) / row_blocks;
    // The tiles in order: block by block, in each block B panel by B panel (the panel staying in cache while
    // the block's A panels pass), and the threads take equal shares of that order, weighed by columns computed (a half
    // tile counts one, a whole one two). An `omp for` over (block, panel) pairs split conv5's 22 row panels (blocks
    // of 4, 4, 4, 4, 4, 2) 12 to 10 between two threads; shares of tiles split them to within one tile.
    const auto tile_cost = [&](int panel) {
        if constexpr (requires { Tile::sums_half; })
            if (2 * std::min(kColumns, n - panel * kColumns) <= kColumns) return 1;
        return 2;
    };
    long total_cost = 0;
    for (int panel = 0; panel < column_panels; ++panel) total_cost += tile_cost(panel);
    total_cost *= row_panels;
    const long threads = omp_get_num_threads(), thread = omp_get_thread_num();
    long cost_before = 0;  // of the tiles ahead of the current one in the order
    for (int block = 0; block < row_blocks; ++block) {
        const int first_row_panel = block * block_panels;
        const int last_row_panel = std::min(row_panels, first_row_panel + block_panels);
        for (int panel = 0; panel < column_panels; ++panel) {
            const B* b_panel = packed_b + static_cast<std::ptrdiff_t>(panel) * kColumns * depth;
            const int column = panel * kColumns, columns = std::min(kColumns, n - column), cost = tile_cost(panel);
            for (int row_panel = first_row_panel; row_panel < last_row_panel; ++row_panel, cost_before += cost) {
                // The thread whose share holds the tile's middle.
                if ((2 * cost_before + cost) * threads / (2 * total_cost) != thread) continue;
                alignas(64) std::int32_t sums[kRows * kColumns];
                const A* a_panel = packed_a + static_cast<std::ptrdiff_t>(row_panel) * kRows * depth;
                if (cost == 1) {
                    if constexpr (requires { Tile::sums_half; }) Tile::sums_half(groups, a_panel, b_panel, sums);
                } else {
                    Tile::sums(groups, a_panel, b_panel, sums);
                }
                const int row = row_panel * kRows, rows = std::min(kRows, m - row);
                for (int i = 0; i < rows; ++i) {
                    if constexpr (requires { Tile::finish_quantized; })  // the same bits, in the tile's vectors
                        if (epilogue.quantized) {
                            Tile::finish_quantized(sums + i * kColumns, columns, row + i, column, epilogue);
                            continue;
                        }
                    finish_sums(sums + i * kColumns, columns, row + i, column, epilogue);
                }
            }
        }
    }
}

template <class Operands, class Arch>
void PackedGemmInt<Operands, Arch>::multiply(bool transpose_b, int m, int n, int k, const A* packed_a, const B* b,
                                             int ldb, const IntegerGemmEpilogue& epilogue,
                                             unsigned char* workspace) const {
    using namespace int_gemm_detail;
    if (m <= 0 || n <= 0) return;
    if (k <= 0) return finish_empty_product(m, n, epilogue);
    auto* b_packed = reinterpret_cast<B*>(workspace);
#pragma omp parallel if (2.0 * m * n * k >= kParallelMinOps && !omp_in_parallel())
    {
        pack_b_panels(transpose_b, n, k, b, ldb, b_packed);
        compute(m, n, k, packed_a, b_packed, epilogue);
    }
}

template <class Operands, class Arch>
std::size_t PackedGemmInt<Operands, Arch>::pack_b(bool transpose_b, int n, int k, const B* b, int ldb,
                                                  B* packed) const {
    using namespace int_gemm_detail;
    const std::size_t elements = workspace_bytes(1, n, k) / sizeof(B);
    if (!packed || elements == 0) return elements;
#pragma omp parallel if (static_cast<double>(elements) >= kParallelMinOps && !omp_in_parallel())
    pack_b_panels(transpose_b, n, k, b, ldb, packed);
    return elements;
}

template <class Operands, class Arch>
void PackedGemmInt<Operands, Arch>::multiply_packed(int m, int n, int k, const A* packed_a, const B* packed_b,
                                                    const IntegerGemmEpilogue& epilogue) const {
    using namespace int_gemm_detail;
    if (m <= 0 || n <= 0) return;
    if (k <= 0) return finish_empty_product(m, n, epilogue);
#pragma omp parallel if (2.0 * m * n * k >= kParallelMinOps && !omp_in_parallel())
    compute(m, n, k, packed_a, packed_b, epilogue);
}

namespace {
namespace int_gemm_detail {

using padded_planes_detail::pad_planes;
using padded_planes_detail::PaddedPlanes;

// The bytes of the offsets of a padded depth (each depth's, -1 past k), after the planes in the workspace.
inline std::size_t offsets_bytes(int depth) { return round_up(depth * sizeof(std::ptrdiff_t), 64); }

// Packs a panel of a 3x3 convolution's B run by run: a run is columns whose outputs are consecutive in one row, so
// each tap reads it as one stretch of a plane, and a group's taps interleave along it (a loop the compiler
// vectorizes, as in pack_panel). base[j] is column j's offset in the planes; columns from `columns` on are zero.
template <int kColumns, int kGroup, class B>
void pack_conv3x3_runs(const B* planes, const std::ptrdiff_t* offsets, const int* base, int columns, int depth,
                       B* out) {
    static constexpr B kZeros[kColumns] = {};
    for (int first = 0; first < kColumns;) {
        int length = kColumns - first;  // the zero columns at the end, or a run
        if (first < columns)
            for (length = 1; first + length < columns && base[first + length] == base[first] + length;) ++length;
        for (int p = 0; p < depth; p += kGroup) {
            const B* __restrict rows[kGroup];
            for (int q = 0; q < kGroup; ++q)
                rows[q] = first < columns && offsets[p + q] >= 0 ? planes + offsets[p + q] + base[first] : kZeros;
            B* __restrict group = out + static_cast<std::ptrdiff_t>(p / kGroup) * kColumns * kGroup + first * kGroup;
            for (int j = 0; j < length; ++j)
                for (int q = 0; q < kGroup; ++q) group[j * kGroup + q] = rows[q][j];
        }
        first += length;
    }
}

}  // namespace int_gemm_detail
}  // namespace

template <class Operands, class Arch>
std::size_t PackedGemmInt<Operands, Arch>::conv3x3_workspace_bytes(int m, int channels, int height, int width) const
    requires std::is_same_v<Operands, S8Operands>
{
    using namespace int_gemm_detail;
    using Tile = IntTile<Operands, Arch>;
    const std::size_t planes = PaddedPlanes{channels, height, width}.elements() * sizeof(B);
    return planes + offsets_bytes(padded_depth<Tile>(9 * channels)) +
           workspace_bytes(m, height * width, 9 * channels);
}

template <class Operands, class Arch>
void PackedGemmInt<Operands, Arch>::multiply_conv3x3(int m, int channels, int height, int width, const A* packed_a,
                                                     const B* x, B padding, const IntegerGemmEpilogue& epilogue,
                                                     unsigned char* workspace) const
    requires std::is_same_v<Operands, S8Operands>
{
    using namespace int_gemm_detail;
    using Tile = IntTile<Operands, Arch>;
    constexpr int kColumns = Tile::kColumns, kGroup = Operands::kGroup;
    const int n = height * width, k = 9 * channels;
    if (m <= 0 || n <= 0) return;
    if (k <= 0) return finish_empty_product(m, n, epilogue);
    const PaddedPlanes padded{channels, height, width};
    const int depth = padded_depth<Tile>(k), column_panels = (n + kColumns - 1) / kColumns;
    auto* planes = reinterpret_cast<B*>(workspace);
    auto* offsets = reinterpret_cast<std::ptrdiff_t*>(workspace + padded.elements() * sizeof(B));
    auto* packed_b = reinterpret_cast<B*>(workspace + padded.elements() * sizeof(B) + offsets_bytes(depth));
#pragma omp parallel if (2.0 * m * n * k >= kParallelMinOps && !omp_in_parallel())
    {
#pragma omp for schedule(static) nowait
        for (int p = 0; p < depth; ++p) offsets[p] = p < k ? padded.offset(p) : -1;
        pad_planes(padded, x, padding, planes);  // its `omp for` ends in a barrier: planes and offsets are complete
#pragma omp for schedule(static)
        for (int panel = 0; panel < column_panels; ++panel) {
            // Each column's output (oy, ox) reads the padded planes at oy * stride + ox plus the tap's offset;
            // columns past the last (never stored) read as the first.
            int base[kColumns];
            for (int j = 0; j < kColumns; ++j) {
                const int column = panel * kColumns + j, position = column < n ? column : panel * kColumns;
                base[j] = static_cast<int>(padded.base(position));
            }
            B* out = packed_b + static_cast<std::ptrdiff_t>(panel) * kColumns * depth;
            bool packed = false;
            if constexpr (requires { Tile::pack_conv3x3_panel; })
                packed = Tile::pack_conv3x3_panel(planes, offsets, base, depth, out);
            if (!packed)
                pack_conv3x3_runs<kColumns, kGroup>(planes, offsets, base, std::min(kColumns, n - panel * kColumns),
                                                    depth, out);
        }
        compute(m, n, k, packed_a, packed_b, epilogue);
    }
}

// Arch tags of tiles for instructions xsimd 8 has no arch for, each in its own source with its own flags.
struct Avx512Vnni;     // x86-64 AVX-512 BW + VNNI: vpdpbusd, vpdpwssd (gemm_int_avx512_vnni.cpp)
struct AmxInt8;        // x86-64 AMX-INT8 tiles: tdpbsud, s8 only (gemm_int_amx_int8.cpp)
struct Neon64Dotprod;  // AArch64 ARMv8.2 dot product: sdot (gemm_int_neon64_dotprod.cpp)
#if defined(__x86_64__)
extern template struct PackedGemmInt<S8Operands, Avx512Vnni>;
extern template struct PackedGemmInt<S16Operands, Avx512Vnni>;
extern template struct PackedGemmInt<S8Operands, AmxInt8>;
#elif defined(__aarch64__)
extern template struct PackedGemmInt<S8Operands, Neon64Dotprod>;
#endif

#define EDGEQC_EXTERN_INT_GEMMS(Arch)                       \
    extern template struct PackedGemmInt<S8Operands, Arch>; \
    extern template struct PackedGemmInt<S16Operands, Arch>;
EDGEQC_FOR_EACH_INT_SIMD_ARCH(EDGEQC_EXTERN_INT_GEMMS)
#undef EDGEQC_EXTERN_INT_GEMMS

}  // namespace edgeqc
