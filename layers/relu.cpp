// ReLU forward and backward.
#include "layers/relu.hpp"

#include <algorithm>

namespace edgeqc {

void Relu::forward(const Tensor& x, Tensor& y, Mode) {
    y.resize(x.shape());
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(x.size());
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = std::max(x[static_cast<std::size_t>(i)], 0.0f);
}

void Relu::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
    if (!dx) return;
    dx->resize(x.shape());
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(x.size());
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        const auto k = static_cast<std::size_t>(i);
        (*dx)[k] = x[k] > 0.0f ? dy[k] : 0.0f;
    }
}

}  // namespace edgeqc
