// 2-D convolution (cross-correlation, as in PyTorch) with square kernel, stride, zero padding and optional bias, for
// training: lowered to im2col + one GEMM per chunk of images (a convolution of few weights: its weight gradient image
// by image, in f32 products under bf16 training), or Winograd where that pays; it does not fuse the activation (ReLU
// is its own layer). Inference runs engine/conv2d_f32.hpp's packed convolution instead.
#pragma once

#include "engine/conv2d_f32.hpp"
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
    // outputs, the input gradient) with Winograd (engine/winograd_f32.hpp picks the tile); false keeps im2col + GEMM
    // (benchmarks compare both).
    bool winograd = true;
    // While training, Winograd re-transforms the weights on every call, which pays only over enough 2x2 output
    // tiles in the batch (bench/kernels.cpp: the 5x7 layer at batch 32, 384 tiles, is slower; 10x15 at batch 32,
    // 1280 tiles, is 1.7x faster; at batch 1 every layer is slower). Inference plans transform once and always use it.
    long winograd_training_min_tiles = 1024;
};

class Conv2d : public Layer {
public:
    explicit Conv2d(const Conv2dConfig& config);

    // x: N x Cin x H x W -> y: N x Cout x Ho x Wo, Ho = (H + 2p - k) / s + 1
    Shape output_shape(const Shape& input) const override;
    void declare(ParameterArena& parameters, ParameterArena& buffers, const std::string& prefix) override;
    void initialize(InitScheme scheme, Rng& rng) override;
    void forward(const Tensor& x, Tensor& y, Mode mode) override;
    void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
    void share_context(TrainingContext& context) override { context_ = &context; }

    const Conv2dConfig& config() const { return config_; }
    TensorView weight() const { return parameters_->value(weight_slot_); }  // Cout x Cin x k x k
    TensorView bias() const { return parameters_->value(bias_slot_); }      // Cout (only when config().bias)

private:
    // Sizes of one forward/backward pass and scratch for one chunk of images (see conv2d.cpp).
    struct Plan;
    Plan plan(const Shape& input);

    bool winograd_forward() const;
    bool winograd_input_gradient() const;
    bool winograd_pays_while_training(const Shape& output) const;  // output: N x C x H x W of the Winograd conv
    // Runs the scratch's Winograd convolution (prepared for weights) over x: N x Cin' x H x W with `padding`, into y.
    void winograd_run(const float* weights, int out_channels, int in_channels, const Shape& x_shape, const float* x,
                      int padding, const float* bias, float* y);
    // y = the convolution of x (3x3 "same", packs_from_image() says when) as the inference one computes it: the
    // weights packed for the GEMM once per call, then an image per GEMM with B packed straight from the image.
    void forward_from_image(const float* weights, const float* bias, const Tensor& x, Tensor& y);
    // Whether this convolution has few weights: its weight gradient goes image by image (weight_gradient_by_image),
    // and its products stay f32 under bf16 training.
    bool few_weights() const;
    // The kernel table of its products: the network's, or kernels() for f32 products (see few_weights()).
    const KernelTable& table() const;
    // dw += the weight gradient of the plan's batch x with output gradient dy, an image per GEMM on one thread.
    void weight_gradient_by_image(const Plan& p, const Tensor& x, const Tensor& dy, float* dw);
    // dx = full convolution of dy with the flipped weights, through Winograd (see winograd_input_gradient()).
    void input_gradient_winograd(const Tensor& dy, Tensor& dx);

    Conv2dConfig config_;
    ParameterArena* parameters_ = nullptr;
    std::size_t weight_slot_ = 0;
    std::size_t bias_slot_ = 0;
    TrainingContext own_context_;  // unused once a network shares its context
    TrainingContext* context_ = &own_context_;
};

}  // namespace edgeqc
