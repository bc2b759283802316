// The SIMD architectures this build instantiates its generic kernels for, named once: the per-arch sources
// instantiate them and everyone else declares them extern, so no other file compiles a body with the wrong flags.
#pragma once

#include <xsimd/xsimd.hpp>

// EDGEQC_EXTERN_SIMD_KERNEL declares a generic float kernel (an xsimd body) extern for every arch this build has.
// EDGEQC_FOR_EACH_INT_SIMD_ARCH names the arches the integer GEMM has intrinsic tiles for: an AVX-512 CPU runs the
// integer GEMM on its VNNI tile (gemm_int_avx512_vnni.cpp) or, without VNNI, on the AVX2 one.
#if defined(__x86_64__)
#define EDGEQC_FOR_EACH_INT_SIMD_ARCH(M) M(xsimd::fma3<xsimd::avx2>) M(xsimd::sse2)
#define EDGEQC_EXTERN_SIMD_KERNEL(Functor)                    \
    extern template struct Functor<xsimd::avx512bw>;          \
    extern template struct Functor<xsimd::fma3<xsimd::avx2>>; \
    extern template struct Functor<xsimd::sse2>;
#elif defined(__aarch64__)
#define EDGEQC_FOR_EACH_INT_SIMD_ARCH(M) M(xsimd::neon64)
#define EDGEQC_EXTERN_SIMD_KERNEL(Functor) extern template struct Functor<xsimd::neon64>;
#else
#define EDGEQC_FOR_EACH_INT_SIMD_ARCH(M)
#define EDGEQC_EXTERN_SIMD_KERNEL(Functor)
#endif

