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
    for (std::ptrdiff_t i = 0; i < n; ++i) {
        // Loaded unconditionally: a load under the condition is one the compiler may not hoist, and it then keeps a
        // scalar loop with a branch (measured: 11 % of a training step on AVX-512, now a few vector selects).
        const float gradient = upstream[i];
        out[i] = in[i] > 0.0f ? gradient : 0.0f;
    }
}

}  // namespace edgeqc
