// SSE2 tiles of the integer GEMMs, the x86-64 baseline: pmaddwd multiplies int16 pairs into int32. SSE2 has no
// u8 x s8 multiply (that is SSSE3's pmaddubsw), so the s8 tile widens both operands to int16 first.
#include <emmintrin.h>

#include "engine/kernels/gemm_int.hpp"

namespace edgeqc {

namespace {

__m128i broadcast_group(const void* group) {
    return _mm_set1_epi32(int_gemm_detail::group_bits(group));
}

}  // namespace

// 2 rows x 8 columns: each accumulator holds two columns' pair sums, [c k01, c k23, c+1 k01, c+1 k23], added up
// pairwise at the end.
template <>
struct IntTile<S8Operands, xsimd::sse2> {
    using A = S8Operands::A;
    using B = S8Operands::B;
    static constexpr int kRows = 2, kColumns = 8;

    static void sums(int groups, const A* a, const B* b, std::int32_t* out) {
        __m128i acc[kRows][4];
        for (auto& row : acc)
            for (__m128i& v : row) v = _mm_setzero_si128();
        const __m128i zero = _mm_setzero_si128();
        for (int g = 0; g < groups; ++g) {
            const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
            const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16));
            const __m128i columns[4] = {_mm_unpacklo_epi8(b0, zero), _mm_unpackhi_epi8(b0, zero),
                                        _mm_unpacklo_epi8(b1, zero), _mm_unpackhi_epi8(b1, zero)};
            for (int i = 0; i < kRows; ++i) {
                const __m128i bytes = broadcast_group(a + i * 4);
                const __m128i weights = _mm_unpacklo_epi8(bytes, _mm_cmpgt_epi8(zero, bytes));  // sign-extended
                for (int v = 0; v < 4; ++v) acc[i][v] = _mm_add_epi32(acc[i][v], _mm_madd_epi16(columns[v], weights));
            }
            a += kRows * 4;
            b += kColumns * 4;
        }
        for (int i = 0; i < kRows; ++i)
            for (int v = 0; v < 4; ++v) {
                alignas(16) std::int32_t pair_sums[4];
                _mm_store_si128(reinterpret_cast<__m128i*>(pair_sums), acc[i][v]);
                out[i * kColumns + 2 * v] = pair_sums[0] + pair_sums[1];
                out[i * kColumns + 2 * v + 1] = pair_sums[2] + pair_sums[3];
            }
    }
};

// 4 rows x 8 columns: pmaddwd of a B vector (4 columns x 2 values) by a row's weight pair gives 4 columns' sums.
template <>
struct IntTile<S16Operands, xsimd::sse2> {
    using A = S16Operands::A;
    using B = S16Operands::B;
    static constexpr int kRows = 4, kColumns = 8;

    static void sums(int groups, const A* a, const B* b, std::int32_t* out) {
        __m128i acc[kRows][2];
        for (auto& row : acc) row[0] = row[1] = _mm_setzero_si128();
        for (int g = 0; g < groups; ++g) {
            const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
            const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 8));
            for (int i = 0; i < kRows; ++i) {
                const __m128i weights = broadcast_group(a + i * 2);
                acc[i][0] = _mm_add_epi32(acc[i][0], _mm_madd_epi16(b0, weights));
                acc[i][1] = _mm_add_epi32(acc[i][1], _mm_madd_epi16(b1, weights));
            }
            a += kRows * 2;
            b += kColumns * 2;
        }
        for (int i = 0; i < kRows; ++i) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i * kColumns), acc[i][0]);
            _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i * kColumns + 4), acc[i][1]);
        }
    }
};

template struct PackedGemmInt<S8Operands, xsimd::sse2>;
template struct PackedGemmInt<S16Operands, xsimd::sse2>;

}  // namespace edgeqc
