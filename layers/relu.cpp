// ReLU forward and backward.
#include "layers/relu.hpp"

#include <algorithm>

namespace edgeqc {

// Plain pointers and branch-free selects, so that the compiler vectorises both loops (signs are random: a branch
// per element mispredicts half the time).
void Relu::forward(const Tensor& x, Tensor& y, Mode) {
    y.resize(x.shape());
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(x.size());
    const float* in = x.data();
    float* out = y.data();
#pragma omp parallel for simd schedule(static)
    for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = in[i] < 0.0f ? 0.0f : in[i];  // NaN passes through, as in PyTorch
}

void Relu::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
    if (!dx) return;
    dx->resize(x.shape());
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(x.size());
    const float* in = x.data();
    const float* upstream = dy.data();
    float* out = dx->data();
#pragma omp parallel for simd schedule(static)
    for (std::ptrdiff_t i = 0; i < n; ++i) out[i] = in[i] > 0.0f ? upstream[i] : 0.0f;
}

}  // namespace edgeqc
