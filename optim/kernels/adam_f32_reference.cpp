// Scalar Adam update: the fallback path and the test oracle of the SIMD ones (adam_f32.hpp).
#include "optim/kernels/adam_f32.hpp"

namespace edgeqc {

void adam_f32_reference(const AdamStepF32& step, std::ptrdiff_t n, float* parameters, const float* gradients, float* m,
                        float* v) {
    for (std::ptrdiff_t i = 0; i < n; ++i) adam_f32_element(step, parameters[i], gradients[i], m[i], v[i]);
}

}  // namespace edgeqc
