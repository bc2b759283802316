// Winograd F(2x2, 3x3): input tiles d (4x4) become V = B^T d B, weights g (3x3) become U = G g G^T, the 16
// positions of the transformed tiles are 16 independent GEMMs M = U V over channels, and Y = A^T M A gives each
// 2x2 output tile. Matrices as in Lavin & Gray (2016), section 4.1.
#include "engine/winograd_f32.hpp"

#include <omp.h>

#include <algorithm>
#include <cstddef>

namespace edgeqc {

namespace {

constexpr int kPositions = kWinogradPositions;
// Bound on the floats of transformed inputs and products held at once; batches are processed in chunks of images
// that fit (4 M floats = 16 MiB: enough columns for an efficient GEMM, little memory).
constexpr std::size_t kScratchBudgetFloats = std::size_t{4} << 20;

// Row i of U = G g G^T (G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]): positions 4i .. 4i + 3 of the transformed
// tile, from row i of G g.
void transform_weight_row(const float* g, int i, float (&u)[4]) {
    float s[3];
    for (int j = 0; j < 3; ++j) {
        switch (i) {
            case 0: s[j] = g[j]; break;
            case 1: s[j] = 0.5f * (g[j] + g[3 + j] + g[6 + j]); break;
            case 2: s[j] = 0.5f * (g[j] - g[3 + j] + g[6 + j]); break;
            default: s[j] = g[6 + j]; break;
        }
    }
    u[0] = s[0];
    u[1] = 0.5f * (s[0] + s[1] + s[2]);
    u[2] = 0.5f * (s[0] - s[1] + s[2]);
    u[3] = s[2];
}

}  // namespace

WinogradTileGrid::WinogradTileGrid(int height_, int width_, int padding_)
    : height(height_), width(width_), padding(padding_), out_height(height_ + 2 * padding_ - 2),
      out_width(width_ + 2 * padding_ - 2), tile_rows((out_height + 1) / 2), tile_columns((out_width + 1) / 2) {}

int WinogradTileGrid::chunk(int batch, std::size_t floats_per_tile) const {
    return static_cast<int>(std::clamp<std::size_t>(
        kScratchBudgetFloats / (floats_per_tile * static_cast<std::size_t>(tiles_per_image())), 1,
        static_cast<std::size_t>(batch)));
}

std::size_t winograd_thread_scratch_floats(const WinogradTileGrid& grid) {
    return aligned_floats(16 * static_cast<std::size_t>(grid.tile_columns) + 16);
}

void winograd_transform_input(const KernelTable& table, const WinogradTileGrid& grid, const float* x, int channels,
                              int first, int count, float* v, float* thread_scratch, std::size_t thread_floats,
                              int threads) {
    const std::ptrdiff_t tiles = static_cast<std::ptrdiff_t>(count) * grid.tiles_per_image();
    const std::size_t plane_size = static_cast<std::size_t>(grid.height) * grid.width;
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
    for (int n = 0; n < count; ++n) {
        for (int c = 0; c < channels; ++c) {
            float* rows = thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * thread_floats;
            const float* plane = x + (static_cast<std::size_t>(first + n) * channels + c) * plane_size;
            float* out = v + static_cast<std::ptrdiff_t>(c) * tiles + n * grid.tiles_per_image();
            for (int ty = 0; ty < grid.tile_rows; ++ty)
                table.winograd_input_row_f32(plane, grid.height, grid.width, 2 * ty - grid.padding, -grid.padding,
                                             grid.tile_columns, channels * tiles, out + ty * grid.tile_columns, rows);
        }
    }
}

void WinogradConv3x3::prepare(const KernelTable& table, const float* weights, int out_channels, int in_channels) {
    out_channels_ = out_channels;
    in_channels_ = in_channels;
    // U as 16 matrices of Cout x Cin, each packed as the GEMM's A; built four positions (one row of U) at a time,
    // so that preparing a 512 x 512 layer holds 4 MB of unpacked matrices rather than 16 MB.
    const std::size_t plane = static_cast<std::size_t>(out_channels) * in_channels;
    AlignedFloats transformed(4 * plane);
    packed_floats_ = table.gemm_pack_a_f32(false, out_channels, in_channels, nullptr, in_channels, nullptr);
    packed_weights_.assign(packed_floats_ * kPositions, 0.0f);
    for (int row = 0; row < 4; ++row) {
        for (std::size_t pair = 0; pair < plane; ++pair) {
            float u[4];
            transform_weight_row(weights + pair * 9, row, u);
            for (int column = 0; column < 4; ++column) transformed[column * plane + pair] = u[column];
        }
        for (int column = 0; column < 4; ++column)
            table.gemm_pack_a_f32(false, out_channels, in_channels, transformed.data() + column * plane, in_channels,
                                  packed_weights_.data() + (4 * row + column) * packed_floats_);
    }
    table_ = &table;
}

WinogradConv3x3::Layout WinogradConv3x3::layout(int batch, int height, int width, int padding, int threads) const {
    const WinogradTileGrid grid(height, width, padding);
    Layout l;
    l.chunk = grid.chunk(batch, static_cast<std::size_t>(kPositions) * (in_channels_ + out_channels_));
    const std::size_t tiles = static_cast<std::size_t>(grid.tiles_per_image()) * static_cast<std::size_t>(l.chunk);
    l.input_floats = aligned_floats(kPositions * static_cast<std::size_t>(in_channels_) * tiles);
    l.product_floats = aligned_floats(kPositions * static_cast<std::size_t>(out_channels_) * tiles);
    l.thread_floats = aligned_floats(std::max(winograd_thread_scratch_floats(grid),
                                              table_->gemm_workspace_f32(out_channels_, static_cast<int>(tiles), in_channels_, true)));
    l.total_floats = l.input_floats + l.product_floats + l.thread_floats * static_cast<std::size_t>(std::max(threads, 1));
    return l;
}

std::size_t WinogradConv3x3::workspace_floats(int batch, int height, int width, int padding, int threads) const {
    return batch <= 0 ? 0 : layout(batch, height, width, padding, threads).total_floats;
}

void WinogradConv3x3::forward(const float* x, int batch, int height, int width, int padding, const float* bias,
                              bool relu, float* y, float* workspace, int threads) const {
    if (batch <= 0) return;
    const WinogradTileGrid grid(height, width, padding);
    const int tiles_per_image = grid.tiles_per_image(), tile_rows = grid.tile_rows, tile_columns = grid.tile_columns;
    const int out_height = grid.out_height, out_width = grid.out_width;
    const Layout l = layout(batch, height, width, padding, threads);
    const int chunk = l.chunk;
    float* transformed_input = workspace;
    float* products = workspace + l.input_floats;
    float* thread_scratch = products + l.product_floats;
    const std::size_t thread_floats = l.thread_floats;
    const std::size_t out_plane = static_cast<std::size_t>(out_height) * out_width;

    for (int first = 0; first < batch; first += chunk) {
        const int count = std::min(chunk, batch - first);
        const std::ptrdiff_t tiles = static_cast<std::ptrdiff_t>(count) * tiles_per_image;
        winograd_transform_input(*table_, grid, x, in_channels_, first, count, transformed_input, thread_scratch,
                                 thread_floats, threads);
        // M = U V for each of the 16 positions: Cout x tiles. One whole GEMM per thread: no barriers inside them,
        // and each thread's packed panels stay in its own cache.
#pragma omp parallel for schedule(dynamic) num_threads(threads)
        for (int position = 0; position < kPositions; ++position)
            table_->gemm_packed_a_f32(false, out_channels_, static_cast<int>(tiles), in_channels_, 1.0f,
                                      packed_weights_.data() + position * packed_floats_,
                                      transformed_input + position * in_channels_ * tiles, static_cast<int>(tiles),
                                      0.0f, products + position * out_channels_ * tiles, static_cast<int>(tiles), {},
                                      thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * thread_floats);
        // Y = A^T M A per tile, plus bias and ReLU, cropped to the output size.
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
        for (int n = 0; n < count; ++n) {
            for (int co = 0; co < out_channels_; ++co) {
                float* scratch = thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * thread_floats;
                const float* in = products + static_cast<std::ptrdiff_t>(co) * tiles + n * tiles_per_image;
                float* plane = y + (static_cast<std::size_t>(first + n) * out_channels_ + co) * out_plane;
                for (int ty = 0; ty < tile_rows; ++ty)
                    table_->winograd_output_row_f32(in + ty * tile_columns, static_cast<std::ptrdiff_t>(out_channels_) * tiles,
                                         tile_columns, bias ? bias[co] : 0.0f, relu, plane, out_height, out_width,
                                         2 * ty, scratch);
            }
        }
    }
}

}  // namespace edgeqc
