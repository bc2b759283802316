// AVX-512 (F, CD, DQ, BW, VL) instantiation of the quantization to 7-bit activations (see quantize_u8.hpp).
#include "engine/kernels/quantize_u8.hpp"

template struct edgeqc::SimdQuantizeU8<xsimd::avx512bw>;
