// neon64 instantiation of the quantization of float activations to 7-bit ones (see quantize_u8.hpp).
#include "engine/kernels/quantize_u8.hpp"

template struct edgeqc::SimdQuantizeU8<xsimd::neon64>;
