// Batch normalisation forward (training and inference) and backward, alone or with the ReLU and the 2x2 max pool
// after it; per channel, sums in ordered float lanes, blocks added in double (layers/ordered_sums.hpp).
#include "layers/batch_norm.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

#include "engine/error.hpp"
#include "engine/kernels.hpp"
#include "engine/tensor.hpp"
#include "layers/ordered_sums.hpp"

namespace edgeqc {

namespace {
// Elements per (image, channel) plane: H*W for 4-D input, 1 for N x C.
std::size_t plane_size(const Shape& s) { return s.rank() == 4 ? static_cast<std::size_t>(s[2]) * s[3] : 1; }
}  // namespace

BatchNorm::BatchNorm(int channels) : channels_(channels) {
    if (channels < 1) throw Error("batch norm needs at least one channel");
}

Shape BatchNorm::output_shape(const Shape& input) const {
    if ((input.rank() != 4 && input.rank() != 2) || input[1] != channels_)
        throw Error("batch norm expects N x " + std::to_string(channels_) + " [x H x W] input, got " + input.str());
    return input;
}

void BatchNorm::declare(ParameterArena& parameters, ParameterArena& buffers, const std::string& prefix) {
    parameters_ = &parameters;
    buffers_ = &buffers;
    gamma_slot_ = parameters.reserve(prefix + "gamma", {channels_});
    beta_slot_ = parameters.reserve(prefix + "beta", {channels_});
    mean_slot_ = buffers.reserve(prefix + "running_mean", {channels_});
    variance_slot_ = buffers.reserve(prefix + "running_var", {channels_});
}

void BatchNorm::initialize(InitScheme, Rng&) {
    gamma().fill(1.0f);
    beta().fill(0.0f);
    running_mean().fill(0.0f);
    running_variance().fill(1.0f);
}

namespace {

// The sums over a channel's images of the gradient g(k) and of g(k) * (x(k) - mean), k = 0 ... terms - 1 in each,
// where image(n) gives image n's pair of functions g and x.
template <class ImageTerms>
std::array<double, 2> gradient_sums(int batch, std::size_t terms, float mean, const ImageTerms& image) {
    std::array<double, 2> sums{};
    for (int n = 0; n < batch; ++n) {
        // Not a structured binding: Debian's clang 14 cannot capture one in a lambda (C++20 allows it, clang 16 does).
        const auto image_terms = image(n);
        const auto& gradient = image_terms.first;
        const auto& input = image_terms.second;
        const auto [plain, centred] =
            ordered_sums(terms, gradient, [&](std::size_t k) { return gradient(k) * (input(k) - mean); });
        sums[0] += plain;
        sums[1] += centred;
    }
    return sums;
}

// dx of one plane from its gradient g(i) and its input x.
template <class ChannelGradient, class Gradient>
void write_input_gradient(const ChannelGradient& k, const Gradient& gradient, const float* x, std::size_t plane,
                          float* dx) {
#pragma omp simd
    for (std::size_t i = 0; i < plane; ++i) dx[i] = k.input_gradient(gradient(i), x[i]);
}

// y before the fused ReLU, one expression for forward and for backward's mask, so that both round alike.
inline float normalised(float x, float scale, float shift) { return x * scale + shift; }

}  // namespace

void BatchNorm::start_forward(Mode mode) {
    if (mode != Mode::Train) return;
    for (std::vector<float>* statistic : {&batch_mean_, &batch_inverse_std_, &batch_scale_, &batch_shift_})
        statistic->assign(static_cast<std::size_t>(channels_), 0.0f);
}

BatchNorm::ChannelTransform BatchNorm::channel_transform(const Tensor& x, int c, Mode mode) {
    const int batch = x.shape()[0];
    const std::size_t plane = plane_size(x.shape());
    float mean, inverse_std;
    if (mode == Mode::Train) {
        double sum = 0.0, sum_squares = 0.0;
        for (int n = 0; n < batch; ++n) {
            const float* in = x.data() + (static_cast<std::size_t>(n) * channels_ + c) * plane;
            sum += ordered_sums(plane, [in](std::size_t i) { return in[i]; })[0];
        }
        const double count = static_cast<double>(batch) * static_cast<double>(plane);
        const double batch_mean = sum / count;
        // Two passes: the centred sum of squares stays accurate where E[x^2] - E[x]^2 would cancel.
        const auto centre = static_cast<float>(batch_mean);
        for (int n = 0; n < batch; ++n) {
            const float* in = x.data() + (static_cast<std::size_t>(n) * channels_ + c) * plane;
            sum_squares +=
                ordered_sums(plane, [in, centre](std::size_t i) { return (in[i] - centre) * (in[i] - centre); })[0];
        }
        const double variance = sum_squares / count;
        mean = static_cast<float>(batch_mean);
        inverse_std = static_cast<float>(1.0 / std::sqrt(variance + kEpsilon));
        batch_mean_[static_cast<std::size_t>(c)] = mean;
        batch_inverse_std_[static_cast<std::size_t>(c)] = inverse_std;
        const double unbiased = count > 1 ? sum_squares / (count - 1) : variance;
        float& running_m = running_mean()[static_cast<std::size_t>(c)];
        float& running_v = running_variance()[static_cast<std::size_t>(c)];
        running_m = (1.0f - momentum_) * running_m + momentum_ * mean;
        running_v = (1.0f - momentum_) * running_v + momentum_ * static_cast<float>(unbiased);
    } else {
        mean = running_mean()[static_cast<std::size_t>(c)];
        inverse_std = 1.0f / std::sqrt(running_variance()[static_cast<std::size_t>(c)] + kEpsilon);
    }
    const float scale = gamma()[static_cast<std::size_t>(c)] * inverse_std;
    const float shift = beta()[static_cast<std::size_t>(c)] - mean * scale;
    if (mode == Mode::Train) {
        batch_scale_[static_cast<std::size_t>(c)] = scale;
        batch_shift_[static_cast<std::size_t>(c)] = shift;
    }
    return {scale, shift};
}

void BatchNorm::forward(const Tensor& x, Tensor& y, Mode mode) {
    y.resize(output_shape(x.shape()));
    const int batch = x.shape()[0];
    const std::size_t plane = plane_size(x.shape());
    start_forward(mode);
#pragma omp parallel for schedule(static)
    for (int c = 0; c < channels_; ++c) {
        const ChannelTransform transform = channel_transform(x, c, mode);
        const float scale = transform.scale, shift = transform.shift;
        // A fused ReLU raises values below 0 to 0 (as Relu::forward: NaN passes); without it nothing is below -inf.
        const float floor = relu_ ? 0.0f : -std::numeric_limits<float>::infinity();
        for (int n = 0; n < batch; ++n) {
            const std::size_t offset = (static_cast<std::size_t>(n) * channels_ + c) * plane;
            const float* in = x.data() + offset;
            float* out = y.data() + offset;
#pragma omp simd
            for (std::size_t i = 0; i < plane; ++i) {
                const float value = normalised(in[i], scale, shift);
                out[i] = value < floor ? floor : value;
            }
        }
    }
}

void BatchNorm::forward_pooled(const Tensor& x, Tensor& pooled, Mode mode) {
    if (!pooled_) throw std::logic_error("BatchNorm::forward_pooled needs fuse_pool()");
    const Shape& s = output_shape(x.shape());
    if (s.rank() != 4 || s[2] < 2 || s[3] < 2)
        throw Error("max pool: input " + s.str() + " is smaller than its 2x2 window");
    const int batch = s[0], height = s[2], width = s[3], out_height = height / 2, out_width = width / 2;
    pooled.resize({batch, channels_, out_height, out_width});
    const std::size_t plane = static_cast<std::size_t>(height) * width;
    const std::size_t out_plane = static_cast<std::size_t>(out_height) * out_width;
    winners_.resize(mode == Mode::Train ? pooled.size() : 0);  // only backward needs them
    start_forward(mode);
    const KernelTable& table = kernels();
#pragma omp parallel
    {
        // relu(y) of one plane at a time, in cache for the pool that reads it at once: as the three layers compute
        // it, the same bits, but never written out whole.
        AlignedFloats rows(plane);
#pragma omp for schedule(static)
        for (int c = 0; c < channels_; ++c) {
            const ChannelTransform transform = channel_transform(x, c, mode);
            const float scale = transform.scale, shift = transform.shift;
            for (int n = 0; n < batch; ++n) {
                const float* in = x.data() + (static_cast<std::size_t>(n) * channels_ + c) * plane;
#pragma omp simd
                for (std::size_t i = 0; i < plane; ++i) {
                    const float value = normalised(in[i], scale, shift);
                    rows[i] = value < 0.0f ? 0.0f : value;
                }
                const std::size_t out_offset = (static_cast<std::size_t>(n) * channels_ + c) * out_plane;
                table.max_pool_2x2_f32(rows.data(), 1, height, width, pooled.data() + out_offset,
                                       winners_.empty() ? nullptr : winners_.data() + out_offset);
            }
        }
    }
}

BatchNorm::ChannelGradient BatchNorm::channel_gradient(int c, double sum_dy, double sum_dy_centred, double count) {
    const double sum_dy_xhat = sum_dy_centred * batch_inverse_std_[static_cast<std::size_t>(c)];
    parameters_->gradient(gamma_slot_)[static_cast<std::size_t>(c)] += static_cast<float>(sum_dy_xhat);
    parameters_->gradient(beta_slot_)[static_cast<std::size_t>(c)] += static_cast<float>(sum_dy);
    // dx = gamma * inv_std / M * (M * dy - sum(dy) - xhat * sum(dy * xhat))
    return {batch_mean_[static_cast<std::size_t>(c)], batch_inverse_std_[static_cast<std::size_t>(c)],
            gamma()[static_cast<std::size_t>(c)] * batch_inverse_std_[static_cast<std::size_t>(c)],
            static_cast<float>(sum_dy / count), static_cast<float>(sum_dy_xhat / count)};
}

void BatchNorm::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
    const int batch = x.shape()[0];
    const std::size_t plane = plane_size(x.shape());
    const double count = static_cast<double>(batch) * static_cast<double>(plane);
    if (dx) dx->resize(x.shape());
#pragma omp parallel for schedule(static)
    for (int c = 0; c < channels_; ++c) {
        const float mean = batch_mean_[static_cast<std::size_t>(c)];
        const float scale_y = batch_scale_[static_cast<std::size_t>(c)];
        const float shift_y = batch_shift_[static_cast<std::size_t>(c)];
        // The gradient of the batch norm's output: dy, or with a fused ReLU dy where the output is above 0 (as
        // Relu::backward computes it, from its input: the same mask), that output recomputed from x as forward did.
        const auto gradient_at = [&](std::size_t offset) {
            const float* upstream = dy.data() + offset;
            const float* in = x.data() + offset;
            const bool relu = relu_;
            // Both loaded unconditionally: a load under the condition keeps the compiler to scalar code.
            return [upstream, in, scale_y, shift_y, relu](std::size_t i) {
                const float gradient = upstream[i];
                const bool passes = (normalised(in[i], scale_y, shift_y) > 0.0f) | !relu;
                return passes ? gradient : 0.0f;
            };
        };
        const auto [sum_dy, sum_dy_centred] = gradient_sums(batch, plane, mean, [&](int n) {
            const std::size_t offset = (static_cast<std::size_t>(n) * channels_ + c) * plane;
            const float* in = x.data() + offset;
            return std::pair(gradient_at(offset), [in](std::size_t i) { return in[i]; });
        });
        const ChannelGradient k = channel_gradient(c, sum_dy, sum_dy_centred, count);
        if (!dx) continue;
        for (int n = 0; n < batch; ++n) {
            const std::size_t offset = (static_cast<std::size_t>(n) * channels_ + c) * plane;
            write_input_gradient(k, gradient_at(offset), x.data() + offset, plane, dx->data() + offset);
        }
    }
}

