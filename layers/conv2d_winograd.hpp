// The weight gradient of a Winograd F(2x2, 3x3) convolution, for training; the forward transforms it shares live
// in engine/winograd_f32.hpp.
#pragma once

#include "engine/kernels.hpp"
#include "engine/tensor.hpp"
#include "engine/winograd_f32.hpp"

namespace edgeqc {

// dw (Cout x Cin x 3 x 3) += the weight gradient of y = conv(x) (3x3, stride 1, `padding`) given dy, over 2x2 output
// tiles whichever tile the forward pass used: dU = (A dy A^T) V^T per transformed position, summed over all tiles of
// the batch, then dW = G^T dU G.
// x: batch x Cin x height x width; dy: batch x Cout x (height + 2p - 2) x (width + 2p - 2). scratch: the caller's.
void winograd_weight_gradient(const KernelTable& table, const float* x, const float* dy, int batch, int height,
                              int width, int padding, int out_channels, int in_channels, float* dw, ScratchBuffer& scratch);

}  // namespace edgeqc
