// avx2 instantiation of the Adam update (see adam_f32.hpp).
#include "optim/kernels/adam_f32.hpp"

template struct edgeqc::SimdAdamF32<xsimd::fma3<xsimd::avx2>>;
