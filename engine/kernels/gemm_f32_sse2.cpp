// SSE2 instantiation of the packed GEMM: the x86-64 baseline, for CPUs without AVX2 + FMA.
#include "engine/kernels/gemm_f32.hpp"

template struct edgeqc::PackedGemmF32<xsimd::sse2>;
