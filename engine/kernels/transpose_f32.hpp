// In-register transposes of one vector-width block of floats, for the GEMM's packing and merges: written with
// intrinsics where xsimd 8 cannot express them (its zip_lo/zip_hi stay inside 128-bit lanes on AVX2 and AVX-512).
#pragma once

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cstddef>

namespace edgeqc {

// Unnamed, as gemm_f32.hpp's helpers: each per-arch source sees only the specializations its flags allow.
namespace {
namespace gemm_detail {

// VectorTranspose<Arch>::transpose(source, stride, rows, packed, group_stride) reads `rows` (at most kWidth) rows of
// kWidth floats, row i at source + i * stride, and writes them column by column: column p, its `rows` values and
// then zeros up to kWidth, as one whole vector at packed + p * group_stride, in increasing p. Where group_stride is
// below kWidth, column p's zeros land on column p + 1's place (which its own store then overwrites) and the last
// column's on whatever follows the block (pack_transposed() in gemm_f32.hpp keeps that inside its buffer).
// transpose_registers() leaves the columns in registers; load_first() and store_first() move a row's first `count`
// floats (the rest read as zeros). Specialised for every arch the build instantiates kernels for.
template <class Arch>
struct VectorTranspose;

// The transpose of a kWidth x kWidth block written once: Ops names the arch's register type, loads and stores, in-lane
// unpacks and shuffles, and how the last rounds gather 128-bit lanes across registers.
template <class Ops>
struct LaneTranspose {
    using Register = typename Ops::Register;
    static constexpr int kWidth = Ops::kWidth;
    static void transpose(const float* source, std::ptrdiff_t stride, int rows, float* packed,
                          std::ptrdiff_t group_stride) {
        Register columns[kWidth];
        transpose_registers(source, stride, rows, columns);
#pragma GCC unroll 16
        for (int p = 0; p < kWidth; ++p) Ops::store(packed + p * group_stride, columns[p]);
    }
    static void transpose_registers(const float* source, std::ptrdiff_t stride, int rows, Register (&columns)[kWidth]) {
        Register r[kWidth], t[kWidth];
#pragma GCC unroll 16
        for (int i = 0; i < kWidth; ++i) r[i] = i < rows ? Ops::load(source + i * stride) : Ops::zero();
        // Rows interleaved in pairs, then in fours: r[4i + j]'s 128-bit lane L then holds rows 4i ... 4i + 3 of
        // column 4L + j.
#pragma GCC unroll 8
        for (int i = 0; i < kWidth; i += 2) {
            t[i] = Ops::unpack_low(r[i], r[i + 1]);
            t[i + 1] = Ops::unpack_high(r[i], r[i + 1]);
        }
#pragma GCC unroll 4
        for (int i = 0; i < kWidth; i += 4) {
            r[i] = Ops::low_pairs(t[i], t[i + 2]);
            r[i + 1] = Ops::high_pairs(t[i], t[i + 2]);
            r[i + 2] = Ops::low_pairs(t[i + 1], t[i + 3]);
            r[i + 3] = Ops::high_pairs(t[i + 1], t[i + 3]);
        }
        Ops::gather_lanes(r, columns);
    }
    static Register load_first(const float* source, int count) { return Ops::load_first(source, count); }
    static void store_first(float* target, Register value, int count) { Ops::store_first(target, value, count); }
};

#if defined(__AVX512F__)
struct Avx512TransposeOps {
    using Register = __m512;
    static constexpr int kWidth = 16;
    // GCC 12's unmasked _mm512_unpack{lo,hi}_ps and _mm512_shuffle_f32x4 start from _mm512_undefined_ps(), which it
    // then reports as maybe uninitialized; with every lane selected the masked ones compile to the same instructions.
    static constexpr __mmask16 kAll = 0xFFFF;
    static __m512 load(const float* source) { return _mm512_loadu_ps(source); }
    static __m512 zero() { return _mm512_setzero_ps(); }
    static void store(float* target, __m512 value) { _mm512_storeu_ps(target, value); }
    static __mmask16 first(int count) { return static_cast<__mmask16>((1u << count) - 1); }
    static __m512 load_first(const float* source, int count) { return _mm512_maskz_loadu_ps(first(count), source); }
    static void store_first(float* target, __m512 value, int count) {
        _mm512_mask_storeu_ps(target, first(count), value);
    }
    static __m512 unpack_low(__m512 a, __m512 b) { return _mm512_maskz_unpacklo_ps(kAll, a, b); }
    static __m512 unpack_high(__m512 a, __m512 b) { return _mm512_maskz_unpackhi_ps(kAll, a, b); }
    static __m512 low_pairs(__m512 a, __m512 b) { return _mm512_shuffle_ps(a, b, 0x44); }
    static __m512 high_pairs(__m512 a, __m512 b) { return _mm512_shuffle_ps(a, b, 0xEE); }
    // Four lanes per register, in two rounds: 0x88 takes lanes 0 and 2 of each operand, 0xDD lanes 1 and 3.
    static void gather_lanes(__m512 (&r)[16], __m512 (&columns)[16]) {
        __m512 t[16];
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            t[j] = _mm512_maskz_shuffle_f32x4(kAll, r[j], r[4 + j], 0x88);      // columns j, 8 + j of rows 0-7
            t[4 + j] = _mm512_maskz_shuffle_f32x4(kAll, r[j], r[4 + j], 0xDD);  // columns 4 + j, 12 + j of rows 0-7
            t[8 + j] = _mm512_maskz_shuffle_f32x4(kAll, r[8 + j], r[12 + j], 0x88);
            t[12 + j] = _mm512_maskz_shuffle_f32x4(kAll, r[8 + j], r[12 + j], 0xDD);
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            columns[j] = _mm512_maskz_shuffle_f32x4(kAll, t[j], t[8 + j], 0x88);
            columns[8 + j] = _mm512_maskz_shuffle_f32x4(kAll, t[j], t[8 + j], 0xDD);
            columns[4 + j] = _mm512_maskz_shuffle_f32x4(kAll, t[4 + j], t[12 + j], 0x88);
            columns[12 + j] = _mm512_maskz_shuffle_f32x4(kAll, t[4 + j], t[12 + j], 0xDD);
        }
    }
};
template <>
struct VectorTranspose<xsimd::avx512bw> : LaneTranspose<Avx512TransposeOps> {};
#endif

#if defined(__AVX2__)
struct Avx2TransposeOps {
    using Register = __m256;
    static constexpr int kWidth = 8;
    static __m256 load(const float* source) { return _mm256_loadu_ps(source); }
    static __m256 zero() { return _mm256_setzero_ps(); }
    static void store(float* target, __m256 value) { _mm256_storeu_ps(target, value); }
    static __m256i first(int count) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(count), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static __m256 load_first(const float* source, int count) { return _mm256_maskload_ps(source, first(count)); }
    static void store_first(float* target, __m256 value, int count) {
        _mm256_maskstore_ps(target, first(count), value);
    }
    static __m256 unpack_low(__m256 a, __m256 b) { return _mm256_unpacklo_ps(a, b); }
    static __m256 unpack_high(__m256 a, __m256 b) { return _mm256_unpackhi_ps(a, b); }
    static __m256 low_pairs(__m256 a, __m256 b) { return _mm256_shuffle_ps(a, b, 0x44); }
    static __m256 high_pairs(__m256 a, __m256 b) { return _mm256_shuffle_ps(a, b, 0xEE); }
    // Two lanes per register: column j is lane 0 of r[j] and of r[4 + j], column 4 + j their lane 1.
    static void gather_lanes(__m256 (&r)[8], __m256 (&columns)[8]) {
#pragma GCC unroll 4
        for (int j = 0; j < 4; ++j) {
            columns[j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x20);
            columns[4 + j] = _mm256_permute2f128_ps(r[j], r[4 + j], 0x31);
        }
    }
};
template <>
struct VectorTranspose<xsimd::fma3<xsimd::avx2>> : LaneTranspose<Avx2TransposeOps> {};
#endif

// 4 x 4 blocks on the arches of 128-bit vectors, whose zips interleave whole registers (SSE2's unpacks, NEON's
// zip1/zip2): rows 0 and 2, 1 and 3, then the two results. Neither has masked loads or stores: a short row goes
// through a vector on the stack.
template <class Arch>
struct ZipTranspose {
    using Register = xsimd::batch<float, Arch>;
    static constexpr int kWidth = 4;
    static_assert(Register::size == kWidth, "128-bit vectors of floats");
    static void transpose(const float* source, std::ptrdiff_t stride, int rows, float* packed,
                          std::ptrdiff_t group_stride) {
        Register columns[kWidth];
        transpose_registers(source, stride, rows, columns);
#pragma GCC unroll 4
        for (int p = 0; p < kWidth; ++p) columns[p].store_unaligned(packed + p * group_stride);
    }
    static void transpose_registers(const float* source, std::ptrdiff_t stride, int rows, Register (&columns)[kWidth]) {
        Register r[kWidth];
#pragma GCC unroll 4
        for (int i = 0; i < kWidth; ++i)
            r[i] = i < rows ? Register::load_unaligned(source + i * stride) : Register(0.0f);
        const Register low02 = xsimd::zip_lo(r[0], r[2]), high02 = xsimd::zip_hi(r[0], r[2]);
        const Register low13 = xsimd::zip_lo(r[1], r[3]), high13 = xsimd::zip_hi(r[1], r[3]);
        columns[0] = xsimd::zip_lo(low02, low13);
        columns[1] = xsimd::zip_hi(low02, low13);
        columns[2] = xsimd::zip_lo(high02, high13);
        columns[3] = xsimd::zip_hi(high02, high13);
    }
    static Register load_first(const float* source, int count) {
        if (count == kWidth) return Register::load_unaligned(source);
        alignas(16) float row[kWidth] = {};
        std::copy_n(source, count, row);
        return Register::load_aligned(row);
    }
    static void store_first(float* target, Register value, int count) {
        if (count == kWidth) return value.store_unaligned(target);
        alignas(16) float row[kWidth];
        value.store_aligned(row);
        std::copy_n(row, count, target);
    }
};
#if defined(__x86_64__)
template <>
struct VectorTranspose<xsimd::sse2> : ZipTranspose<xsimd::sse2> {};
#elif defined(__aarch64__)
template <>
struct VectorTranspose<xsimd::neon64> : ZipTranspose<xsimd::neon64> {};
#endif

}  // namespace gemm_detail
}  // namespace

}  // namespace edgeqc
