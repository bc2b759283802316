// NEON (AArch64, e.g. the Raspberry Pi 4B's Cortex-A72) instantiation of the packed GEMM.
#include "engine/kernels/gemm_f32.hpp"

template struct edgeqc::PackedGemmF32<xsimd::neon64>;
