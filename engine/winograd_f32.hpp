// Winograd F(2x2, 3x3) and F(4x4, 3x3) forward convolution (3x3 kernel, stride 1, any zero padding): each 2x2 output
// tile costs 16 multiplications per channel pair instead of 36, each 4x4 tile 36 instead of 144 (Lavin & Gray, "Fast
// Algorithms for Convolutional Neural Networks", CVPR 2016). Inference plans transform and pack the weights once;
// training re-prepares them per call. All scratch comes from the caller's workspace; the weight gradient lives with
// training (layers/conv2d_winograd).
#pragma once

#include <cstddef>

#include "engine/kernels.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

// The output tile: F(4x4, 3x3) does 2.25 multiplications per output where F(2x2, 3x3) does 4, and moves 2.25
// transformed floats per output where it moves 4, but its weights take 36 floats per 3x3 kernel rather than 16, and
// its tiles are coarser (more of them cropped at the edges, fewer columns for the GEMM).
enum class WinogradTile { F2x2, F4x4 };
constexpr int winograd_tile_size(WinogradTile tile) { return tile == WinogradTile::F4x4 ? 4 : 2; }  // outputs a side
constexpr int winograd_positions(WinogradTile tile) {
    return (winograd_tile_size(tile) + 2) * (winograd_tile_size(tile) + 2);
}
// The int8 Winograd's and the weight gradient's: both use 2x2 tiles.
inline constexpr int kWinogradPositions = winograd_positions(WinogradTile::F2x2);

// The output tiles of a convolution with `padding` on a height x width input.
struct WinogradTileGrid {
    WinogradTile tile;
    int size, height, width, padding, out_height, out_width, tile_rows, tile_columns;
    WinogradTileGrid(WinogradTile tile, int height, int width, int padding);
    int tiles_per_image() const { return tile_rows * tile_columns; }
    int positions() const { return winograd_positions(tile); }
    // Images per round so that `floats_per_tile` floats of scratch per tile stay within a fixed budget.
    int chunk(int batch, std::size_t floats_per_tile) const;
    // Rows of tiles one call of the output transform takes: up to 128 tiles, a few vectors' worth, whose column
    // transforms stay in L1.
    int output_rows_at_once() const;
};

// Where a Winograd convolution's weights come from: prepared once (an inference plan), or on every call (training,
// whose weights change every step).
enum class WinogradWeights { PreparedOnce, PreparedPerCall };

// The output tile for a convolution computed with `table` on batches of up to `batch` height x width inputs: 4x4
// where four things hold, else 2x2.
// - The table's GEMMs multiply f32 operands: bf16 products lose too much precision in the larger transforms (2.5 %
//   relative error against 0.4 %).
// - Its products, cropped edges included, come to at most 70 % of the 2x2 tiles'.
// - The batch holds at least 16 of its tiles, a vector of GEMM columns.
// - Its transformed weights (36 floats per channel pair) fit in 8 MiB, or, prepared once, the batch holds 128 of its
//   tiles: each position's GEMM streams all its weights for every call, and with few columns that stream is the
//   bottleneck. Prepared on every call, larger weights cost more to transform than the tiles save.
// Measured on the reference network, 2 threads (bench/RESULTS.md): 4x4 tiles ran 1.2-1.5x faster on 32 -> 64 at
// 40x60 and 64 -> 512 at 20x30 at batch 1 and 32; on 512 -> 512 at 10x15 (36 MiB of weights) 1.04-1.18x at batch 32
// but 0.69x at batch 2; on 512 -> 256 at 5x7 (75 % of the products) 0.4-0.8x. A fixed rule rather than a timing, so
// that the same model and batch always compute the same bits.
WinogradTile winograd_tile_for(const KernelTable& table, int in_channels, int out_channels, int height, int width,
                               int padding, int batch, WinogradWeights weights);

// Whether a convolution computed with `table`, its weights prepared once, runs its position products on the narrow GEMM
// (GemmNarrowF32: vectors along the output channels) rather than the packed one (vectors along the tiles): where a
// batch of up to `batch` images holds at most 160 tiles. There the packed GEMM's vectors run partly empty (40 tiles
// fill 40 of 48 lanes of three AVX-512 vectors, 12 tiles 12 of 16) and its packing of B is not repaid; from 160 tiles
// on the two measured even. Measured at 2 threads on the position products of the reference network at batch 1
// (bench/RESULTS.md), narrow against packed: 512 -> 512 at 10x15 (40 tiles, 512 deep) 1.22x, 64 -> 512 at 20x30
// (40 tiles of 4x4, 64 deep) 1.20x, 32 -> 64 at 40x60 (150 tiles of 4x4, 32 deep) 1.30x; 512 x 160 x 512 products
// 0.99x. A fixed rule, as for the tile.
bool winograd_narrow_products(const KernelTable& table, const WinogradTileGrid& grid, int batch,
                              WinogradWeights weights);

// Row scratch one thread needs for the tile transforms of this grid.
std::size_t winograd_thread_scratch_floats(const WinogradTileGrid& grid);

// V = B^T d B for images [first, first + count) of x (batch x channels x H x W): grid.positions() matrices of
// channels x tiles at v. thread_scratch holds `threads` slices of thread_floats (>= winograd_thread_scratch_floats),
// one per thread.
void winograd_transform_input(const KernelTable& table, const WinogradTileGrid& grid, const float* x, int channels,
                              int first, int count, float* v, float* thread_scratch, std::size_t thread_floats,
                              int threads);

class WinogradConv3x3 {
public:
    // Transforms and packs weights (out_channels x in_channels x 3 x 3) for `table`'s GEMM and this output tile, on
    // up to `threads` threads; for its narrow GEMM when `narrow_products` (winograd_narrow_products() says when).
    void prepare(const KernelTable& table, const float* weights, int out_channels, int in_channels,
                 WinogradTile tile, int threads, bool narrow_products = false);
    WinogradTile tile() const { return tile_; }
    const KernelTable* prepared_for() const { return table_; }
    // Forgets the prepared weights (they changed): prepared_for() is null until prepare() runs again.
    void reset() { table_ = nullptr; }
    std::size_t packed_bytes() const { return packed_weights_.size() * sizeof(float); }

    // Floats of workspace forward() needs for these sizes on up to `threads` threads (after prepare()).
    std::size_t workspace_floats(int batch, int height, int width, int padding, int threads) const;
    // x: batch x Cin x height x width -> y: batch x Cout x (height + 2p - 2) x (width + 2p - 2), then + bias (Cout
    // values, may be null) and ReLU when asked, and with `pool` a 2x2 max pool of stride 2 (y's planes are then half
    // as high and half as wide, rounded down); on at most `threads` threads.
    void forward(const float* x, int batch, int height, int width, int padding, const float* bias, bool relu,
                 bool pool, float* y, float* workspace, int threads) const;

private:
    // How forward() carves its workspace: transformed inputs and products of one chunk, then a slice per thread.
    struct Layout {
        int chunk = 1;
        std::size_t input_floats = 0, product_floats = 0, thread_floats = 0, total_floats = 0;
    };
    Layout layout(int batch, int height, int width, int padding, int threads) const;

    const KernelTable* table_ = nullptr;
    WinogradTile tile_ = WinogradTile::F2x2;
    bool narrow_products_ = false;
    int out_channels_ = 0, in_channels_ = 0;
    std::size_t packed_floats_ = 0;  // per transformed position
    AlignedFloats packed_weights_;
};

}  // namespace edgeqc
