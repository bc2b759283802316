// Winograd F(2x2, 3x3) forward convolution (3x3 kernel, stride 1, any zero padding): each 2x2 output tile costs 16
// multiplications per channel pair instead of 36 (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", CVPR 2016). Inference plans transform and pack the weights once; training re-prepares them per call.
// All scratch comes from the caller's workspace; the weight gradient lives with training (layers/conv2d_winograd).
#pragma once

#include <cstddef>

#include "engine/kernels.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

inline constexpr int kWinogradPositions = 16;  // a 4x4 transformed tile

// The 2x2 output tiles of a convolution with `padding` on a height x width input.
struct WinogradTileGrid {
    int height, width, padding, out_height, out_width, tile_rows, tile_columns;
    WinogradTileGrid(int height, int width, int padding);
    int tiles_per_image() const { return tile_rows * tile_columns; }
    // Images per round so that `floats_per_tile` floats of scratch per tile stay within a fixed budget.
    int chunk(int batch, std::size_t floats_per_tile) const;
};

// Row scratch one thread needs for the tile transforms of this grid.
std::size_t winograd_thread_scratch_floats(const WinogradTileGrid& grid);

// V = B^T d B for images [first, first + count) of x (batch x channels x H x W): 16 matrices of channels x tiles at
// v. thread_scratch holds `threads` slices of thread_floats (>= winograd_thread_scratch_floats), one per thread.
void winograd_transform_input(const KernelTable& table, const WinogradTileGrid& grid, const float* x, int channels,
                              int first, int count, float* v, float* thread_scratch, std::size_t thread_floats,
                              int threads);

class WinogradConv3x3 {
public:
    // Transforms and packs weights (out_channels x in_channels x 3 x 3) for `table`'s GEMM.
    void prepare(const KernelTable& table, const float* weights, int out_channels, int in_channels);
    const KernelTable* prepared_for() const { return table_; }
    // Forgets the prepared weights (they changed): prepared_for() is null until prepare() runs again.
    void reset() { table_ = nullptr; }
    std::size_t packed_bytes() const { return packed_weights_.size() * sizeof(float); }

    // Floats of workspace forward() needs for these sizes on up to `threads` threads (after prepare()).
    std::size_t workspace_floats(int batch, int height, int width, int padding, int threads) const;
    // x: batch x Cin x height x width -> y: batch x Cout x (height + 2p - 2) x (width + 2p - 2), then + bias (Cout
    // values, may be null) and ReLU when asked; on at most `threads` threads.
    void forward(const float* x, int batch, int height, int width, int padding, const float* bias, bool relu,
                 float* y, float* workspace, int threads) const;

private:
    // How forward() carves its workspace: transformed inputs and products of one chunk, then a slice per thread.
    struct Layout {
        int chunk = 1;
        std::size_t input_floats = 0, product_floats = 0, thread_floats = 0, total_floats = 0;
    };
    Layout layout(int batch, int height, int width, int padding, int threads) const;

    const KernelTable* table_ = nullptr;
    int out_channels_ = 0, in_channels_ = 0;
    std::size_t packed_floats_ = 0;  // per transformed position (16 of them)
    AlignedFloats packed_weights_;
};

}  // namespace edgeqc
