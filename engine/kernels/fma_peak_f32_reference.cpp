// Scalar FMA peak probe: the same chains as the SIMD probes, one lane each, so its value is the one they must reach.
#include <cmath>

#include "engine/kernels.hpp"

namespace edgeqc {

FmaPeakResult fma_peak_f32_reference(long iterations, float start) {
    double sum = 0.0;
    for (int i = 0; i < kFmaPeakChains; ++i) {
        float chain = fma_peak_chain_start(start, i);
        for (long t = 0; t < iterations; ++t) chain = std::fma(chain, kFmaPeakMultiplier, kFmaPeakAddend);
        sum += chain;
    }
    return {sum / kFmaPeakChains, 2.0 * static_cast<double>(iterations) * kFmaPeakChains};
}

}  // namespace edgeqc
