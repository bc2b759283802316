// AVX2 + FMA instantiation of the packed GEMM; built with -mavx2 -mfma, run only when the CPU reports both.
#include "engine/kernels/gemm_f32.hpp"

template struct edgeqc::PackedGemmF32<xsimd::fma3<xsimd::avx2>>;
