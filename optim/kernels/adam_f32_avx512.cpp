// AVX-512 (F, CD, DQ, BW, VL) instantiation of the Adam update (see adam_f32.hpp).
// GCC 12's own _mm512_sqrt_ps passes _mm512_undefined_ps() as its unused merge source, which -Wmaybe-uninitialized
// reports inside the compiler's header; the pragma must precede the header's text to cover it.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "optim/kernels/adam_f32.hpp"

template struct edgeqc::SimdAdamF32<xsimd::avx512bw>;
