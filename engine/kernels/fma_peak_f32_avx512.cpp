// AVX-512 (F, CD, DQ, BW, VL) instantiation of the FMA peak probe (see fma_peak_f32.hpp).
#include "engine/kernels/fma_peak_f32.hpp"

template struct edgeqc::FmaChainsF32<xsimd::avx512bw>;
