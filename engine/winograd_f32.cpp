// Winograd F(m x m, 3x3), m = 2 or 4: input tiles d ((m + 2) x (m + 2)) become V = B^T d B, weights g (3x3) become
// U = G g G^T, the (m + 2)^2 positions of the transformed tiles are as many independent GEMMs M = U V over channels,
// and Y = A^T M A gives each m x m output tile. Matrices as in Lavin & Gray (2016), sections 4.1 and 4.2.
#include "engine/winograd_f32.hpp"

#include <omp.h>

#include <algorithm>
#include <cstddef>

namespace edgeqc {

namespace {

// Bound on the floats of transformed inputs and products held at once; batches are processed in chunks of images
// that fit. 4 M floats = 16 MiB: enough columns for an efficient GEMM even with 36 positions, and chunks whose
// transformed inputs are still in cache when the GEMMs pack them (training steps of the reference network ran 2-6 %
// faster than with 32 MiB, batch-32 inference the same; 4 MiB made inference 15 % slower).
constexpr std::size_t kScratchBudgetFloats = std::size_t{4} << 20;

// Transformed weights up to this size are taken to stay in cache between calls (the L2s and a share of L3).
constexpr std::size_t kCachedWeightBytes = std::size_t{8} << 20;

// G of each output tile, (m + 2) x 3.
constexpr float kWeightTransformF2[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
constexpr float kWeightTransformF4[6][3] = {{1.0f / 4, 0, 0},          {-1.0f / 6, -1.0f / 6, -1.0f / 6},
                                            {-1.0f / 6, 1.0f / 6, -1.0f / 6}, {1.0f / 24, 1.0f / 12, 1.0f / 6},
                                            {1.0f / 24, -1.0f / 12, 1.0f / 6}, {0, 0, 1}};

// Row i of U = G g G^T for every channel pair: position (m + 2) i + l of pair p goes to out[l * pairs + p].
template <int Side>
void transform_weight_row(const float (&transform)[Side][3], const float* weights, std::size_t pairs, int i,
                          float* out, int threads) {
    const float gi0 = transform[i][0], gi1 = transform[i][1], gi2 = transform[i][2];
#pragma omp parallel for schedule(static) num_threads(threads)
    for (std::ptrdiff_t pair = 0; pair < static_cast<std::ptrdiff_t>(pairs); ++pair) {
        const float* g = weights + pair * 9;
        float s[3];
        for (int j = 0; j < 3; ++j) s[j] = gi0 * g[j] + gi1 * g[3 + j] + gi2 * g[6 + j];
        for (int l = 0; l < Side; ++l)
            out[static_cast<std::size_t>(l) * pairs + static_cast<std::size_t>(pair)] =
                transform[l][0] * s[0] + transform[l][1] * s[1] + transform[l][2] * s[2];
    }
}

}  // namespace

WinogradTileGrid::WinogradTileGrid(WinogradTile tile_, int height_, int width_, int padding_)
    : tile(tile_), size(winograd_tile_size(tile_)), height(height_), width(width_), padding(padding_),
      out_height(height_ + 2 * padding_ - 2), out_width(width_ + 2 * padding_ - 2),
      tile_rows((out_height + size - 1) / size), tile_columns((out_width + size - 1) / size) {}

int WinogradTileGrid::chunk(int batch, std::size_t floats_per_tile) const {
    return static_cast<int>(std::clamp<std::size_t>(
        kScratchBudgetFloats / (floats_per_tile * static_cast<std::size_t>(tiles_per_image())), 1,
        static_cast<std::size_t>(batch)));
}

int WinogradTileGrid::output_rows_at_once() const {
    constexpr int kTilesAtOnce = 128;
    return std::clamp(kTilesAtOnce / tile_columns, 1, tile_rows);
}

WinogradTile winograd_tile_for(const KernelTable& table, int in_channels, int out_channels, int height, int width,
                               int padding, int batch, WinogradWeights weights) {
    const WinogradTileGrid small(WinogradTile::F2x2, height, width, padding);
    const WinogradTileGrid large(WinogradTile::F4x4, height, width, padding);
    const long small_products = static_cast<long>(small.positions()) * small.tiles_per_image();
    const long large_products = static_cast<long>(large.positions()) * large.tiles_per_image();
    const long columns = static_cast<long>(batch) * large.tiles_per_image();
    const double weight_bytes = static_cast<double>(large.positions()) * in_channels * out_channels * sizeof(float);
    const bool fewer_products = 10 * large_products <= 7 * small_products;
    const bool weights_keep_up =
        weight_bytes <= 8.0 * (1 << 20) || (weights == WinogradWeights::PreparedOnce && columns >= 128);
    const bool f32_products = table.product_bits >= 24;
    return f32_products && fewer_products && columns >= 16 && weights_keep_up ? WinogradTile::F4x4
                                                                              : WinogradTile::F2x2;
}

bool winograd_narrow_products(const KernelTable& table, const WinogradTileGrid& grid, int batch,
                              WinogradWeights weights) {
    constexpr long kMostTiles = 160;
    return weights == WinogradWeights::PreparedOnce && table.gemm_narrow_f32 &&
           static_cast<long>(batch) * grid.tiles_per_image() <= kMostTiles;
}

std::size_t winograd_thread_scratch_floats(const WinogradTileGrid& grid) {
    // The input transform's 2 (m + 2) rows of m * tile_columns + 2 input columns, or the output transform's.
    const std::size_t rows = 2 * static_cast<std::size_t>(grid.size + 2);
    return aligned_floats(
        std::max(rows * (static_cast<std::size_t>(grid.size) * grid.tile_columns + 2),
                 winograd_output_scratch_floats(grid.size, grid.tile_columns, grid.output_rows_at_once())) +
        16);
}

void winograd_transform_input(const KernelTable& table, const WinogradTileGrid& grid, const float* x, int channels,
                              int first, int count, float* v, float* thread_scratch, std::size_t thread_floats,
                              int threads) {
    const std::ptrdiff_t tiles = static_cast<std::ptrdiff_t>(count) * grid.tiles_per_image();
    const std::size_t plane_size = static_cast<std::size_t>(grid.height) * grid.width;
    const WinogradInputRowF32 input_row =
        grid.tile == WinogradTile::F4x4 ? table.winograd_f4_input_row_f32 : table.winograd_input_row_f32;
    // Channel by channel, then image by image: each position's matrix is then read (written) in one contiguous run
    // per channel rather than a few tiles at a time all over it (2-3x faster on the 10x15 and 5x7 layers).
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int c = 0; c < channels; ++c) {
        for (int n = 0; n < count; ++n) {
            float* rows = thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * thread_floats;
            const float* plane = x + (static_cast<std::size_t>(first + n) * channels + c) * plane_size;
            float* out = v + static_cast<std::ptrdiff_t>(c) * tiles + n * grid.tiles_per_image();
            for (int ty = 0; ty < grid.tile_rows; ++ty)
                input_row(plane, grid.height, grid.width, grid.size * ty - grid.padding, -grid.padding,
                          grid.tile_columns, channels * tiles, out + ty * grid.tile_columns, rows);
        }
    }
}

void WinogradConv3x3::prepare(const KernelTable& table, const float* weights, int out_channels, int in_channels,
                              WinogradTile tile, int threads, bool narrow_products) {
    tile_ = tile;
    narrow_products_ = narrow_products;
    out_channels_ = out_channels;
    in_channels_ = in_channels;
    // U as (m + 2)^2 matrices of Cout x Cin, each packed as its GEMM's A (the packed or the narrow GEMM's); built one
    // row of U (m + 2 positions) at a time, so that preparing a 512 x 512 layer holds a few MB of unpacked matrices
    // rather than all of them.
    const int side = winograd_tile_size(tile) + 2;
    const std::size_t plane = static_cast<std::size_t>(out_channels) * in_channels;
    AlignedFloats transformed(static_cast<std::size_t>(side) * plane);
    const auto pack = [&](const float* matrix, float* packed) {
        return narrow_products ? table.gemm_pack_a_narrow_f32(out_channels, in_channels, matrix, in_channels, packed)
                               : table.gemm_pack_a_f32(false, out_channels, in_channels, matrix, in_channels, packed);
    };
    packed_floats_ = pack(nullptr, nullptr);
    // Packing writes every element the GEMM reads (padding included): no need to clear them first, which training,
    // preparing its weights twice a step, paid for on every call.
    packed_weights_.resize(packed_floats_ * static_cast<std::size_t>(side * side));
    for (int row = 0; row < side; ++row) {
        if (tile == WinogradTile::F4x4)
            transform_weight_row(kWeightTransformF4, weights, plane, row, transformed.data(), threads);
        else
            transform_weight_row(kWeightTransformF2, weights, plane, row, transformed.data(), threads);
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int column = 0; column < side; ++column)
            pack(transformed.data() + column * plane, packed_weights_.data() + (side * row + column) * packed_floats_);
    }
    table_ = &table;
}

