// Batch normalisation over the channel axis (PyTorch BatchNorm2d semantics: biased variance to normalise,
// unbiased variance in the running estimate). For inference the network folds it into the preceding
// convolution, so this layer's Infer path is only used before folding (validation during training).
#pragma once

#include "engine/model_passes.hpp"
#include "layers/layer.hpp"

#include <vector>

namespace edgeqc {

class BatchNorm : public Layer {
public:
    static constexpr float kEpsilon = kBatchNormEpsilon;
    static constexpr float kMomentum = 0.1f;

    explicit BatchNorm(int channels);

    // x: N x C x H x W (or N x C) -> y: same shape
    Shape output_shape(const Shape& input) const override;
    void declare(ParameterArena& parameters, ParameterArena& buffers, const std::string& prefix) override;
    void initialize(InitScheme scheme, Rng& rng) override;
    void forward(const Tensor& x, Tensor& y, Mode mode) override;
    void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;

    int channels() const { return channels_; }
    // Weight of the current batch in the running statistics of a training forward; 1 / k for the k-th batch
    // makes them the plain average over a pass (re-estimating them, see Network::set_batch_norm_momentum).
    void set_momentum(float momentum) { momentum_ = momentum; }
    // Takes over the ReLU that follows it (the Network's call): forward writes relu(y), and backward takes the
    // gradient of relu(y) and routes it through the ReLU itself, with y > 0 as the mask (recomputed from x, which
    // backward reads anyway). The same operations as the two layers' in their order, so the same bits; one pass over
    // the activations fewer forward, two fewer backward.
    void fuse_relu() { relu_ = true; }
    TensorView gamma() const { return parameters_->value(gamma_slot_); }
    TensorView beta() const { return parameters_->value(beta_slot_); }
    TensorView running_mean() const { return buffers_->value(mean_slot_); }
    TensorView running_variance() const { return buffers_->value(variance_slot_); }

private:
    int channels_;
    float momentum_ = kMomentum;
    bool relu_ = false;
    ParameterArena* parameters_ = nullptr;
    ParameterArena* buffers_ = nullptr;
    std::size_t gamma_slot_ = 0, beta_slot_ = 0, mean_slot_ = 0, variance_slot_ = 0;
    // Statistics of the last training forward, needed by backward, and its y = x * scale + shift per channel.
    std::vector<float> batch_mean_, batch_inverse_std_, batch_scale_, batch_shift_;
};

}  // namespace edgeqc
