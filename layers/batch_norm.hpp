// Batch normalisation over the channel axis (PyTorch BatchNorm2d semantics: biased variance to normalise,
// unbiased variance in the running estimate). For inference the network folds it into the preceding
// convolution, so this layer's Infer path is only used before folding (validation during training).
#pragma once

#include "engine/model_passes.hpp"
#include "layers/layer.hpp"

#include <cstdint>
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
    // Takes over, after the fused ReLU, a 2x2 stride-2 max pool (the Network's call): forward_pooled writes the
    // pooled relu(y) without ever writing y, and backward_pooled takes the gradient of the pooled output, routing it
    // to each window's winner as MaxPool::backward does. Two passes over the activations fewer each way, and y (the
    // size of x) is not kept for backward. The same operations as the three layers', plane by plane in cache, so the
    // same bits.
    void fuse_pool() { pooled_ = true; }
    // x: N x C x H x W -> pooled: N x C x H/2 x W/2 (floor), the max pool of relu(batch norm of x).
    void forward_pooled(const Tensor& x, Tensor& pooled, Mode mode);
    // Given x and pooled of the last training forward_pooled and dpooled = dLoss/dpooled, as backward().
    void backward_pooled(const Tensor& x, const Tensor& pooled, const Tensor& dpooled, Tensor* dx);
    TensorView gamma() const { return parameters_->value(gamma_slot_); }
    TensorView beta() const { return parameters_->value(beta_slot_); }
    TensorView running_mean() const { return buffers_->value(mean_slot_); }
    TensorView running_variance() const { return buffers_->value(variance_slot_); }

private:
    // y = x * scale + shift for channel c of x: the batch's statistics (training, which records them and updates the
    // running ones) or the running ones.
    struct ChannelTransform {
        float scale, shift;
    };
    // dx of one channel from its sums of dy and dy * (x - mean) (which it also adds to dgamma and dbeta).
    struct ChannelGradient {
        float mean, inverse_std, scale, mean_dy, mean_dy_xhat;
        // dx = gamma * inv_std / M * (M * dy - sum(dy) - xhat * sum(dy * xhat)) at one input.
        float input_gradient(float dy, float x) const {
            const float xhat = (x - mean) * inverse_std;
            return scale * (dy - mean_dy - xhat * mean_dy_xhat);
        }
    };
    void start_forward(Mode mode);
    ChannelTransform channel_transform(const Tensor& x, int c, Mode mode);
    ChannelGradient channel_gradient(int c, double sum_dy, double sum_dy_centred, double count);

    int channels_;
    float momentum_ = kMomentum;
    bool relu_ = false;
    bool pooled_ = false;
    std::vector<std::uint32_t> winners_;  // of the pool taken over: per pooled output, its input within the plane
    ParameterArena* parameters_ = nullptr;
    ParameterArena* buffers_ = nullptr;
    std::size_t gamma_slot_ = 0, beta_slot_ = 0, mean_slot_ = 0, variance_slot_ = 0;
    // Statistics of the last training forward, needed by backward, and its y = x * scale + shift per channel.
    std::vector<float> batch_mean_, batch_inverse_std_, batch_scale_, batch_shift_;
};

}  // namespace edgeqc
