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
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>
#include <vector>

#include "engine/kernels.hpp"
#include "engine/kernels/padded_planes.hpp"
#include "engine/kernels/simd_arch.hpp"
#include "engine/kernels/team.hpp"

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
// activations for a tile's rows and runs of columns, the same bits in the tile's own vectors) and pack_conv3x3_panel
// (a convolution's B panel packed in the tile's own instructions, or false to leave it to pack_conv3x3_runs). An s8
// tile whose columns are two vectors of kColumns / 2 may instead read a 3x3 convolution's B straight from the input,
// four channels innermost, without packing it (multiply_conv3x3):
//   template <int kVectors> static void sums_from_planes(int channel_groups, const A* a, const B* const* vectors,
//                                                        std::ptrdiff_t group_stride, const std::ptrdiff_t* taps,
//                                                        std::int32_t* sums);
// the sums of its first kVectors vectors, vector v's columns at vectors[v] and its group (c, tap t) at vectors[v] +
// c x group_stride + taps[t], A's groups in that order (channel group by channel group, tap by tap within one). Such
// a tile may also compute the product transposed (Conv3x3Order::ByPositions), kPositions positions of C's columns
// broadcast against vectors of kChannels rows (A packed in panels of kChannels rows, the same depth order):
//   template <int kVectors>
//   static void position_sums(int channel_groups, const std::uint8_t* const* positions, std::ptrdiff_t group_stride,
//                             const std::ptrdiff_t* taps, const A* a, std::int32_t* sums);
// the sums of its first kVectors x (kChannels / 2) rows, row-major by position (kChannels a position), position i's
// group (c, t) at positions[i] + c x group_stride + taps[t]; and finish_transposed, finish_sums into 7-bit
// activations for such a tile, or for the 2x2 max pool of its positions taken four at a time. A tile may also
// convolve one input channel in a kernel of its own (a first layer on grey images), from the padded plane, A in
// panels of kOneChannelRows rows:
//   static void conv3x3_one_channel(int m, const std::uint8_t* planes, std::ptrdiff_t stride, int height, int width,
//                                   const A* packed_a, bool max_pool_2x2, const IntegerGemmEpilogue& epilogue);
// Only declared here: each arch's source specializes it.
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

