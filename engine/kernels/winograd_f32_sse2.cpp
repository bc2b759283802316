// sse2 instantiation of the Winograd tile transforms (see winograd_f32.hpp).
#include "engine/kernels/winograd_f32.hpp"

template struct edgeqc::WinogradRowsF32<xsimd::sse2>;
