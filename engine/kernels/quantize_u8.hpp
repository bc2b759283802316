// Float activations quantized to 7-bit ones (engine/tensor.hpp) where they enter an int8 layer: one loop, which the
// scalar reference and each per-arch source compile with their own flags and the compiler vectorizes in each arch's
// own instructions (the same operations in the same order, so every arch gives the reference's bits). Written as
// vector-extension code instead, GCC 12 narrowed the 32-bit results to bytes lane by lane without AVX-512, slower
// than the plain loop. Arch is only a tag.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/kernels.hpp"
#include "engine/kernels/simd_arch.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

template <class Arch>
struct SimdQuantizeU8 {
    void operator()(const float* x, std::size_t count, float scale, int zero_point, std::uint8_t* q) const;
};

// Unnamed, as gemm_f32.hpp's helpers: each source keeps its own copy, compiled with its own flags.
namespace {

// x / scale, NaN to 0, clamped to the 7-bit range around the zero point, rounded to even (kRoundToEvenShifter), plus
// the zero point.
inline void quantize_values(const float* __restrict x, std::size_t count, float scale, int zero_point,
                            std::uint8_t* __restrict q) {
    const auto low = static_cast<float>(-zero_point);
    const auto high = static_cast<float>(kActivationMax - zero_point);
    for (std::size_t i = 0; i < count; ++i) {
        float steps = x[i] / scale;
        steps = steps == steps ? steps : 0.0f;  // NaN
        steps = steps < low ? low : steps;
        steps = steps > high ? high : steps;
        steps = (steps + kRoundToEvenShifter) - kRoundToEvenShifter;
        q[i] = static_cast<std::uint8_t>(static_cast<int>(steps) + zero_point);
    }
}

}  // namespace

// Defined outside the class so that it is not implicitly inline: only the per-arch sources instantiate it.
template <class Arch>
void SimdQuantizeU8<Arch>::operator()(const float* x, std::size_t count, float scale, int zero_point,
                                      std::uint8_t* q) const {
    quantize_values(x, count, scale, zero_point, q);
}

EDGEQC_EXTERN_SIMD_KERNEL(SimdQuantizeU8)

}  // namespace edgeqc
