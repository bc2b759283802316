// The weight gradient of a 3x3 convolution through Winograd F(2x2, 3x3), with engine/winograd_f32.hpp's transforms.
#include "layers/conv2d_winograd.hpp"

#include <omp.h>

#include <algorithm>
#include <cstddef>

namespace edgeqc {

namespace {

constexpr int kPositions = kWinogradPositions;

// dW += G^T dU G (G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1]) for one channel pair: 4x4 -> 3x3.
void accumulate_weight_gradient(const float (&du)[kPositions], float* dw) {
    float s[3][4];
    for (int j = 0; j < 4; ++j) {
        s[0][j] = du[j] + 0.5f * (du[4 + j] + du[8 + j]);
        s[1][j] = 0.5f * (du[4 + j] - du[8 + j]);
        s[2][j] = 0.5f * (du[4 + j] + du[8 + j]) + du[12 + j];
    }
    for (int i = 0; i < 3; ++i) {
        dw[i * 3 + 0] += s[i][0] + 0.5f * (s[i][1] + s[i][2]);
        dw[i * 3 + 1] += 0.5f * (s[i][1] - s[i][2]);
        dw[i * 3 + 2] += 0.5f * (s[i][1] + s[i][2]) + s[i][3];
    }
}

}  // namespace

void winograd_weight_gradient(const KernelTable& table, const float* x, const float* dy, int batch, int height,
                              int width, int padding, int out_channels, int in_channels, float* dw, ScratchBuffer& scratch) {
    if (batch <= 0) return;  // no tiles: nothing to add (and the scratch below would hold an old sum)
    const WinogradTileGrid grid(WinogradTile::F2x2, height, width, padding);
    const int tiles_per_image = grid.tiles_per_image();
    const int chunk = grid.chunk(batch, static_cast<std::size_t>(kPositions) * (in_channels + out_channels));
    const int threads = omp_get_max_threads();
    const std::size_t pairs = static_cast<std::size_t>(out_channels) * in_channels;
    const std::size_t chunk_tiles = static_cast<std::size_t>(tiles_per_image) * chunk;
    // Transformed inputs and gradients of one chunk, dU (16 matrices of Cout x Cin, summed over every chunk), and
    // each thread's row scratch and GEMM workspace.
    const std::size_t input_floats = aligned_floats(kPositions * in_channels * chunk_tiles);
    const std::size_t gradient_floats = aligned_floats(kPositions * out_channels * chunk_tiles);
    const std::size_t du_floats = aligned_floats(kPositions * pairs);
    const std::size_t thread_floats = aligned_floats(std::max(
        winograd_thread_scratch_floats(grid),
        table.gemm_workspace_f32(out_channels, in_channels, static_cast<int>(chunk_tiles), false)));
    float* transformed_input =
        scratch.floats(input_floats + gradient_floats + du_floats + thread_floats * static_cast<std::size_t>(threads));
    float* transformed_gradient = transformed_input + input_floats;
    float* du = transformed_gradient + gradient_floats;
    float* thread_scratch = du + du_floats;
    const std::size_t out_plane = static_cast<std::size_t>(grid.out_height) * grid.out_width;

    for (int first = 0; first < batch; first += chunk) {
        const int count = std::min(chunk, batch - first);
        const std::ptrdiff_t tiles = static_cast<std::ptrdiff_t>(count) * tiles_per_image;
        winograd_transform_input(table, grid, x, in_channels, first, count, transformed_input, thread_scratch,
                                 thread_floats, threads);
        // Channel outermost, as in winograd_transform_input().
#pragma omp parallel for collapse(2) schedule(static) num_threads(threads)
        for (int co = 0; co < out_channels; ++co) {
            for (int n = 0; n < count; ++n) {
                float* rows = thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * thread_floats;
                const float* plane = dy + (static_cast<std::size_t>(first + n) * out_channels + co) * out_plane;
                float* out = transformed_gradient + static_cast<std::ptrdiff_t>(co) * tiles + n * tiles_per_image;
                for (int ty = 0; ty < grid.tile_rows; ++ty)
                    table.winograd_gradient_row_f32(plane, grid.out_height, grid.out_width, 2 * ty, grid.tile_columns,
                                                  out_channels * tiles, out + ty * grid.tile_columns, rows);
            }
        }
        // dU[position] (+)= dM[position] (Cout x tiles) * V[position]^T (tiles x Cin), one GEMM per thread.
#pragma omp parallel for schedule(dynamic) num_threads(threads)
        for (int position = 0; position < kPositions; ++position)
            table.gemm_f32(false, true, out_channels, in_channels, static_cast<int>(tiles), 1.0f,
                           transformed_gradient + position * out_channels * tiles, static_cast<int>(tiles),
                           transformed_input + position * in_channels * tiles, static_cast<int>(tiles),
                           first == 0 ? 0.0f : 1.0f, du + position * pairs, in_channels, {},
                           thread_scratch + static_cast<std::size_t>(omp_get_thread_num()) * thread_floats);
    }
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t pair = 0; pair < static_cast<std::ptrdiff_t>(pairs); ++pair) {
        float gathered[kPositions];
        for (int position = 0; position < kPositions; ++position) gathered[position] = du[position * pairs + pair];
        accumulate_weight_gradient(gathered, dw + pair * 9);
    }
}

}  // namespace edgeqc
