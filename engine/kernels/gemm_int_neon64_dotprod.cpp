// NEON tile of the int8 GEMM for CPUs with the ARMv8.2 dot product (the Raspberry Pi 5's Cortex-A76, not the Pi
// 4B's A72): sdot adds four s8 x s8 products into each int32 lane in one instruction, which is exactly one packed
// group. Built with -march=armv8.2-a+dotprod, listed only where the CPU reports the dot product (HWCAP_ASIMDDP).
#include <arm_neon.h>

#include "engine/kernels/gemm_int.hpp"

namespace edgeqc {

// 8 rows x 12 columns: 24 accumulators, 3 B vectors (4 columns each) and the groups of 8 rows in 2 vectors, whose
// lanes sdot picks one at a time.
template <>
struct IntTile<S8Operands, Neon64Dotprod> {
    static constexpr int kRows = 8, kColumns = 12;

    static void sums(int groups, const std::int8_t* a, const std::uint8_t* b, std::int32_t* out) {
        int32x4_t acc[kRows][3];
        for (auto& row : acc)
            for (int32x4_t& v : row) v = vdupq_n_s32(0);
        for (int g = 0; g < groups; ++g) {
            const int8x16_t columns[3] = {vreinterpretq_s8_u8(vld1q_u8(b)), vreinterpretq_s8_u8(vld1q_u8(b + 16)),
                                          vreinterpretq_s8_u8(vld1q_u8(b + 32))};
            const int8x16_t rows[2] = {vld1q_s8(a), vld1q_s8(a + 16)};
#pragma GCC unroll 3
            for (int v = 0; v < 3; ++v) {
                acc[0][v] = vdotq_laneq_s32(acc[0][v], columns[v], rows[0], 0);
                acc[1][v] = vdotq_laneq_s32(acc[1][v], columns[v], rows[0], 1);
                acc[2][v] = vdotq_laneq_s32(acc[2][v], columns[v], rows[0], 2);
                acc[3][v] = vdotq_laneq_s32(acc[3][v], columns[v], rows[0], 3);
                acc[4][v] = vdotq_laneq_s32(acc[4][v], columns[v], rows[1], 0);
                acc[5][v] = vdotq_laneq_s32(acc[5][v], columns[v], rows[1], 1);
                acc[6][v] = vdotq_laneq_s32(acc[6][v], columns[v], rows[1], 2);
                acc[7][v] = vdotq_laneq_s32(acc[7][v], columns[v], rows[1], 3);
            }
            a += kRows * 4;
            b += kColumns * 4;
        }
        for (int i = 0; i < kRows; ++i)
            for (int v = 0; v < 3; ++v) vst1q_s32(out + i * kColumns + 4 * v, acc[i][v]);
    }
};

template struct PackedGemmInt<S8Operands, Neon64Dotprod>;

}  // namespace edgeqc
