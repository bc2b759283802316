// The machine's FMA peak probe, written once against xsimd::batch<float, Arch>: independent multiply-add chains
// with no memory traffic, so a benchmark can time the best a kernel of this arch could reach. It computes a
// value with a closed form (see fma_peak_f32_reference.cpp) so a test can check that the work really happened.
#pragma once

#include <xsimd/xsimd.hpp>

#include "engine/kernels.hpp"
#include "engine/kernels/simd_arch.hpp"

namespace edgeqc {

template <class Arch>
struct FmaChainsF32 {
    FmaPeakResult operator()(long iterations, float start) const;
};

// Defined outside the class so that it is not implicitly inline: only the per-arch sources instantiate it.
template <class Arch>
FmaPeakResult FmaChainsF32<Arch>::operator()(long iterations, float start) const {
    using Batch = xsimd::batch<float, Arch>;
    // Distinct starts keep the compiler from merging identical chains; kChains covers FMA latency x FMA units
    // (4-5 cycles x 2 units on current cores).
    constexpr int kChains = kFmaPeakChains;
    const Batch multiplier(kFmaPeakMultiplier), addend(kFmaPeakAddend);
    Batch chains[kChains];
#pragma GCC unroll 16
    for (int i = 0; i < kChains; ++i) chains[i] = Batch(fma_peak_chain_start(start, i));
    for (long t = 0; t < iterations; ++t) {
#pragma GCC unroll 16
        for (int i = 0; i < kChains; ++i) chains[i] = xsimd::fma(chains[i], multiplier, addend);
    }
    Batch sum(0.0f);
    for (int i = 0; i < kChains; ++i) sum += chains[i];
    return {static_cast<double>(xsimd::hadd(sum)) / (kChains * Batch::size),
            2.0 * static_cast<double>(iterations) * kChains * Batch::size};
}

EDGEQC_EXTERN_SIMD_KERNEL(FmaChainsF32)

}  // namespace edgeqc
