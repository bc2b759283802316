// The Adam (AdamW) update as one flat loop over the whole parameter arena, written once against
// xsimd::batch<float, Arch>; the step-dependent scalars are computed by the optimizer (AdamStepF32).
#pragma once

#include <xsimd/xsimd.hpp>

#include <cmath>
#include <cstddef>

#include "engine/kernels/simd_arch.hpp"
#include "optim/training_kernels.hpp"

namespace edgeqc {

// m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2; p <- p * keep - step_size * m / (sqrt(v) / root_correction2 + eps)
inline void adam_f32_element(const AdamStepF32& step, float& parameter, float gradient, float& m, float& v) {
    m = step.beta1 * m + (1.0f - step.beta1) * gradient;
    v = step.beta2 * v + (1.0f - step.beta2) * gradient * gradient;
    parameter = parameter * step.keep - step.step_size * m / (std::sqrt(v) / step.root_correction2 + step.epsilon);
}

template <class Arch>
struct SimdAdamF32 {
    void operator()(const AdamStepF32& step, std::ptrdiff_t n, float* parameters, const float* gradients, float* m,
                    float* v) const;
};

// Defined outside the class so that it is not implicitly inline: only the per-arch sources instantiate it.
template <class Arch>
void SimdAdamF32<Arch>::operator()(const AdamStepF32& step, std::ptrdiff_t n, float* parameters,
                                   const float* gradients, float* m, float* v) const {
    using Batch = xsimd::batch<float, Arch>;
    constexpr std::ptrdiff_t kWidth = static_cast<std::ptrdiff_t>(Batch::size);
    const std::ptrdiff_t vectors = n / kWidth;
    const Batch beta1(step.beta1), beta2(step.beta2), rest1(1.0f - step.beta1), rest2(1.0f - step.beta2);
    const Batch epsilon(step.epsilon), step_size(step.step_size), keep(step.keep);
    const Batch inverse_root_correction2(1.0f / step.root_correction2);
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t block = 0; block < vectors; ++block) {
        const std::ptrdiff_t i = block * kWidth;
        const Batch g = Batch::load_unaligned(gradients + i);
        const Batch first = xsimd::fma(beta1, Batch::load_unaligned(m + i), rest1 * g);
        const Batch second = xsimd::fma(beta2, Batch::load_unaligned(v + i), rest2 * g * g);
        const Batch denominator = xsimd::fma(xsimd::sqrt(second), inverse_root_correction2, epsilon);
        const Batch updated = Batch::load_unaligned(parameters + i) * keep - step_size * first / denominator;
        first.store_unaligned(m + i);
        second.store_unaligned(v + i);
        updated.store_unaligned(parameters + i);
    }
    for (std::ptrdiff_t i = vectors * kWidth; i < n; ++i) adam_f32_element(step, parameters[i], gradients[i], m[i], v[i]);
}

EDGEQC_EXTERN_SIMD_KERNEL(SimdAdamF32)

}  // namespace edgeqc