// Round to nearest, ties to even, of |value| <= 2^22, by kRoundToEvenShifter (engine/tensor.hpp).
inline float round_to_even(float value) {
    return (value + kRoundToEvenShifter) - kRoundToEvenShifter;
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

// Lanes [lane, lane + count) of a tile's columns hold C's columns [column, column + count).
struct ColumnRun {
    int lane, count, column;
};

// The panels of a 3x3 convolution whose 2x2, stride-2 max pool is taken on its sums, before the epilogue (which never
// decreases, so this equals pooling the epilogue's outputs, and the full output is never written). A panel is two
// vectors of kColumns / 2 positions (numbered oy x stride + ox, stride = width + 2, as both padded copies of the
// input store them), laid out so that each pooling window lies in one panel:
//   - a vector of each row of a pair, the same kColumns / 2 outputs from an even x (two rows' chunks);
//   - or, where both rows of a pair and the border between them fit one vector (images 7 or fewer wide with
//     AVX-512), a vector per pair: conv5's 5 x 7 then takes one panel, against two (three vectors) unpooled.
// Rows and columns past the pooled ones (an odd height or width) are left out.
template <int kColumns>
struct MaxPool2x2Panels {
    static constexpr int kHalf = kColumns / 2, kPooled = kHalf / 2;  // positions a vector, pooled outputs a chunk
    static_assert(kHalf % 2 == 0, "a chunk holds whole pairs of outputs");
    int pooled_height, pooled_width, stride;
    bool pair_per_vector;
    int chunks;  // of a pair of rows, without pair_per_vector

    MaxPool2x2Panels(int height, int width)
        : pooled_height(height / 2), pooled_width(width / 2), stride(width + 2),
          pair_per_vector(stride + width <= kHalf), chunks((pooled_width + kPooled - 1) / kPooled) {}
    int vectors() const { return pair_per_vector ? pooled_height : 2 * pooled_height * chunks; }
    int panels() const { return (vectors() + 1) / 2; }
    // Vector v's first position. Its lanes that no stored output pools are computed, never stored: the positions
    // that follow it along the padded rows, up to kHalf - 1 past the last row's end (the planes' margin).
    int base(int v) const {
        if (pair_per_vector) return 2 * v * stride;
        const int panel = v / 2;
        return (2 * (panel / chunks) + v % 2) * stride + panel % chunks * kHalf;
    }
    int runs(int panel, ColumnRun* runs) const {
        if (!pair_per_vector) {
            const int first = panel % chunks * kPooled;
            runs[0] = {0, std::min(kPooled, pooled_width - first), panel / chunks * pooled_width + first};
            return 1;
        }
        int count = 0;
        for (int half = 0; half < 2 && 2 * panel + half < pooled_height; ++half)
            runs[count++] = {half * kPooled, pooled_width, (2 * panel + half) * pooled_width};
        return count;
    }
    // The pooled sums of the panel's tile, each of its first `rows` rows into the lanes runs() names: the maxima of
    // the window's two rows, then those of pairs of neighbours, loops the compiler turns into vector maxima and
    // shuffles (one loop of the four took scalar loads and stores through the stack instead).
    void pool(int panel, std::int32_t* sums, int rows) const {
        if (!pair_per_vector) {
            for (int i = 0; i < rows; ++i) pool_pairs<kHalf>(sums + i * kColumns, kHalf, sums + i * kColumns);
            return;
        }
        for (int half = 0; half < 2 && 2 * panel + half < pooled_height; ++half)
            for (int i = 0; i < rows; ++i)
                pool_pairs<kHalf>(sums + i * kColumns + half * kHalf, stride, sums + i * kColumns + half * kPooled,
                                  2 * pooled_width);
    }

private:
    // out[j] = the largest of in[2j], in[2j + 1], in[rows + 2j] and in[rows + 2j + 1], for 2j < `count` (of the
    // kMost at most that `in` may hold); out[count / 2] to out[kMost - 1] are overwritten with copies. Storing a whole
    // vector lets the epilogue's load of it take the value from the store: a narrower store made that load wait for
    // it to reach the cache, a quarter of conv1's time on a Zen 5.
    template <int kMost>
    static void pool_pairs(const std::int32_t* in, int rows, std::int32_t* out, int count = kMost) {
        std::int32_t rows_max[kMost] = {}, pooled[kMost];
        for (int j = 0; j < count; ++j) rows_max[j] = std::max(in[j], in[rows + j]);
        for (int j = 0; j < kMost; ++j) pooled[j] = std::max(rows_max[2 * j % kMost], rows_max[(2 * j + 1) % kMost]);
        std::copy_n(pooled, kMost, out);
    }
};

// The columns of C as panels of packed B, kColumns each: what PackedGemmInt::compute asks of a column source.
// With `pooled`, the panels are MaxPool2x2Panels' and C is the pool.
template <class Tile, class Operands>
struct PackedColumns {
    static constexpr int kColumns = Tile::kColumns;
    const typename Operands::B* packed_b;
    int n, depth;
    std::optional<MaxPool2x2Panels<kColumns>> pooled = std::nullopt;

    int panels() const { return pooled ? pooled->panels() : (n + kColumns - 1) / kColumns; }
    // Whether the panel's columns all lie in the tile's first half (computed then by sums_half, where it has one).
    bool half(int panel) const {
        if constexpr (requires { Tile::sums_half; })
            return pooled ? 2 * panel + 1 == pooled->vectors()
                          : 2 * std::min(kColumns, n - panel * kColumns) <= kColumns;
        return false;
    }
    void sums(int panel, const typename Operands::A* a_panel, std::int32_t* sums) const {
        const typename Operands::B* b_panel = packed_b + static_cast<std::ptrdiff_t>(panel) * kColumns * depth;
        if constexpr (requires { Tile::sums_half; })
            if (half(panel)) return Tile::sums_half(depth / Operands::kGroup, a_panel, b_panel, sums);
        Tile::sums(depth / Operands::kGroup, a_panel, b_panel, sums);
    }
    // The panel's tile's first `rows` rows of sums, made what the epilogue finishes.
    void pool(int panel, std::int32_t* sums, int rows) const {
        if (pooled) pooled->pool(panel, sums, rows);
    }
    int runs(int panel, ColumnRun* runs) const {
        if (pooled) return pooled->runs(panel, runs);
        runs[0] = {0, std::min(kColumns, n - panel * kColumns), panel * kColumns};
        return 1;
    }
};

// A 3x3, stride-1, padding-1 convolution's input stored four channels innermost, each plane with its border:
// byte q of position (y, x) of channel group c holds channel 4c + q at (y - 1, x - 1) (the padding value outside
// the image; inside it, 0 for channels past the last, whose weights are 0). The four bytes of one position and tap
// are then one group of B, and a vector's worth of positions along a row (16 with AVX-512, 8 with AVX2) one
// vector, read where they lie (tiles with sums_from_planes).
struct InterleavedPlanes {
    static_assert(std::endian::native == std::endian::little, "interleave() writes a position's bytes as one word");
    int channels, height, width;
    static constexpr int kMarginBytes = 128;  // read by the last positions' whole-vector loads past the last plane

    static int groups(int channels) { return (channels + 3) / 4; }
    int groups() const { return groups(channels); }
    int stride() const { return width + 2; }
    std::ptrdiff_t plane_bytes() const { return static_cast<std::ptrdiff_t>(height + 2) * stride() * 4; }
    std::size_t bytes() const { return round_up(groups() * plane_bytes() + kMarginBytes, 64); }
    // Tap t = (ky, kx) = (t / 3, t % 3) of the output at position p (oy x stride() + ox) is at 4 p + tap_bytes(t).
    std::ptrdiff_t tap_bytes(int t) const { return static_cast<std::ptrdiff_t>(t / 3 * stride() + t % 3) * 4; }

    // words[j] = the little-endian word of bytes channels[0..3][j], for j < count: zero extensions, shifts and ors
    // the compiler vectorizes (a byte-by-byte interleave it did not; and with the pointers locals of the caller, it
    // took a scalar loop after checking them for overlap). A tile may do it in its own instructions instead
    // (interleave_words: with masked tails, the rows of the reference network being 7 to 60 wide).
    static void interleave_words(const std::uint8_t* __restrict c0, const std::uint8_t* __restrict c1,
                                 const std::uint8_t* __restrict c2, const std::uint8_t* __restrict c3, int count,
                                 std::uint32_t* __restrict words) {
        for (int j = 0; j < count; ++j)
            words[j] = c0[j] | std::uint32_t{c1[j]} << 8 | std::uint32_t{c2[j]} << 16 | std::uint32_t{c3[j]} << 24;
    }

    // Fills `out` from x (channels planes of height x width), as an orphaned `omp for` over the channel groups.
    template <class Tile>
    void interleave(const std::uint8_t* x, std::uint8_t padding, std::uint8_t* out) const {
        const int all = groups();
        const std::size_t plane_size = static_cast<std::size_t>(height) * width;
#pragma omp for schedule(static)
        for (int c = 0; c < all; ++c) {
            std::uint8_t* __restrict group = out + c * plane_bytes();
            const int present = std::min(4, channels - 4 * c);
            // The border whole, with one fill of the plane, then the rows over it (a fill for each side of each
            // row took longer than the rows on the reference network's small images).
            std::memset(group, padding, static_cast<std::size_t>(plane_bytes()));
            for (int y = 0; y < height; ++y) {
                std::uint8_t* __restrict row = group + static_cast<std::ptrdiff_t>(y + 1) * stride() * 4;
                const std::uint8_t* in = x + (static_cast<std::size_t>(4 * c) * height + y) * width;
                if (present == 4) {
                    auto* words = reinterpret_cast<std::uint32_t*>(row + 4);
                    if constexpr (requires { Tile::interleave_words; })
                        Tile::interleave_words(in, in + plane_size, in + 2 * plane_size, in + 3 * plane_size, width,
                                               words);
                    else
                        interleave_words(in, in + plane_size, in + 2 * plane_size, in + 3 * plane_size, width, words);
                } else {
                    for (int j = 0; j < width; ++j)
                        for (int q = 0; q < 4; ++q) row[4 + 4 * j + q] = q < present ? in[q * plane_size + j] : 0;
                }
            }
            if (c == all - 1) std::fill_n(group + plane_bytes(), bytes() - all * plane_bytes(), std::uint8_t{0});
        }
    }
};

// The columns of a 3x3 convolution's C as vectors of kColumns / 2 positions read from InterleavedPlanes, two to a
// tile. The vectors run along the padded rows, border positions included (computed, never stored), or, where that
// takes fewer, row by row (a row of 15 outputs: one vector of 16 a row, where 10 rows of 17 positions need 11).
// A tile's outputs are then runs of lanes, broken by the border. With `pool`, the tiles are MaxPool2x2Panels' (two
// rows' vectors each) and C is the pool.
template <class Tile>
struct PlaneColumns {
    static constexpr int kLanes = Tile::kColumns / 2;
    const std::uint8_t* planes;
    InterleavedPlanes geometry;
    std::ptrdiff_t taps[9];
    int row_vectors, vectors;
    bool by_row;
    std::optional<MaxPool2x2Panels<Tile::kColumns>> pooled;

    PlaneColumns(const std::uint8_t* planes_, const InterleavedPlanes& g, bool pool) : planes(planes_), geometry(g) {
        for (int t = 0; t < 9; ++t) taps[t] = g.tap_bytes(t);
        row_vectors = (g.width + kLanes - 1) / kLanes;
        const int along = (g.height * g.stride() + kLanes - 1) / kLanes;
        by_row = g.height * row_vectors < along;
        vectors = by_row ? g.height * row_vectors : along;
        if (pool) {
            pooled.emplace(g.height, g.width);
            vectors = pooled->vectors();
        }
    }
    int panels() const { return (vectors + 1) / 2; }
    bool half(int panel) const { return 2 * panel + 1 == vectors; }
    // Vector v's first position (oy x stride + ox), and how many of its lanes may hold outputs.
    int base(int v) const {
        if (pooled) return pooled->base(v);
        return by_row ? v / row_vectors * geometry.stride() + v % row_vectors * kLanes : v * kLanes;
    }
    int lanes(int v) const { return by_row ? std::min(kLanes, geometry.width - v % row_vectors * kLanes) : kLanes; }

    void sums(int panel, const std::int8_t* a_panel, std::int32_t* sums) const {
        const std::uint8_t* vectors_at[2] = {planes + 4 * static_cast<std::ptrdiff_t>(base(2 * panel)), nullptr};
        if (half(panel))
            return Tile::template sums_from_planes<1>(geometry.groups(), a_panel, vectors_at, geometry.plane_bytes(),
                                                      taps, sums);
        vectors_at[1] = planes + 4 * static_cast<std::ptrdiff_t>(base(2 * panel + 1));
        Tile::template sums_from_planes<2>(geometry.groups(), a_panel, vectors_at, geometry.plane_bytes(), taps, sums);
    }
    void pool(int panel, std::int32_t* sums, int rows) const {
        if (pooled) pooled->pool(panel, sums, rows);
    }
    int runs(int panel, ColumnRun* runs) const {
        if (pooled) return pooled->runs(panel, runs);
        int count = 0;
        for (int v = 2 * panel; v < std::min(vectors, 2 * panel + 2); ++v) {
            int oy = base(v) / geometry.stride(), ox = base(v) % geometry.stride();
            for (int lane = (v - 2 * panel) * kLanes, end = lane + lanes(v); lane < end; ++lane) {
                if (oy < geometry.height && ox < geometry.width) {
                    const int column = oy * geometry.width + ox;
                    ColumnRun* last = count ? &runs[count - 1] : nullptr;
                    if (last && last->lane + last->count == lane && last->column + last->count == column) ++last->count;
                    else runs[count++] = {lane, 1, column};
                }
                if (++ox == geometry.stride()) ox = 0, ++oy;
            }
        }
        return count;
    }
};

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
    // from the image (through a copy of it with its padding around each plane) instead of from an im2col matrix, or
    // not packed at all where the tile reads it from a copy four channels innermost (sums_from_planes), its A then
    // in the depth order of that copy, or, for one input channel, where the tile has a kernel of its own for it
    // (conv3x3_one_channel), its A then in that kernel's layout.
    std::size_t pack_conv3x3_a(int m, int channels, Conv3x3Order order, const A* a, A* packed) const
        requires std::is_same_v<Operands, S8Operands>;
    std::size_t conv3x3_workspace_bytes(int m, int channels, int height, int width) const
        requires std::is_same_v<Operands, S8Operands>;
    void multiply_conv3x3(int m, int channels, int height, int width, Conv3x3Order order, const A* packed_a,
                          const B* x, B padding, bool max_pool_2x2, const IntegerGemmEpilogue& epilogue,
                          unsigned char* workspace) const
        requires std::is_same_v<Operands, S8Operands>;

private:
    // Packs every column panel, as an orphaned `omp for` (inside a parallel region, the team shares the panels).
    void pack_b_panels(bool transpose_b, int n, int k, const B* b, int ldb, B* packed) const;
    // Every tile of C, shared out among the threads of the enclosing team: each must call it with the same
    // arguments (orphaned; it ends in no barrier). Columns: int_gemm_detail::PackedColumns or PlaneColumns.
    template <class Columns>
    void compute(int m, int depth, const A* packed_a, const Columns& columns,
                 const IntegerGemmEpilogue& epilogue) const;
    // pack_a in panels of kRows rows.
    template <int kRows>
    static std::size_t pack_a_panels(int m, int k, const A* a, int lda, A* packed);
    // multiply_conv3x3's product transposed (ByPositions), from the interleaved planes: every tile, shared out among
    // the team as compute() shares its own (orphaned, no barrier at the end).
    void compute_by_positions(int m, int depth, const A* packed_a, const std::uint8_t* planes,
                              const int_gemm_detail::InterleavedPlanes& geometry, bool max_pool_2x2,
                              const IntegerGemmEpilogue& epilogue) const;
    // Whether multiply_conv3x3 reads B from the input four channels innermost: where the tile can, unless that
    // multiplies over a quarter more depths than packing (36 for the 9 of a first layer of one channel, or the 18 of
    // two: conv1 of the reference network took 0.055 ms so against 0.046 packed on a Zen 5).
    static constexpr bool kTileReadsPlanes = requires { IntTile<Operands, Arch>::template sums_from_planes<1>; };
    static bool conv_from_planes(int channels) {
        return kTileReadsPlanes && 4 * 36 * int_gemm_detail::InterleavedPlanes::groups(channels) <=
                                       5 * int_gemm_detail::padded_depth<IntTile<Operands, Arch>>(9 * channels);
    }
    // Whether multiply_conv3x3 runs in `order` ByPositions: where asked, the tile can, and B comes from the planes.
    static constexpr bool kTileTransposes = requires { IntTile<Operands, Arch>::template position_sums<1>; };
    static bool conv_by_positions(Conv3x3Order order, int channels) {
        return kTileTransposes && order == Conv3x3Order::ByPositions && conv_from_planes(channels);
    }
    // Whether multiply_conv3x3 runs the tile's own convolution of one input channel (conv3x3_one_channel), its A in
    // panels of kOneChannelRows rows, each the three tap rows' groups (the taps of a row and a zero) row by row.
    static constexpr bool kTileHasOneChannel = requires { IntTile<Operands, Arch>::conv3x3_one_channel; };
    static bool conv_one_channel(int channels) { return kTileHasOneChannel && channels == 1; }
};