WinogradConv3x3::Layout WinogradConv3x3::layout(int batch, int height, int width, int padding, int threads) const {
    const WinogradTileGrid grid(tile_, height, width, padding);
    const auto positions = static_cast<std::size_t>(grid.positions());
    Layout l;
    l.chunk = grid.chunk(batch, positions * (in_channels_ + out_channels_));
    const std::size_t tiles = static_cast<std::size_t>(grid.tiles_per_image()) * static_cast<std::size_t>(l.chunk);
    l.input_floats = aligned_floats(positions * static_cast<std::size_t>(in_channels_) * tiles);
    l.product_floats = aligned_floats(positions * static_cast<std::size_t>(out_channels_) * tiles);
    l.thread_floats = aligned_floats(std::max(winograd_thread_scratch_floats(grid),
                                              table_->gemm_workspace_f32(out_channels_, static_cast<int>(tiles), in_channels_, true)));
    l.total_floats = l.input_floats + l.product_floats + l.thread_floats * static_cast<std::size_t>(std::max(threads, 1));
    return l;
}

std::size_t WinogradConv3x3::workspace_floats(int batch, int height, int width, int padding, int threads) const {
    return batch <= 0 ? 0 : layout(batch, height, width, padding, threads).total_floats;
}

void WinogradConv3x3::forward(const float* x, int batch, int height, int width, int padding, const float* bias,
                              bool relu, bool pool, float* y, float* workspace, int threads) const {
    if (batch <= 0) return;
    const WinogradTileGrid grid(tile_, height, width, padding);
    const int tiles_per_image = grid.tiles_per_image(), tile_rows = grid.tile_rows, tile_columns = grid.tile_columns;
    const int positions = grid.positions();
    const WinogradOutputRowF32 output_rows =
        tile_ == WinogradTile::F4x4 ? table_->winograd_f4_output_row_f32 : table_->winograd_output_row_f32;
    const int rows_at_once = grid.output_rows_at_once();
    const int out_height = grid.out_height, out_width = grid.out_width;
    const Layout l = layout(batch, height, width, padding, threads);
    const int chunk = l.chunk;
    float* transformed_input = workspace;
    float* products = workspace + l.input_floats;
    float* thread_scratch = products + l.product_floats;
    const std::size_t thread_floats = l.thread_floats;
    const std::size_t out_plane = pool ? static_cast<std::size_t>(out_height / 2) * (out_width / 2)
                                       : static_cast<std::size_t>(out_height) * out_width;

    for (int first = 0; first < batch; first += chunk) {
        const int count = std::min(chunk, batch - first);
        const std::ptrdiff_t tiles = static_cast<std::ptrdiff_t>(count) * tiles_per_image;
        winograd_transform_input(*table_, grid, x, in_channels_, first, count, transformed_input, thread_scratch,
                                 thread_floats, threads);
        const int n = static_cast<int>(tiles);
        // Where the weights stay in cache, the products' way from one core to the other costs the most; where they
        // stream from memory, whole positions a thread keep those streams long (a 512 x 512 layer at batch 1 ran 5 %
        // slower with its rows split, the 64 -> 512 one 13 % faster, 32 -> 64 7 %; Zen 5, 2 threads). The rows go
        // out in whole panels, so only where the threads get about as many.
        const int panel_rows = table_->gemm_narrow_rows_f32;
        const int panels = (out_channels_ + panel_rows - 1) / panel_rows;
        const bool split_rows = packed_weights_.size() * sizeof(float) <= kCachedWeightBytes &&
                                (panels % std::max(threads, 1) == 0 || panels >= 4 * threads);
        // Y = A^T M A per tile of output channel co and image, plus bias and ReLU, cropped to the output size (and
        // pooled when asked).
        const auto transform_output = [&](int co, int image, float* scratch) {
            const float* in = products + static_cast<std::ptrdiff_t>(co) * tiles + image * tiles_per_image;
            float* plane = y + (static_cast<std::size_t>(first + image) * out_channels_ + co) * out_plane;
            for (int ty = 0; ty < tile_rows; ty += rows_at_once)
                output_rows(in + ty * tile_columns, static_cast<std::ptrdiff_t>(out_channels_) * tiles, tile_columns,
                            std::min(rows_at_once, tile_rows - ty), bias ? bias[co] : 0.0f, relu, pool, plane,
                            out_height, out_width, grid.size * ty, scratch);
        };
        if (narrow_products_ && split_rows) {
            // Each thread its own output channels (whole panels of the narrow A), at every position, then their
            // output transforms: the products never pass from one core to another, and no barrier waits between
            // the two.
#pragma omp parallel num_threads(threads)
            {
                const int thread = omp_get_thread_num(), team = omp_get_num_threads();
                const int first_row = panels * thread / team * panel_rows;
                const int last_row = std::min(out_channels_, panels * (thread + 1) / team * panel_rows);
                float* scratch = thread_scratch + static_cast<std::size_t>(thread) * thread_floats;
                for (int position = 0; first_row < last_row && position < positions; ++position)
                    table_->gemm_narrow_f32(last_row - first_row, n, in_channels_,
                                            packed_weights_.data() + position * packed_floats_ +
                                                static_cast<std::ptrdiff_t>(first_row) * in_channels_,
                                            transformed_input + position * in_channels_ * tiles, n,
                                            products + (position * out_channels_ + first_row) * tiles, n, {});
                for (int co = first_row; co < last_row; ++co)
                    for (int image = 0; image < count; ++image) transform_output(co, image, scratch);
            }
            continue;
        }
        // M = U V for each position: Cout x tiles. One whole GEMM per thread: no barriers inside them,
        // and each thread's packed panels stay in its own cache.
#pragma omp parallel for schedule(dynamic) num_threads(threads)
        for (int position = 0; position < positions; ++position) {
            const float* weights = packed_weights_.data() + position * packed_floats_;
            const float* v = transformed_input + position * in_channels_ * tiles;
            float* m = products + position * out_channels_ * tiles;
            if (narrow_products_)
                table_->gemm_narrow_f32(out_channels_, n, in_channels_, weights, v, n, m, n, {});
            else
                table_->gemm_packed_a_f32(
                    false, out_channels_, n, in_channels_, 1.0f, weights, v, n, 0.0f, m, n, {},
                    thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * thread_floats);
        }
        // Channel outermost, as in winograd_transform_input().
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
        for (int co = 0; co < out_channels_; ++co)
            for (int image = 0; image < count; ++image)
                transform_output(co, image,
                                 thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * thread_floats);
    }
}

}  // namespace edgeqc
