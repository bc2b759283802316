// Dropout forward and backward; the mask is drawn serially so results do not depend on the thread count.
#include "layers/dropout.hpp"

#include "engine/error.hpp"

namespace edgeqc {

Dropout::Dropout(float probability) : probability_(probability) {
    if (!(probability >= 0.0f && probability < 1.0f)) throw Error("dropout probability must be in [0, 1)");
}

void Dropout::initialize(InitScheme, Rng& rng) { reseed(rng.next_u64()); }

void Dropout::forward(const Tensor& x, Tensor& y, Mode mode) {
    y.resize(x.shape());
    if (mode == Mode::Infer || probability_ == 0.0f) {
        mask_.assign(x.size(), 1.0f);
        std::copy(x.data(), x.data() + x.size(), y.data());
        return;
    }
    const float keep_scale = 1.0f / (1.0f - probability_);
    mask_.resize(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        mask_[i] = rng_.uniform() < probability_ ? 0.0f : keep_scale;
        y[i] = x[i] * mask_[i];
    }
}

void Dropout::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
    if (!dx) return;
    dx->resize(x.shape());
    for (std::size_t i = 0; i < x.size(); ++i) (*dx)[i] = dy[i] * mask_[i];
}

}  // namespace edgeqc
