// The int8 Winograd F(2x2, 3x3) convolution (3x3 kernel, stride 1, any padding), exact: it gives the same int32
// sums as im2col + the int8 GEMM, so an int8 model's outputs do not depend on which path a layer takes. Weights g
// become U' = (2G) g (2G)^T = 4U, integers within +-1143; input tiles d (7-bit activations, and the zero point
// outside the image, as im2col pads) become V = B^T d B, integers within +-508; the 16 positions are int16 GEMMs summed in
// int32 (engine/kernels/gemm_int.hpp); A^T M A, computed with wrap-around (its intermediate sums may exceed int32,
// the result cannot), is 4 x the convolution's sum, divided exactly. Multiplications per output: 4 x Cin instead of
// 9 x Cin, and vpmaddwd multiplies int16 as fast as AVX2 multiplies int8.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/kernels.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

class WinogradConv3x3S8 {
public:
    // Whether a convolution of in_channels inputs stays exact in int32 this way (4 x 9 x Cin x 127 x 127 < 2^31).
    static bool exact_for(int in_channels) { return in_channels <= 3697; }

    // weights: Cout x Cin x 3 x 3, s8 in [-127, 127], for inputs of height x width with `padding`; transformed
    // and packed once for `table`'s int16 GEMM.
    WinogradConv3x3S8(const KernelTable& table, const std::int8_t* weights, int out_channels, int in_channels,
                      int height, int width, int padding);

    std::size_t packed_bytes() const { return packed_weights_.size() * sizeof(std::int16_t); }
    // Bytes of workspace forward() needs on up to `threads` threads (one image at a time, any batch).
    std::size_t workspace_bytes(int threads) const;
    // x: batch x Cin x height x width 7-bit activations of zero point `zero_point` -> `epilogue` applied to the
    // sums of each output channel, the same sums as im2col's (its ldc and output pointers are set here, from y:
    // batch x Cout x out_height x out_width).
    void forward(const std::uint8_t* x, int batch, int zero_point, const IntegerGemmEpilogue& epilogue, void* y,
                 unsigned char* workspace, int threads) const;

private:
    struct Tiles;
    struct Layout;
    Layout layout() const;

    const KernelTable& table_;
    int out_channels_, in_channels_, height_, width_, padding_;
    // Output channels go in blocks whose 16 products stay in cache until the output transform reads them: block b
    // holds channels [b * block_rows_, ...), its position p packed at packed_weights_[block_offsets_[b] + p * size].
    int block_rows_ = 0;
    std::vector<std::size_t> block_offsets_, block_position_elements_;
    std::vector<std::int16_t, AlignedAllocator<std::int16_t>> packed_weights_;
};

}  // namespace edgeqc
