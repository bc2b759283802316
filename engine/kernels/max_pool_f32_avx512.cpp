// AVX-512 (F, CD, DQ, BW, VL) instantiation of the 2x2 max pooling (see max_pool_f32.hpp).
#include "engine/kernels/max_pool_f32.hpp"

template struct edgeqc::SimdMaxPool2x2F32<xsimd::avx512bw>;
