// NEON tiles of the integer GEMMs for ARMv8.0 (the Raspberry Pi 4B's Cortex-A72 has no dot product). s8: smull
// and smlal multiply two groups into int16 lanes, which cannot overflow as both operands stay within [-127, 127]
// (2 x 127 x 127 < 32767; a -128 weight could, which the model validation refuses), and sadalp adds lane pairs
// into the int32 accumulators. s16: smull and smlal2 straight into int32.
#include <arm_neon.h>

#include "engine/kernels/gemm_int.hpp"

namespace edgeqc {

// 4 rows x 8 columns: per row four accumulators of two columns each, [c k01, c k23, c+1 k01, c+1 k23], added
// pairwise at the end: 16 accumulators, 4 B vectors, 2 weight vectors and a product in 32 registers.
template <>
struct IntTile<S8Operands, xsimd::neon64> {
    using A = S8Operands::A;
    using B = S8Operands::B;
    static constexpr int kRows = 4, kColumns = 8;

    static void sums(int groups, const A* a, const B* b, std::int32_t* out) {
        int32x4_t acc[kRows][4];
        for (auto& row : acc)
            for (int32x4_t& v : row) v = vdupq_n_s32(0);
        for (int g = 0; g < groups; g += 2) {  // the depth is padded to two groups
            const int8x16_t first[2] = {vreinterpretq_s8_u8(vld1q_u8(b)), vreinterpretq_s8_u8(vld1q_u8(b + 16))};
            const int8x16_t second[2] = {vreinterpretq_s8_u8(vld1q_u8(b + 32)),
                                         vreinterpretq_s8_u8(vld1q_u8(b + 48))};
#pragma GCC unroll 4
            for (int i = 0; i < kRows; ++i) {
                const int8x16_t w0 = vreinterpretq_s8_s32(vdupq_n_s32(int_gemm_detail::group_bits(a + i * 4)));
                const int8x16_t w1 = vreinterpretq_s8_s32(vdupq_n_s32(int_gemm_detail::group_bits(a + kRows * 4 + i * 4)));
#pragma GCC unroll 2
                for (int half = 0; half < 2; ++half) {
                    int16x8_t low = vmull_s8(vget_low_s8(first[half]), vget_low_s8(w0));
                    low = vmlal_s8(low, vget_low_s8(second[half]), vget_low_s8(w1));
                    acc[i][2 * half] = vpadalq_s16(acc[i][2 * half], low);
                    int16x8_t high = vmull_high_s8(first[half], w0);
                    high = vmlal_high_s8(high, second[half], w1);
                    acc[i][2 * half + 1] = vpadalq_s16(acc[i][2 * half + 1], high);
                }
            }
            a += 2 * kRows * 4;
            b += 2 * kColumns * 4;
        }
        for (int i = 0; i < kRows; ++i) {
            vst1q_s32(out + i * kColumns, vpaddq_s32(acc[i][0], acc[i][1]));
            vst1q_s32(out + i * kColumns + 4, vpaddq_s32(acc[i][2], acc[i][3]));
        }
    }
};

// 4 rows x 8 columns: per row four accumulators of two columns each, [c k0, c k1, c+1 k0, c+1 k1], added
// pairwise at the end.
template <>
struct IntTile<S16Operands, xsimd::neon64> {
    using A = S16Operands::A;
    using B = S16Operands::B;
    static constexpr int kRows = 4, kColumns = 8;

    static void sums(int groups, const A* a, const B* b, std::int32_t* out) {
        int32x4_t acc[kRows][4];
        for (auto& row : acc)
            for (int32x4_t& v : row) v = vdupq_n_s32(0);
        for (int g = 0; g < groups; ++g) {
            const int16x8_t columns[2] = {vld1q_s16(b), vld1q_s16(b + 8)};  // columns 0-3 and 4-7
#pragma GCC unroll 4
            for (int i = 0; i < kRows; ++i) {
                const int16x8_t weights = vreinterpretq_s16_s32(vdupq_n_s32(int_gemm_detail::group_bits(a + i * 2)));
#pragma GCC unroll 2
                for (int half = 0; half < 2; ++half) {
                    acc[i][2 * half] = vmlal_s16(acc[i][2 * half], vget_low_s16(columns[half]), vget_low_s16(weights));
                    acc[i][2 * half + 1] = vmlal_high_s16(acc[i][2 * half + 1], columns[half], weights);
                }
            }
            a += kRows * 2;
            b += kColumns * 2;
        }
        for (int i = 0; i < kRows; ++i) {
            vst1q_s32(out + i * kColumns, vpaddq_s32(acc[i][0], acc[i][1]));
            vst1q_s32(out + i * kColumns + 4, vpaddq_s32(acc[i][2], acc[i][3]));
        }
    }
};

template struct PackedGemmInt<S8Operands, xsimd::neon64>;
template struct PackedGemmInt<S16Operands, xsimd::neon64>;

}  // namespace edgeqc
