// neon64 instantiation of the FMA peak probe (see fma_peak_f32.hpp).
#include "engine/kernels/fma_peak_f32.hpp"

template struct edgeqc::FmaChainsF32<xsimd::neon64>;
