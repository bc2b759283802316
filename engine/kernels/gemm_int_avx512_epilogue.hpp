// The integer GEMM's requantizing epilogue in AVX-512 vectors, for the tiles built with AVX-512 (VNNI, AMX): a base
// class that gives a tile of kColumns columns finish_quantized (gemm_int.hpp), a whole tile at a time.
#pragma once

#include <immintrin.h>

#include "engine/kernels/gemm_int.hpp"

namespace edgeqc {
// Unnamed, as gemm_int.hpp's helpers: the VNNI and the AMX sources each compile their own copy with their own flags.
namespace {

// int_gemm_detail::finish_sums into 7-bit activations for 16 sums, each lane's bias and scale its own: the same float
// operations in the same order (and the same rounding: int_gemm_detail::round_to_even's), so the bits equal the
// reference's.
class Requantize16 {
public:
    explicit Requantize16(const IntegerGemmEpilogue& e)
        : low_(_mm512_set1_ps(static_cast<float>(e.relu ? 0 : -e.zero_point))),
          high_(_mm512_set1_ps(static_cast<float>(kActivationMax - e.zero_point))),
          shifter_(_mm512_set1_ps(kRoundToEvenShifter)), zero_point_(_mm512_set1_epi32(e.zero_point)) {}
    __m128i operator()(__m512i sums, __m512i bias, __m512 scale) const {
        __m512 value = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(sums, bias)), scale);
        // x86 returns the second operand where either is NaN: the value, which then passes, as in finish_sums.
        value = _mm512_min_ps(high_, _mm512_max_ps(low_, value));
        value = _mm512_sub_ps(_mm512_add_ps(value, shifter_), shifter_);
        return _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvttps_epi32(value), zero_point_));
    }

private:
    __m512 low_, high_, shifter_;
    __m512i zero_point_;
};

template <int kColumns>
struct Avx512QuantizedEpilogue {
    // int_gemm_detail::finish_sums into 7-bit activations (Requantize16) for the first `rows` rows of a tile's sums
    // (row-major, kColumns a row) whose lanes `runs` hold C's columns. Each 16 lanes are requantized whole, border
    // lanes included, and stored with a byte mask per run: a call per row and run, each loading its constants and
    // sums again, was a sixth of conv2's time on a Zen 5.
    static void finish_quantized(const std::int32_t* sums, int rows, const int_gemm_detail::ColumnRun* runs,
                                 int run_count, int row, const IntegerGemmEpilogue& e) {
        constexpr int kWidth = 16, kVectors = kColumns / kWidth;
        static_assert(kColumns % kWidth == 0, "a tile's columns are whole vectors");
        // Where each vector's lanes go: per run that overlaps it, a mask of its lanes and the offset in C's row of
        // the vector's lane 0 (before the row where the run starts past lane 0: masked lanes are never touched).
        struct Store {
            __mmask16 lanes;
            std::ptrdiff_t offset;
        };
        Store stores[kColumns + kVectors];
        int first_store[kVectors + 1] = {};
        int count = 0;
        for (int v = 0; v < kVectors; ++v) {
            first_store[v] = count;
            for (int r = 0; r < run_count; ++r) {
                const int begin = std::max(runs[r].lane, v * kWidth);
                const int end = std::min(runs[r].lane + runs[r].count, (v + 1) * kWidth);
                if (begin >= end) continue;
                const unsigned bits = ((1u << (end - begin)) - 1) << (begin - v * kWidth);
                stores[count++] = {static_cast<__mmask16>(bits), runs[r].column + v * kWidth - runs[r].lane};
            }
        }
        first_store[kVectors] = count;
        const Requantize16 requantize(e);
        for (int i = 0; i < rows; ++i) {
            const __m512i bias = _mm512_set1_epi32(e.row_bias ? e.row_bias[row + i] : 0);
            const __m512 scale = _mm512_set1_ps(e.row_scale[row + i]);
            const auto out =
                reinterpret_cast<std::uintptr_t>(e.quantized + static_cast<std::ptrdiff_t>(row + i) * e.ldc);
            for (int v = 0; v < kVectors; ++v) {
                if (first_store[v] == first_store[v + 1]) continue;
                const __m128i bytes = requantize(_mm512_loadu_si512(sums + i * kColumns + v * kWidth), bias, scale);
                for (int s = first_store[v]; s < first_store[v + 1]; ++s)
                    _mm_mask_storeu_epi8(reinterpret_cast<void*>(out + stores[s].offset), stores[s].lanes, bytes);
            }
        }
    }
};

}  // namespace
}  // namespace edgeqc
