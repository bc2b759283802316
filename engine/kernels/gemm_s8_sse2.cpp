// SSE2 tile of the int8 GEMM, the x86-64 baseline: SSE2 has no u8 x s8 multiply (that is SSSE3's pmaddubsw), so
// both operands are widened to int16 and pmaddwd sums pairs of products into int32.
#include <emmintrin.h>

#include <cstring>

#include "engine/kernels/gemm_s8.hpp"

namespace edgeqc {

// 2 rows x 8 columns: each accumulator holds two columns' pair sums, [c k01, c k23, c+1 k01, c+1 k23], added up
// pairwise at the end.
template <>
struct S8Tile<xsimd::sse2> {
    static constexpr int kRows = 2, kColumns = 8;

    static void sums(int groups, const std::int8_t* a, const std::uint8_t* b, std::int32_t* out) {
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
                std::int32_t group;
                std::memcpy(&group, a + i * 4, sizeof group);
                const __m128i bytes = _mm_set1_epi32(group);
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

template struct PackedGemmS8<xsimd::sse2>;

}  // namespace edgeqc
