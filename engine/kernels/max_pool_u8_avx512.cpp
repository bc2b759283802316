// AVX-512 (F, CD, DQ, BW, VL) instantiation of the int8 2x2 max pooling (see max_pool_u8.hpp).
#include "engine/kernels/max_pool_u8.hpp"

template struct edgeqc::SimdMaxPool2x2U8<xsimd::avx512bw>;
