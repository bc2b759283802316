// AVX-512 (F, CD, DQ, BW, VL) instantiation of the Winograd tile transforms (see winograd_f32.hpp).
#include "engine/kernels/winograd_f32.hpp"

template struct edgeqc::WinogradRowsF32<xsimd::avx512bw>;
