// AVX2 tiles of the integer GEMMs. s8: vpmaddubsw multiplies the 7-bit activations (unsigned) by the s8 weights
// and adds pairs into int16, which cannot saturate as 2 x 127 x 127 < 32767 (with 8-bit activations it could:
// 255 x 127 x 2 overflows); vpmaddwd by ones adds the pairs into int32. s16: vpmaddwd multiplies and adds pairs
// straight into int32. Built with -mavx2 -mfma, run only where the CPU has AVX2.
#include <immintrin.h>

#include "engine/kernels/gemm_int.hpp"

namespace edgeqc {

namespace {

__m256i broadcast_group(const void* group) {
    return _mm256_set1_epi32(int_gemm_detail::group_bits(group));
}

void store_rows(const __m256i (*acc)[2], int rows, std::int32_t* out) {
    for (int i = 0; i < rows; ++i) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(out + i * 16), acc[i][0]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(out + i * 16 + 8), acc[i][1]);
    }
}

}  // namespace

// 4 rows x 16 columns: 8 accumulators, 2 B vectors, a broadcast weight group, the ones and a product in 16 registers.
template <>
struct IntTile<S8Operands, xsimd::fma3<xsimd::avx2>> {
    using A = S8Operands::A;
    using B = S8Operands::B;
    static constexpr int kRows = 4, kColumns = 16;

    static void sums(int groups, const A* a, const B* b, std::int32_t* out) {
        __m256i acc[kRows][2] = {};
        for (int g = 0; g < groups; ++g, a += kRows * 4, b += kColumns * 4) {
            const __m256i columns[2] = {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b)),
                                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32))};
            accumulate<2>(acc, columns, a);
        }
        store_rows(acc, kRows, out);
    }
    // A 3x3 convolution's B read where it lies, from its input four channels innermost (gemm_int.hpp): one tap's four
    // channels at 8 positions are 32 consecutive bytes, a vector. On a Zen 5 with this table: conv5 of the reference
    // network 0.32 -> 0.22 ms, conv3 4 % slower (640 positions computed for its 600 outputs), the network the same.
    template <int kVectors>
    static void sums_from_planes(int channel_groups, const A* a, const B* const* vectors, std::ptrdiff_t group_stride,
                                 const std::ptrdiff_t* taps, std::int32_t* out) {
        __m256i acc[kRows][2] = {};
        for (int c = 0; c < channel_groups; ++c)
            for (int t = 0; t < 9; ++t, a += kRows * 4) {
                __m256i columns[kVectors];
                for (int v = 0; v < kVectors; ++v)
                    columns[v] = _mm256_loadu_si256(
                        reinterpret_cast<const __m256i*>(vectors[v] + c * group_stride + taps[t]));
                accumulate<kVectors>(acc, columns, a);
            }
        store_rows(acc, kRows, out);
    }

private:
    // One group's products: the first kVectors vectors' accumulators plus those columns times the kRows rows' weights
    // at a.
    template <int kVectors>
    static void accumulate(__m256i (&acc)[kRows][2], const __m256i (&columns)[kVectors], const A* a) {
        const __m256i ones = _mm256_set1_epi16(1);
#pragma GCC unroll 4
        for (int i = 0; i < kRows; ++i) {
            const __m256i weights = broadcast_group(a + i * 4);
            for (int v = 0; v < kVectors; ++v) {
                const __m256i pairs = _mm256_maddubs_epi16(columns[v], weights);
                acc[i][v] = _mm256_add_epi32(acc[i][v], _mm256_madd_epi16(pairs, ones));
            }
        }
    }
};

// 6 rows x 16 columns: 12 accumulators, 2 B vectors and a broadcast weight pair in 16 registers.
template <>
struct IntTile<S16Operands, xsimd::fma3<xsimd::avx2>> {
    using A = S16Operands::A;
    using B = S16Operands::B;
    static constexpr int kRows = 6, kColumns = 16;

    static void sums(int groups, const A* a, const B* b, std::int32_t* out) {
        __m256i acc[kRows][2];
        for (auto& row : acc) row[0] = row[1] = _mm256_setzero_si256();
        for (int g = 0; g < groups; ++g) {
            const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
            const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
#pragma GCC unroll 6
            for (int i = 0; i < kRows; ++i) {
                const __m256i weights = broadcast_group(a + i * 2);
                acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(b0, weights));
                acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(b1, weights));
            }
            a += kRows * 2;
            b += kColumns * 2;
        }
        store_rows(acc, kRows, out);
    }
};

template struct PackedGemmInt<S8Operands, xsimd::fma3<xsimd::avx2>>;
template struct PackedGemmInt<S16Operands, xsimd::fma3<xsimd::avx2>>;

}  // namespace edgeqc
