// 2-D convolution (cross-correlation, as in PyTorch) with square kernel, stride, zero padding and optional bias.
// Lowered to im2col + one GEMM per chunk of images; it does not fuse the activation (ReLU is its own layer).
#pragma once

#include "engine/kernels.hpp"
#include "layers/conv2d_winograd.hpp"
#include "layers/layer.hpp"

namespace edgeqc {

struct Conv2dConfig {
    int in_channels = 1;
    int out_channels = 1;
    int kernel = 3;
    int stride = 1;
    int padding = 1;  // zeros on every side; kernel/2 gives 'same' for stride 1
    bool bias = true;
    // Upper bound on the im2col scratch in floats: the batch is processed in chunks of images that fit
    // (a single image that does not fit still gets its full buffer). 4 M floats = 16 MiB.
    std::size_t column_budget_floats = std::size_t{4} << 20;
    // 3x3 stride-1 layers with at least kWinogradMinInputChannels inputs compute forward (and, with as many
    // outputs, the input gradient) with Winograd F(2x2, 3x3); false keeps im2col + GEMM (benchmarks compare both).
    bool winograd = true;
    // While training, Winograd re-transforms the weights on every call, which pays only over enough 2x2 output
    // tiles in the batch (bench/kernels.cpp: the 5x7 layer at batch 32, 384 tiles, is slower; 10x15 at batch 32,
    // 1280 tiles, is 1.7x faster; at batch 1 every layer is slower). Frozen layers transform once and always use it.
    long winograd_training_min_tiles = 1024;
};

// Below this many input channels the Winograd transforms cost more than the multiplications they save.
inline constexpr int kWinogradMinInputChannels = 16;

class Conv2d : public Layer {
public:
    explicit Conv2d(const Conv2dConfig& config);

    // x: N x Cin x H x W -> y: N x Cout x Ho x Wo, Ho = (H + 2p - k) / s + 1
    Shape output_shape(const Shape& input) const override;
    void declare(ParameterArena& parameters, ParameterArena& buffers, const std::string& prefix) override;
    void initialize(InitScheme scheme, Rng& rng) override;
    void forward(const Tensor& x, Tensor& y, Mode mode) override;
    void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;

    // Marks the weights as fixed from the next forward on (inference-only networks): forward then transforms and
    // packs them once (Winograd or GEMM) and reuses them, and with fuse_relu applies the following ReLU itself.
    // Weights written after that forward by anything but initialize() must be followed by forget_packed_weights().
    void freeze_for_inference(bool fuse_relu);
    void forget_packed_weights();

    const Conv2dConfig& config() const { return config_; }
    TensorView weight() const { return parameters_->value(weight_slot_); }  // Cout x Cin x k x k
    TensorView bias() const { return parameters_->value(bias_slot_); }      // Cout (only when config().bias)

private:
    // Sizes of one forward/backward pass and scratch for one chunk of images (see conv2d.cpp).
    struct Plan;
    // one_image: scratch for a single image (the frozen path) instead of a budget-sized chunk and no product buffer.
    Plan plan(const Shape& input, bool one_image = false) const;

    void forward_frozen(const Tensor& x, Tensor& y);
    bool winograd_forward() const;
    bool winograd_input_gradient() const;
    bool winograd_pays_while_training(const Shape& output) const;  // output: N x C x H x W of the Winograd conv
    // dx = full convolution of dy with the flipped weights, through Winograd (see winograd_input_gradient()).
    void input_gradient_winograd(const Tensor& dy, Tensor& dx) const;

    Conv2dConfig config_;
    bool frozen_ = false;
    bool fused_relu_ = false;
    AlignedFloats packed_weights_;                 // for packed_for_'s GEMM, filled by the first frozen forward
    const KernelTable* packed_for_ = nullptr;
    WinogradConv3x3 winograd_;                     // prepared by the first frozen forward when winograd_forward()
    ParameterArena* parameters_ = nullptr;
    std::size_t weight_slot_ = 0;
    std::size_t bias_slot_ = 0;
};

}  // namespace edgeqc
