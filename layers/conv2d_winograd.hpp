// Winograd F(2x2, 3x3) forward convolution for inference (3x3 kernel, stride 1, any zero padding): each 2x2 output
// tile costs 16 multiplications per channel pair instead of 36 (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", CVPR 2016). Inference transforms and packs the weights once; training re-prepares them per call.
#pragma once

#include "engine/kernels.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

class WinogradConv3x3 {
public:
    // Transforms and packs weights (out_channels x in_channels x 3 x 3) for `table`'s GEMM.
    void prepare(const KernelTable& table, const float* weights, int out_channels, int in_channels);
    const KernelTable* prepared_for() const { return table_; }
    // Forgets the prepared weights (they changed): prepared_for() is null until prepare() runs again.
    void reset() { table_ = nullptr; }

    // x: batch x Cin x height x width -> y: batch x Cout x (height + 2p - 2) x (width + 2p - 2), then + bias (Cout
    // values, may be null) and ReLU when asked.
    void forward(const float* x, int batch, int height, int width, int padding, const float* bias, bool relu,
                 float* y) const;

private:
    const KernelTable* table_ = nullptr;
    int out_channels_ = 0, in_channels_ = 0;
    std::size_t packed_floats_ = 0;  // per transformed position (16 of them)
    AlignedFloats packed_weights_;
};

// dw (Cout x Cin x 3 x 3) += the weight gradient of y = conv(x) (3x3, stride 1, `padding`) given dy, over the same
// tiles: dU = (A dy A^T) V^T per transformed position, summed over all tiles of the batch, then dW = G^T dU G.
// x: batch x Cin x height x width; dy: batch x Cout x (height + 2p - 2) x (width + 2p - 2).
void winograd_weight_gradient(const KernelTable& table, const float* x, const float* dy, int batch, int height,
                              int width, int padding, int out_channels, int in_channels, float* dw);

}  // namespace edgeqc
