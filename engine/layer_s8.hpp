// The int8 layers of the inference plan: a conv or dense layer of a quantized model with its s8 weights packed once
// for one kernel table, run on 7-bit activations (engine/tensor.hpp) with the zero-point correction, the int32
// bias, requantization for the next int8 layer (or dequantization for a float one) and ReLU all fused into the
// GEMM's epilogue; and the quantization of float activations that enter an int8 layer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/conv2d_f32.hpp"
#include "engine/kernels.hpp"
#include "engine/model.hpp"
#include "engine/tensor.hpp"
#include "engine/winograd_s8.hpp"

namespace edgeqc {

// How an int8 convolution computes its sums: every way gives the same bits, so the choice is one of speed alone,
// made by timing the ways the layer allows on its shape at build time unless a caller fixes it. Im2col: the GEMM
// (for a 3x3, stride-1, padding-1 layer, B read from the image, in Conv3x3Order::ByColumns), or Im2colByPositions
// (the same in Conv3x3Order::ByPositions); Winograd: for a 3x3 stride-1 layer of 16+ inputs.
enum class ConvAlgorithm { Fastest, Im2col, Im2colByPositions, Winograd };

class PackedLayerS8 {
public:
    // conv: the geometry of a conv layer, or null for a dense layer of `inputs` features. weights: s8 with one
    // scale per output; bias: s32 of scale weight scale x input scale, or null. output: the quantization of the
    // next int8 layer's input to requantize into, or none to dequantize to floats. relu: fused. threads: what
    // run() will get (the timing of ConvAlgorithm::Fastest uses it). max_pool_follows: a 2x2 max pool of stride 2
    // follows the convolution (and its ReLU), which the layer takes over where its way computes it on the sums (the
    // GEMM that reads B from the image does) and, for Fastest, where that measures faster than a pool pass after.
    PackedLayerS8(const KernelTable& table, const ConvGeometry* conv, int outputs, int inputs,
                  const TypedTensor& weights, const TypedTensor* bias, const ActivationQuantization& input,
                  const std::optional<ActivationQuantization>& output, bool relu, int threads,
                  ConvAlgorithm algorithm = ConvAlgorithm::Fastest, bool max_pool_follows = false);

    bool quantized_output() const { return output_.has_value(); }
    bool uses_winograd() const { return winograd_ != nullptr; }
    bool pools() const { return pool_; }  // whether it took over the max pool that follows
    std::size_t packed_bytes() const;
    std::size_t workspace_bytes(int batch, int threads) const;
    // x: batch x (C x H x W, or inputs) 7-bit activations -> y: batch x (outputs x Ho x Wo, or outputs), 7-bit
    // (quantized_output()) or floats, Ho and Wo halved, rounded down, when it pools; on at most `threads` threads.
    void run(const std::uint8_t* x, int batch, void* y, unsigned char* workspace, int threads) const;

private:
    IntegerGemmEpilogue epilogue(void* c, int ldc) const;
    void run_im2col(const std::uint8_t* x, int batch, void* y, unsigned char* workspace) const;
    std::size_t im2col_workspace_bytes(int batch) const;
    // A 3x3 convolution of stride 1 and padding 1 (the output the size of the input): the GEMM packs its B from the
    // image itself (GemmConv3x3S8), without an im2col matrix.
    bool packs_from_image() const {
        return conv_ && conv_->kernel == 3 && conv_->stride == 1 && conv_->padding == 1 &&
               conv_->out_height == conv_->height && conv_->out_width == conv_->width;
    }

    const KernelTable& table_;
    std::optional<ConvGeometry> conv_;
    int outputs_, inputs_;  // rows of the weight matrix and its depth (Cin x k x k for a conv)
    ActivationQuantization input_;
    std::optional<ActivationQuantization> output_;
    bool relu_;
    bool pool_ = false;
    Conv3x3Order order_ = Conv3x3Order::ByColumns;  // where the GEMM reads B from the image
    // The im2col path's A (as GemmConv3x3PackAS8 packs it where the GEMM reads B from the image).
    std::vector<std::int8_t, AlignedAllocator<std::int8_t>> packed_weights_;
    std::unique_ptr<WinogradConv3x3S8> winograd_;  // or the Winograd path
    // The int32 bias minus the input zero point x the row's weight sum: the sums are of q, not q - zero point.
    std::vector<std::int32_t> row_bias_;
    std::vector<float> row_scale_;        // weight scale x input scale (/ output scale when requantizing)
};

}  // namespace edgeqc
