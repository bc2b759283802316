// AVX2 tile of the int8 GEMM: vpmaddubsw multiplies the 7-bit activations (unsigned) by the s8 weights and adds
// pairs into int16, which cannot saturate as 2 x 127 x 127 < 32767 (with 8-bit activations it could: 255 x 127 x 2
// overflows); vpmaddwd by ones adds the pairs into int32. Built with -mavx2 -mfma, run only where the CPU has AVX2.
#include <immintrin.h>

#include <cstring>

#include "engine/kernels/gemm_s8.hpp"

namespace edgeqc {

// 4 rows x 16 columns: 8 accumulators, 2 B vectors, a broadcast weight group, the ones and a product in 16 registers.
template <>
struct S8Tile<xsimd::fma3<xsimd::avx2>> {
    static constexpr int kRows = 4, kColumns = 16;

    static void sums(int groups, const std::int8_t* a, const std::uint8_t* b, std::int32_t* out) {
        __m256i acc[kRows][2];
        for (auto& row : acc) row[0] = row[1] = _mm256_setzero_si256();
        const __m256i ones = _mm256_set1_epi16(1);
        for (int g = 0; g < groups; ++g) {
            const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
            const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 32));
#pragma GCC unroll 4
            for (int i = 0; i < kRows; ++i) {
                std::int32_t group;
                std::memcpy(&group, a + i * 4, sizeof group);
                const __m256i weights = _mm256_set1_epi32(group);
                acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_madd_epi16(_mm256_maddubs_epi16(b0, weights), ones));
                acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_madd_epi16(_mm256_maddubs_epi16(b1, weights), ones));
            }
            a += kRows * 4;
            b += kColumns * 4;
        }
        for (int i = 0; i < kRows; ++i) {
            _mm256_store_si256(reinterpret_cast<__m256i*>(out + i * kColumns), acc[i][0]);
            _mm256_store_si256(reinterpret_cast<__m256i*>(out + i * kColumns + 8), acc[i][1]);
        }
    }
};

template struct PackedGemmS8<xsimd::fma3<xsimd::avx2>>;

}  // namespace edgeqc