void BatchNorm::backward_pooled(const Tensor& x, const Tensor& pooled, const Tensor& dpooled, Tensor* dx) {
    if (winners_.size() != dpooled.size() || pooled.size() != dpooled.size())
        throw std::logic_error("BatchNorm::backward_pooled needs the winners of a preceding training-mode forward");
    const int batch = x.shape()[0];
    const std::size_t plane = plane_size(x.shape());
    const std::size_t out_plane = static_cast<std::size_t>(pooled.shape()[2]) * pooled.shape()[3];
    const double count = static_cast<double>(batch) * static_cast<double>(plane);
    if (dx) dx->resize(x.shape());
#pragma omp parallel
    {
        // The gradient of relu(y) over one plane, as the pool's and the ReLU's backward would have written it: the
        // pooled gradient at each window's winner where the pooled output (relu(y) of the winner) is above 0, zero
        // elsewhere. In cache, and read by the same loops as backward(), in the same order: the same bits.
        AlignedFloats gradient(plane);
        const auto expand = [&](int n, int c) {
            const std::size_t out_offset = (static_cast<std::size_t>(n) * channels_ + c) * out_plane;
            const float* upstream = dpooled.data() + out_offset;
            const float* out = pooled.data() + out_offset;
            const std::uint32_t* winner = winners_.data() + out_offset;
            std::fill(gradient.begin(), gradient.end(), 0.0f);
            for (std::size_t k = 0; k < out_plane; ++k)
                if (out[k] > 0.0f) gradient[winner[k]] = upstream[k];
            return [g = gradient.data()](std::size_t i) { return g[i]; };
        };
#pragma omp for schedule(static)
        for (int c = 0; c < channels_; ++c) {
            const float mean = batch_mean_[static_cast<std::size_t>(c)];
            const auto [sum_dy, sum_dy_centred] = gradient_sums(batch, plane, mean, [&](int n) {
                const float* in = x.data() + (static_cast<std::size_t>(n) * channels_ + c) * plane;
                return std::pair(expand(n, c), [in](std::size_t i) { return in[i]; });
            });
            const ChannelGradient k = channel_gradient(c, sum_dy, sum_dy_centred, count);
            if (!dx) continue;
            for (int n = 0; n < batch; ++n) {
                const std::size_t offset = (static_cast<std::size_t>(n) * channels_ + c) * plane;
                write_input_gradient(k, expand(n, c), x.data() + offset, plane, dx->data() + offset);
            }
        }
    }
}

}  // namespace edgeqc
