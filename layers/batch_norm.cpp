// Batch normalisation forward (training and inference) and backward; sums run in double per channel.
#include "layers/batch_norm.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "engine/error.hpp"

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

// Sums of term(0) ... term(n - 1), one per term function, each in a fixed order whatever vector width the compiler
// picks, so a model trains the same on every machine: 8 interleaved float lanes (one AVX2 register, two SSE/NEON
// ones) over blocks of 1024 terms, the lanes added in a fixed order and the blocks in double. Accurate, and
// vectorised, where one double running sum is bound by add latency. Several sums in one pass read shared operands
// once.
template <class... Terms>
std::array<double, sizeof...(Terms)> ordered_sums(std::size_t n, const Terms&... terms) {
    constexpr std::size_t kSums = sizeof...(Terms), kLanes = 8, kBlock = 1024;
    std::array<double, kSums> totals{};
    for (std::size_t start = 0; start < n; start += kBlock) {
        const std::size_t end = std::min(n, start + kBlock);
        float lanes[kSums][kLanes] = {};
        std::size_t i = start;
        for (; i + kLanes <= end; i += kLanes) {
#pragma omp simd
            for (std::size_t lane = 0; lane < kLanes; ++lane) {
                const float values[kSums] = {terms(i + lane)...};
                for (std::size_t sum = 0; sum < kSums; ++sum) lanes[sum][lane] += values[sum];
            }
        }
        std::array<float, kSums> blocks{};
        for (std::size_t sum = 0; sum < kSums; ++sum)
            for (const float lane : lanes[sum]) blocks[sum] += lane;
        for (; i < end; ++i) {
            const float values[kSums] = {terms(i)...};
            for (std::size_t sum = 0; sum < kSums; ++sum) blocks[sum] += values[sum];
        }
        for (std::size_t sum = 0; sum < kSums; ++sum) totals[sum] += blocks[sum];
    }
    return totals;
}

// y before the fused ReLU, one expression for forward and for backward's mask, so that both round alike.
inline float normalised(float x, float scale, float shift) { return x * scale + shift; }

}  // namespace

void BatchNorm::forward(const Tensor& x, Tensor& y, Mode mode) {
    y.resize(output_shape(x.shape()));
    const int batch = x.shape()[0];
    const std::size_t plane = plane_size(x.shape());
    const float* g = gamma().data;
    const float* b = beta().data;
    if (mode == Mode::Train) {
        batch_mean_.assign(static_cast<std::size_t>(channels_), 0.0f);
        batch_inverse_std_.assign(static_cast<std::size_t>(channels_), 0.0f);
        batch_scale_.assign(static_cast<std::size_t>(channels_), 0.0f);
        batch_shift_.assign(static_cast<std::size_t>(channels_), 0.0f);
    }
#pragma omp parallel for schedule(static)
    for (int c = 0; c < channels_; ++c) {
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
        const float scale = g[c] * inverse_std;
        const float shift = b[c] - mean * scale;
        if (mode == Mode::Train) {
            batch_scale_[static_cast<std::size_t>(c)] = scale;
            batch_shift_[static_cast<std::size_t>(c)] = shift;
        }
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

void BatchNorm::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
    const int batch = x.shape()[0];
    const std::size_t plane = plane_size(x.shape());
    const double count = static_cast<double>(batch) * static_cast<double>(plane);
    float* dgamma = parameters_->gradient(gamma_slot_).data;
    float* dbeta = parameters_->gradient(beta_slot_).data;
    const float* g = gamma().data;
    if (dx) dx->resize(x.shape());
#pragma omp parallel for schedule(static)
    for (int c = 0; c < channels_; ++c) {
        const float mean = batch_mean_[static_cast<std::size_t>(c)];
        const float inverse_std = batch_inverse_std_[static_cast<std::size_t>(c)];
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
        double sum_dy = 0.0, sum_dy_centred = 0.0;
        for (int n = 0; n < batch; ++n) {
            const std::size_t offset = (static_cast<std::size_t>(n) * channels_ + c) * plane;
            const auto upstream = gradient_at(offset);
            const float* in = x.data() + offset;
            const auto [plain, centred] = ordered_sums(
                plane, upstream, [upstream, in, mean](std::size_t i) { return upstream(i) * (in[i] - mean); });
            sum_dy += plain;
            sum_dy_centred += centred;
        }
        const double sum_dy_xhat = sum_dy_centred * inverse_std;
        dgamma[c] += static_cast<float>(sum_dy_xhat);
        dbeta[c] += static_cast<float>(sum_dy);
        if (!dx) continue;
        // dx = gamma * inv_std / M * (M * dy - sum(dy) - xhat * sum(dy * xhat))
        const float mean_dy = static_cast<float>(sum_dy / count);
        const float mean_dy_xhat = static_cast<float>(sum_dy_xhat / count);
        const float scale = g[c] * inverse_std;
        for (int n = 0; n < batch; ++n) {
            const std::size_t offset = (static_cast<std::size_t>(n) * channels_ + c) * plane;
            const float* in = x.data() + offset;
            const auto upstream = gradient_at(offset);
            float* out = dx->data() + offset;
#pragma omp simd
            for (std::size_t i = 0; i < plane; ++i) {
                const float xhat = (in[i] - mean) * inverse_std;
                out[i] = scale * (upstream(i) - mean_dy - xhat * mean_dy_xhat);
            }
        }
    }
}

}  // namespace edgeqc
