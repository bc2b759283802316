// AVX-512 (F, CD, DQ, BW, VL) instantiation of the packed GEMM; built with those flags, run only where the CPU has them all.
#include "engine/kernels/gemm_f32.hpp"

template struct edgeqc::PackedGemmF32<xsimd::avx512bw>;
