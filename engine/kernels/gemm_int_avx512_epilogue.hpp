// The integer GEMM's requantizing epilogue in AVX-512 vectors, for the tiles built with AVX-512 (VNNI, AMX): a base
// class that gives a tile finish_quantized (gemm_int.hpp), 16 columns at a time where the compiler's loop took 8.
#pragma once

#include <immintrin.h>

#include "engine/kernels/gemm_int.hpp"

namespace edgeqc {
// Unnamed, as gemm_int.hpp's helpers: the VNNI and the AMX sources each compile their own copy with their own flags.
namespace {

struct Avx512QuantizedEpilogue {
    // int_gemm_detail::finish_sums into 7-bit activations, with the same float operations in the same order (and
    // the same rounding: int_gemm_detail::round_to_even's), so the bits equal the reference's.
    static void finish_quantized(const std::int32_t* sums, int count, int row, int column,
                                 const IntegerGemmEpilogue& e) {
        constexpr int kWidth = 16;
        const __m512i bias = _mm512_set1_epi32(e.row_bias ? e.row_bias[row] : 0);
        const __m512 scale = _mm512_set1_ps(e.row_scale[row]);
        const __m512 low = _mm512_set1_ps(static_cast<float>(e.relu ? 0 : -e.zero_point));
        const __m512 high = _mm512_set1_ps(static_cast<float>(kActivationMax - e.zero_point));
        const __m512 shifter = _mm512_set1_ps(int_gemm_detail::kRoundingShifter);
        const __m512i zero_point = _mm512_set1_epi32(e.zero_point);
        std::uint8_t* out = e.quantized + static_cast<std::ptrdiff_t>(row) * e.ldc + column;
        for (int j = 0; j < count; j += kWidth) {
            const auto lanes = static_cast<__mmask16>(count - j >= kWidth ? 0xFFFF : (1u << (count - j)) - 1);
            const __m512i sum = _mm512_add_epi32(_mm512_maskz_loadu_epi32(lanes, sums + j), bias);
            __m512 value = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), scale);
            // x86 returns the second operand where either is NaN: the value, which then passes, as in finish_sums.
            value = _mm512_min_ps(high, _mm512_max_ps(low, value));
            value = _mm512_sub_ps(_mm512_add_ps(value, shifter), shifter);
            const __m512i quantized = _mm512_add_epi32(_mm512_cvttps_epi32(value), zero_point);
            _mm_mask_storeu_epi8(out + j, lanes, _mm512_cvtepi32_epi8(quantized));
        }
    }
};

}  // namespace
}  // namespace edgeqc
