// Winograd F(2x2, 3x3) forward convolution for inference (3x3 kernel, stride 1, any zero padding): each 2x2 output
// tile costs 16 multiplications per channel pair instead of 36 (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", CVPR 2016). The transformed weights are computed and packed once; training never uses it.
#pragma once

#include "engine/kernels.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

class WinogradConv3x3 {
public:
    // Transforms and packs weights (out_channels x in_channels x 3 x 3) for `table`'s GEMM.
    void prepare(const KernelTable& table, const float* weights, int out_channels, int in_channels);
    const KernelTable* prepared_for() const { return table_; }

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

}  // namespace edgeqc
