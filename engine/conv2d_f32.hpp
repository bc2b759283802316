// Convolution for inference and its building blocks: the geometry of one convolution, the im2col transform (shared
// with the training layer, which adds col2im for its backward pass) and a convolution whose weights are packed once
// (Winograd-transformed where that pays) with bias and ReLU fused into its GEMM.
// Column layout: row r = (c * k + ky) * k + kx, column = image_in_chunk * Ho * Wo + oy * Wo + ox, so one GEMM
// W[Cout x K] * col[K x chunk*Ho*Wo] computes a whole chunk (training's backward pass); a 3x3 "same" convolution's
// GEMM reads those columns straight from the image instead (packs_from_image()).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <vector>

#include "engine/kernels.hpp"
#include "engine/tensor.hpp"
#include "engine/winograd_f32.hpp"

namespace edgeqc {

struct ConvGeometry {
    int channels, height, width, kernel, stride, padding, out_height, out_width;
    int rows() const { return channels * kernel * kernel; }
    int positions() const { return out_height * out_width; }
};

// images: `count` images of channels x height x width starting at `x`; col: rows x (count * positions). Positions
// outside the image read as `padding`: 0 for floats, the zero point for quantized activations. Instantiated for
// float and std::uint8_t.
template <class T>
void im2col(const ConvGeometry& g, const T* x, int count, T* col, T padding = T(0));

// Whether a convolution's GEMM can read B straight from the image with `table` (a 3x3 "same" convolution: no im2col
// matrix, one pass less over 9 x the input and 9 x less memory), which bf16 products cannot.
inline bool packs_from_image(const KernelTable& table, const ConvGeometry& g) {
    return g.kernel == 3 && g.stride == 1 && g.padding == 1 && table.gemm_conv3x3_f32 != nullptr;
}

// How many images of a batch a GEMM convolution keeps in flight, each with a workspace of its own: one per thread
// once the batch has as many images as threads, else one.
inline int images_in_flight(int batch, int threads) { return threads > 1 && batch >= threads ? threads : 1; }

// Images of a batch that one GEMM convolution on a thread multiplies together: enough for 128 columns where an image
// has fewer positions, at most a thread's share of the batch. Each product reads all of A, the weights: conv5 of the
// reference network (512 -> 256 at 5x7, 4.7 MB of weights) read them for 35 columns an image, bound by memory; four
// images a product measured 50 -> 66 % of the FMA peak at batch 32 (training forward). 256 columns (8 images) gave
// 63 %, and conv4's 150 columns in pairs ran slower than alone.
inline int images_per_gemm(int positions, int batch, int threads) {
    constexpr int kColumns = 128;
    if (images_in_flight(batch, threads) == 1) return 1;
    return std::clamp((kColumns + positions - 1) / std::max(positions, 1), 1, batch / threads);
}

// convolve(first, count, workspace) for every image of the batch: whole rounds of one group of `group` images
// (images_per_gemm) per thread, then rounds of one image per thread, each GEMM on its thread alone (no barriers, and
// each thread packs and reads only its own columns: at batch 32, 1.1x the rate of every thread on one image's GEMM),
// then the images left over, fewer than the threads, one at a time on all of them. workspace: images_in_flight(batch,
// threads) slices of per_group floats (a group's workspace also serves one image).
template <class Convolve>
void for_each_image(int batch, int threads, int group, float* workspace, std::size_t per_group,
                    const Convolve& convolve) {
    const bool shared_out = images_in_flight(batch, threads) > 1;
    const int grouped = shared_out ? batch / (group * threads) * (group * threads) : 0;
    const int single = shared_out ? grouped + (batch - grouped) / threads * threads : 0;
#pragma omp parallel num_threads(threads) if (shared_out)
    {
        float* own = workspace + per_group * omp_get_thread_num();
#pragma omp for schedule(static)
        for (int first = 0; first < grouped; first += group) convolve(first, group, own);
#pragma omp for schedule(static)
        for (int n = grouped; n < single; ++n) convolve(n, 1, own);
    }
    for (int n = single; n < batch; ++n) convolve(n, 1, workspace);
}

// Below this many input channels the Winograd transforms cost more than the multiplications they save.
inline constexpr int kWinogradMinInputChannels = 16;
// Whether a convolution of this shape can go through Winograd (F(2x2, 3x3) or F(4x4, 3x3)) and gains from it.
inline bool winograd_suits(const ConvGeometry& g) {
    return g.kernel == 3 && g.stride == 1 && g.channels >= kWinogradMinInputChannels;
}

// How a packed convolution computes: as the shape and batch suit (Auto: Winograd where winograd_suits(), with the
// tile winograd_tile_for() picks), or as forced (benchmarks and tests compare them; a Winograd algorithm falls back to
// the GEMM where the shape does not suit it). Im2col names the GEMM path, whose B comes from the image itself where
// packs_from_image() says so.
enum class ConvAlgorithmF32 { Auto, Im2col, WinogradF2x2, WinogradF4x4 };

// A convolution with fixed weights for one kernel table: packed once, then run on any batch.
class PackedConv2dF32 {
public:
    // weights: Cout x Cin x k x k; bias: Cout values or null; relu: fused after the bias; max_batch: the largest
    // batch it will run (the Winograd tile is chosen for it, and kept for smaller batches: a model computes the same
    // bits whatever the batch); threads: the most threads packing the weights may use.
    PackedConv2dF32(const KernelTable& table, const ConvGeometry& geometry, int out_channels, const float* weights,
                    const float* bias, bool relu, int max_batch, int threads,
                    ConvAlgorithmF32 algorithm = ConvAlgorithmF32::Auto);

    bool uses_winograd() const { return winograd_ != nullptr; }
    ConvAlgorithmF32 algorithm() const;
    std::size_t packed_bytes() const;
    // Floats of workspace run() needs for `batch` images on up to `threads` threads.
    std::size_t workspace_floats(int batch, int threads) const;
    // Takes over a 2x2 max pool of stride 2 that follows the convolution (and its ReLU), where the path computes it
    // on the way out (the Winograd output transforms do: the full output is never written); returns whether it did.
    bool fuse_max_pool_2x2();
    // x: batch x Cin x H x W -> y: batch x Cout x Ho x Wo (sizes from the geometry; halved, rounded down, when it
    // pools).
    void run(const float* x, int batch, float* y, float* workspace, int threads) const;

private:
    // The GEMM path's images a product, and its workspace for one product of `images` in flight.
    int gemm_images(int batch, int threads) const;
    std::size_t gemm_workspace_floats(int images) const;

    const KernelTable& table_;
    ConvGeometry geometry_;
    int out_channels_;
    bool relu_;
    bool pool_ = false;
    std::vector<float> bias_;  // empty without bias
    AlignedFloats packed_weights_;                // the GEMM path's A
    std::unique_ptr<WinogradConv3x3> winograd_;  // or the Winograd path
};

}  // namespace edgeqc