template <class Operands, class Arch>
std::size_t PackedGemmInt<Operands, Arch>::pack_a(int m, int k, const A* a, int lda, A* packed) const {
    return pack_a_panels<IntTile<Operands, Arch>::kRows>(m, k, a, lda, packed);
}

template <class Operands, class Arch>
template <int kRows>
std::size_t PackedGemmInt<Operands, Arch>::pack_a_panels(int m, int k, const A* a, int lda, A* packed) {
    using namespace int_gemm_detail;
    using Tile = IntTile<Operands, Arch>;
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
template <class Columns>
void PackedGemmInt<Operands, Arch>::compute(int m, int depth, const A* packed_a, const Columns& columns,
                                            const IntegerGemmEpilogue& epilogue) const {
    using namespace int_gemm_detail;
    using Tile = IntTile<Operands, Arch>;
    constexpr int kRows = Tile::kRows, kColumns = Tile::kColumns, kGroup = Operands::kGroup;
    static_assert(sizeof(A) * kGroup == 4 && sizeof(B) * kGroup == 4, "a group is one 32-bit lane");
    static_assert(depth_multiple<Tile>() % a_group<Tile, Operands>() == 0, "the padding holds whole A groups");
    const int column_panels = columns.panels(), row_panels = (m + kRows - 1) / kRows;
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
    const auto tile_cost = [&](int panel) { return columns.half(panel) ? 1 : 2; };
    long total_cost = 0;
    for (int panel = 0; panel < column_panels; ++panel) total_cost += tile_cost(panel);
    total_cost *= row_panels;
    const long threads = omp_get_num_threads(), thread = omp_get_thread_num();
    long cost_before = 0;  // of the tiles ahead of the current one in the order
    for (int block = 0; block < row_blocks; ++block) {
        const int first_row_panel = block * block_panels;
        const int last_row_panel = std::min(row_panels, first_row_panel + block_panels);
        for (int panel = 0; panel < column_panels; ++panel) {
            const int cost = tile_cost(panel);
            ColumnRun runs[kColumns];
            int run_count = -1;  // found at the panel's first tile this thread computes
            for (int row_panel = first_row_panel; row_panel < last_row_panel; ++row_panel, cost_before += cost) {
                // The thread whose share holds the tile's middle.
                if ((2 * cost_before + cost) * threads / (2 * total_cost) != thread) continue;
                if (run_count < 0) run_count = columns.runs(panel, runs);
                alignas(64) std::int32_t sums[kRows * kColumns];
                columns.sums(panel, packed_a + static_cast<std::ptrdiff_t>(row_panel) * kRows * depth, sums);
                const int row = row_panel * kRows, rows = std::min(kRows, m - row);
                columns.pool(panel, sums, rows);
                if constexpr (requires { Tile::finish_quantized; })  // the same bits, in the tile's vectors
                    if (epilogue.quantized) {
                        Tile::finish_quantized(sums, rows, runs, run_count, row, epilogue);
                        continue;
                    }
                for (int i = 0; i < rows; ++i)
                    for (int r = 0; r < run_count; ++r)
                        finish_sums(sums + i * kColumns + runs[r].lane, runs[r].count, row + i, runs[r].column,
                                    epilogue);
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
    const int depth = padded_depth<IntTile<Operands, Arch>>(k);
    run_in_team(2.0 * m * n * k >= kParallelMinOps, [&] {
        pack_b_panels(transpose_b, n, k, b, ldb, b_packed);
        compute(m, depth, packed_a, PackedColumns<IntTile<Operands, Arch>, Operands>{b_packed, n, depth}, epilogue);
    });
}

template <class Operands, class Arch>
std::size_t PackedGemmInt<Operands, Arch>::pack_b(bool transpose_b, int n, int k, const B* b, int ldb,
                                                  B* packed) const {
    using namespace int_gemm_detail;
    const std::size_t elements = workspace_bytes(1, n, k) / sizeof(B);
    if (!packed || elements == 0) return elements;
    run_in_team(static_cast<double>(elements) >= kParallelMinOps,
                [&] { pack_b_panels(transpose_b, n, k, b, ldb, packed); });
    return elements;
}

template <class Operands, class Arch>
void PackedGemmInt<Operands, Arch>::multiply_packed(int m, int n, int k, const A* packed_a, const B* packed_b,
                                                    const IntegerGemmEpilogue& epilogue) const {
    using namespace int_gemm_detail;
    if (m <= 0 || n <= 0) return;
    if (k <= 0) return finish_empty_product(m, n, epilogue);
    const int depth = padded_depth<IntTile<Operands, Arch>>(k);
    run_in_team(2.0 * m * n * k >= kParallelMinOps, [&] {
        compute(m, depth, packed_a, PackedColumns<IntTile<Operands, Arch>, Operands>{packed_b, n, depth}, epilogue);
    });
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
void PackedGemmInt<Operands, Arch>::compute_by_positions(int m, int depth, const A* packed_a,
                                                         const std::uint8_t* planes,
                                                         const int_gemm_detail::InterleavedPlanes& geometry,
                                                         bool max_pool_2x2, const IntegerGemmEpilogue& epilogue) const {
    using namespace int_gemm_detail;
    using Tile = IntTile<Operands, Arch>;
    if constexpr (kTileTransposes) {
        constexpr int kPositions = Tile::kPositions, kChannels = Tile::kChannels;
        static_assert(kPositions % 4 == 0, "a tile holds whole pooling windows");
        // The products in tile order: C's columns, or, pooled, each window's four (row-major) in the order of the
        // pooled outputs, so that a tile's products 4 w to 4 w + 3 pool into its output w.
        const int unit = max_pool_2x2 ? 4 : 1, step = max_pool_2x2 ? 2 : 1;
        const int row_length = max_pool_2x2 ? geometry.width / 2 : geometry.width;
        const int products = unit * (max_pool_2x2 ? geometry.height / 2 : geometry.height) * row_length;
        // Where products [first, first + count) read the planes (the rest of the tile repeats the last, computed
        // and never stored): one division for the tile, then steps along the rows.
        const auto product_planes = [&](int first, int count, const std::uint8_t** at) {
            int y = first / unit / row_length, x = first / unit % row_length;
            for (int i = 0; i < count; i += unit) {
                const std::ptrdiff_t base = step * (y * geometry.stride() + x);  // pooled: 2 y rows down, 2 x along
                for (int corner = 0; corner < unit; ++corner)
                    at[i + corner] = planes + 4 * (base + corner / 2 * geometry.stride() + corner % 2);
                if (++x == row_length) x = 0, ++y;
            }
            for (int i = count; i < kPositions; ++i) at[i] = at[count - 1];
        };
        std::ptrdiff_t taps[9];
        for (int t = 0; t < 9; ++t) taps[t] = geometry.tap_bytes(t);
        // Channel panel by channel panel (its weights staying in cache while the positions pass), each thread an
        // equal share of the tiles in that order.
        const int position_tiles = (products + kPositions - 1) / kPositions;
        const long tiles = static_cast<long>(position_tiles) * ((m + kChannels - 1) / kChannels);
        const long threads = omp_get_num_threads(), thread = omp_get_thread_num();
        for (long tile = tiles * thread / threads; tile < tiles * (thread + 1) / threads; ++tile) {
            const int panel = static_cast<int>(tile / position_tiles);
            const int first = static_cast<int>(tile % position_tiles) * kPositions;
            const int channels = std::min(kChannels, m - panel * kChannels);
            const int count = std::min(kPositions, products - first);
            const std::uint8_t* positions[kPositions];
            product_planes(first, count, positions);
            alignas(64) std::int32_t sums[kPositions * kChannels];
            const A* weights = packed_a + static_cast<std::ptrdiff_t>(panel) * kChannels * depth;
            if (2 * channels <= kChannels)
                Tile::template position_sums<1>(geometry.groups(), positions, geometry.plane_bytes(), taps, weights,
                                                sums);
            else
                Tile::template position_sums<2>(geometry.groups(), positions, geometry.plane_bytes(), taps, weights,
                                                sums);
            const int outputs = count / unit, column = first / unit, row = panel * kChannels;
            if (epilogue.quantized) {
                Tile::finish_transposed(sums, max_pool_2x2, outputs, channels, row, column, epilogue);
                continue;
            }
            const int lanes = 2 * channels <= kChannels ? kChannels / 2 : kChannels;  // the sums position_sums wrote
            if (max_pool_2x2)
                for (int w = 0; w < outputs; ++w) {
                    const std::int32_t* window = sums + 4 * w * kChannels;
                    std::int32_t pooled[kChannels];  // then copied: the window's own sums lie in the way
                    for (int j = 0; j < lanes; ++j)
                        pooled[j] = std::max(std::max(window[j], window[kChannels + j]),
                                             std::max(window[2 * kChannels + j], window[3 * kChannels + j]));
                    std::copy_n(pooled, lanes, sums + w * kChannels);
                }
            for (int j = 0; j < channels; ++j)
                for (int w = 0; w < outputs; ++w)
                    finish_sums(sums + w * kChannels + j, 1, row + j, column + w, epilogue);
        }
    }
}

template <class Operands, class Arch>
std::size_t PackedGemmInt<Operands, Arch>::pack_conv3x3_a(int m, int channels, Conv3x3Order order, const A* a,
                                                          A* packed) const
    requires std::is_same_v<Operands, S8Operands>
{
    const int k = 9 * channels;
    if constexpr (kTileHasOneChannel)
        if (conv_one_channel(channels)) {
            constexpr int kRows = IntTile<Operands, Arch>::kOneChannelRows;
            const int panels = (m + kRows - 1) / kRows;
            if (packed && m > 0)
                for (int panel = 0; panel < panels; ++panel)
                    for (int ky = 0; ky < 3; ++ky)
                        for (int i = 0; i < kRows; ++i)
                            for (int kx = 0; kx < Operands::kGroup; ++kx) {
                                const int row = panel * kRows + i;
                                packed[static_cast<std::size_t>((panel * 3 + ky) * kRows + i) * Operands::kGroup + kx] =
                                    row < m && kx < 3 ? a[static_cast<std::size_t>(row) * 9 + ky * 3 + kx] : A(0);
                            }
            return static_cast<std::size_t>(std::max(m, 0) + kRows - 1) / kRows * 3 * kRows * Operands::kGroup;
        }
    if (!conv_from_planes(channels)) return pack_a(m, k, a, k, packed);
    // Depth 36 c + 4 t + q of the packed A is channel 4 c + q at tap t (zero past the last channel): the order in
    // which sums_from_planes and position_sums read the interleaved planes. Panels of the tile's rows, or of its
    // channels where it runs ByPositions.
    const int groups = int_gemm_detail::InterleavedPlanes::groups(channels), depth = 36 * groups;
    const auto pack = [&](const A* source, A* out) {
        if constexpr (kTileTransposes)
            if (conv_by_positions(order, channels))
                return pack_a_panels<IntTile<Operands, Arch>::kChannels>(m, depth, source, depth, out);
        return pack_a(m, depth, source, depth, out);
    };
    if (!packed || m <= 0) return pack(nullptr, nullptr);
    std::vector<A> reordered(static_cast<std::size_t>(m) * depth, A(0));
    for (int row = 0; row < m; ++row)
        for (int c = 0; c < channels; ++c)
            for (int t = 0; t < 9; ++t)
                reordered[static_cast<std::size_t>(row) * depth + c / 4 * 36 + t * 4 + c % 4] =
                    a[static_cast<std::size_t>(row) * k + c * 9 + t];
    return pack(reordered.data(), packed);
}

template <class Operands, class Arch>
std::size_t PackedGemmInt<Operands, Arch>::conv3x3_workspace_bytes(int, int channels, int height, int width) const
    requires std::is_same_v<Operands, S8Operands>
{
    using namespace int_gemm_detail;
    using Tile = IntTile<Operands, Arch>;
    constexpr int kColumns = Tile::kColumns;
    if (conv_from_planes(channels)) return InterleavedPlanes{channels, height, width}.bytes();
    if (conv_one_channel(channels)) return PaddedPlanes{channels, height, width}.elements() * sizeof(B);
    const std::size_t planes = PaddedPlanes{channels, height, width}.elements() * sizeof(B);
    const int depth = padded_depth<Tile>(9 * channels);
    // B's panels in either order of its columns (the pooled one may take more: it computes whole half rows).
    const int panels = std::max((height * width + kColumns - 1) / kColumns,
                                MaxPool2x2Panels<kColumns>(height, width).panels());
    return planes + offsets_bytes(depth) + static_cast<std::size_t>(panels) * kColumns * depth * sizeof(B);
}

template <class Operands, class Arch>
void PackedGemmInt<Operands, Arch>::multiply_conv3x3(int m, int channels, int height, int width, Conv3x3Order order,
                                                     const A* packed_a, const B* x, B padding, bool max_pool_2x2,
                                                     const IntegerGemmEpilogue& epilogue,
                                                     unsigned char* workspace) const
    requires std::is_same_v<Operands, S8Operands>
{
    using namespace int_gemm_detail;
    using Tile = IntTile<Operands, Arch>;
    constexpr int kColumns = Tile::kColumns, kGroup = Operands::kGroup;
    const int n = height * width, k = 9 * channels;
    const int outputs = max_pool_2x2 ? height / 2 * (width / 2) : n;
    if (m <= 0 || outputs <= 0) return;
    if (k <= 0) return finish_empty_product(m, outputs, epilogue);
    if constexpr (kTileReadsPlanes)
        if (conv_from_planes(channels)) {
            const InterleavedPlanes interleaved{channels, height, width};
            run_in_team(2.0 * m * n * k >= kParallelMinOps, [&] {
                interleaved.interleave<Tile>(x, padding, workspace);  // its `omp for` ends in a barrier
                const int depth = padded_depth<Tile>(36 * interleaved.groups());
                if (conv_by_positions(order, channels))
                    compute_by_positions(m, depth, packed_a, workspace, interleaved, max_pool_2x2, epilogue);
                else
                    compute(m, depth, packed_a, PlaneColumns<Tile>(workspace, interleaved, max_pool_2x2), epilogue);
            });
            return;
        }
    const PaddedPlanes padded{channels, height, width};
    auto* planes = reinterpret_cast<B*>(workspace);
    if constexpr (kTileHasOneChannel)
        if (conv_one_channel(channels)) {
            run_in_team(2.0 * m * n * k >= kParallelMinOps, [&] {
                pad_planes(padded, x, padding, planes);  // its `omp for` ends in a barrier
                Tile::conv3x3_one_channel(m, planes, padded.stride(), height, width, packed_a, max_pool_2x2, epilogue);
            });
            return;
        }
    const int depth = padded_depth<Tile>(k);
    auto* offsets = reinterpret_cast<std::ptrdiff_t*>(workspace + padded.elements() * sizeof(B));
    auto* packed_b = reinterpret_cast<B*>(workspace + padded.elements() * sizeof(B) + offsets_bytes(depth));
    const PackedColumns<Tile, Operands> columns_source{
        packed_b, n, depth, max_pool_2x2 ? std::optional(MaxPool2x2Panels<kColumns>(height, width)) : std::nullopt};
    const int column_panels = columns_source.panels();
    run_in_team(2.0 * m * n * k >= kParallelMinOps, [&] {
#pragma omp for schedule(static) nowait
        for (int p = 0; p < depth; ++p) offsets[p] = p < k ? padded.offset(p) : -1;
        pad_planes(padded, x, padding, planes);  // its `omp for` ends in a barrier: planes and offsets are complete
#pragma omp for schedule(static)
        for (int panel = 0; panel < column_panels; ++panel) {
            // Each column's output (oy, ox) reads the padded planes at oy * stride + ox plus the tap's offset;
            // columns past the last (never stored) read as the first, and are zero where packed run by run.
            int base[kColumns], columns = kColumns;
            if (const auto& pooled = columns_source.pooled) {
                // Lanes that no stored output pools read where they fall, inside the planes and their margin (the
                // vector's positions run on along the padded rows), but for a last panel's missing vector.
                for (int half = 0; half < 2; ++half) {
                    const int v = 2 * panel + half, first = v < pooled->vectors() ? pooled->base(v) : base[0];
                    for (int lane = 0; lane < kColumns / 2; ++lane)
                        base[half * kColumns / 2 + lane] = v < pooled->vectors() ? first + lane : first;
                }
                if (2 * panel + 1 == pooled->vectors()) columns = kColumns / 2;
            } else {
                // One division for the panel, then steps along its rows (a division per column was a quarter of
                // conv1's time on a Zen 5).
                const int first = panel * kColumns;
                columns = std::min(kColumns, n - first);
                int ox = first % width, at = static_cast<int>(padded.base(first));
                for (int j = 0; j < kColumns; ++j) {
                    base[j] = j < columns ? at : base[0];
                    at += ++ox < width ? 1 : (ox = 0, padded.stride() - width + 1);
                }
            }
            B* out = packed_b + static_cast<std::ptrdiff_t>(panel) * kColumns * depth;
            bool packed = false;
            if constexpr (requires { Tile::pack_conv3x3_panel; })
                packed = Tile::pack_conv3x3_panel(planes, offsets, base, depth, out);
            if (!packed)
                pack_conv3x3_runs<kColumns, kGroup>(planes, offsets, base, columns, depth, out);
        }
        compute(m, depth, packed_a, columns_source, epilogue);
    });
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
