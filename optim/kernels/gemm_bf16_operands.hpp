// The bf16-product operands of the packed f32 GEMM (engine/kernels/gemm_f32.hpp) for AVX-512 BF16: operands rounded
// to bf16 while they are packed (vcvtne2ps2bf16, round to nearest even) into pairs of consecutive depths, multiplied by
// vdpbf16ps. Shared by the sources built with AVX-512 BF16 (gemm_bf16_avx512_bf16.cpp, and the AMX-BF16 one, which
// reuses the packing); unnamed, so that each keeps its own copy compiled with its own flags.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "engine/kernels/gemm_f32.hpp"
#include "optim/training_kernels.hpp"

namespace edgeqc {
namespace {

// A packed slot holds a pair of bf16 values of consecutive depths (the even depth in the low half), which is what
// vdpbf16ps multiplies; an odd last depth is paired with zero. Slots are float-sized, so a kc-deep panel needs
// (kc + 1) / 2 rows of slots, within the kc rows the driver gives it.
struct Bf16Operands {
    using Shape = GemmTileShape<xsimd::avx512bw>;
    static constexpr int kRows = Shape::rows;
    static constexpr int kWidth = 16;  // floats (and pair slots) per vector

    static __mmask16 lanes(int count) { return static_cast<__mmask16>((1u << count) - 1); }  // the first count of 16
    static __m512i bits(__m512bh values) { return (__m512i)values; }

    // Lines stored with their depths consecutive (A, or B transposed): per line, 32 depths at a time become 16
    // slots, written a tile's width apart.
    static void pack_depth_runs(const float* source, int stride, int lines, int depth, int kc, int width,
                                float* packed) {
        const int pairs = (kc + 1) / 2;
        if (lines < width) std::memset(packed, 0, sizeof(float) * static_cast<std::size_t>(pairs) * width);
        for (int line = 0; line < lines; ++line) {
            const float* run = source + static_cast<std::ptrdiff_t>(line) * stride + depth;
            for (int p = 0; p < kc; p += 2 * kWidth) {
                const int count = std::min(2 * kWidth, kc - p);
                const __m512 first = _mm512_maskz_loadu_ps(lanes(std::min(count, kWidth)), run + p);
                const __m512 second = _mm512_maskz_loadu_ps(lanes(std::max(count - kWidth, 0)), run + p + kWidth);
                alignas(64) std::uint32_t slots[kWidth];
                _mm512_store_si512(slots, bits(_mm512_cvtne2ps_pbh(second, first)));
                float* out = packed + static_cast<std::ptrdiff_t>(p / 2) * width + line;
                for (int q = 0; q < (count + 1) / 2; ++q) std::memcpy(out + q * width, &slots[q], sizeof slots[q]);
            }
        }
    }

    // Depth rows stored with their lines consecutive (B, or A transposed): two depth rows at a time, 16 lines at a
    // time, interleaved into slots in the vector registers.
    static void pack_depth_rows(const float* source, int stride, int line, int lines, int depth, int kc, int width,
                                float* packed) {
        const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                                    23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
        for (int p = 0; p < kc; p += 2) {
            const float* even = source + static_cast<std::ptrdiff_t>(depth + p) * stride + line;
            const float* odd = even + stride;
            float* out = packed + static_cast<std::ptrdiff_t>(p / 2) * width;
            for (int j = 0; j < width; j += kWidth) {
                const __mmask16 load = lanes(std::clamp(lines - j, 0, kWidth));
                const __m512 even_values = _mm512_maskz_loadu_ps(load, even + j);
                const __m512 odd_values = p + 1 < kc ? _mm512_maskz_loadu_ps(load, odd + j) : _mm512_setzero_ps();
                // Both rows rounded at once, the even row's 16 bf16 then the odd row's, then interleaved into pairs.
                const __m512i rounded = bits(_mm512_cvtne2ps_pbh(odd_values, even_values));
                const __m512i slots = _mm512_permutexvar_epi16(interleave, rounded);
                // A tile 12 rows wide (A transposed) takes only part of the vector.
                _mm512_mask_storeu_epi32(out + j, lanes(std::min(width - j, kWidth)), slots);
            }
        }
    }

    static void pack_a(const float* a, int lda, bool transposed, int row, int rows, int depth, int kc, int tile_rows,
                       float* packed) {
        if (transposed) {
            pack_depth_rows(a, lda, row, rows, depth, kc, tile_rows, packed);
        } else {
            pack_depth_runs(a + static_cast<std::ptrdiff_t>(row) * lda, lda, rows, depth, kc, tile_rows, packed);
        }
    }
    static void pack_b(const float* b, int ldb, bool transposed, int depth, int kc, int column, int columns,
                       int tile_columns, float* packed) {
        if (transposed) {
            const float* first_column = b + static_cast<std::ptrdiff_t>(column) * ldb;
            pack_depth_runs(first_column, ldb, columns, depth, kc, tile_columns, packed);
        } else {
            pack_depth_rows(b, ldb, column, columns, depth, kc, tile_columns, packed);
        }
    }

    template <int kVectors>
    static void micro_kernel(int kc, const float* a_panel, const float* b_panel, float* c, int ldc, int rows,
                             int columns, const gemm_detail::TileMerge& merge) {
        using Batch = xsimd::batch<float, xsimd::avx512bw>;
        constexpr int kPackedColumns = GemmTileShape<xsimd::avx512bw>::vectors * kWidth;
        __m512 sums[kRows][kVectors];
#pragma GCC unroll 16
        for (int i = 0; i < kRows; ++i)
#pragma GCC unroll 4
            for (int v = 0; v < kVectors; ++v) sums[i][v] = _mm512_setzero_ps();
        const int pairs = (kc + 1) / 2;
#pragma GCC unroll 2
        for (int q = 0; q < pairs; ++q) {
            __m512bh b_row[kVectors];
#pragma GCC unroll 4
            for (int v = 0; v < kVectors; ++v)
                b_row[v] = (__m512bh)_mm512_load_si512(b_panel + v * kWidth);
#pragma GCC unroll 16
            for (int i = 0; i < kRows; ++i) {
                const __m512bh a_pair = (__m512bh)_mm512_set1_ps(a_panel[i]);  // a slot's bits, broadcast
#pragma GCC unroll 4
                for (int v = 0; v < kVectors; ++v) sums[i][v] = _mm512_dpbf16_ps(sums[i][v], a_pair, b_row[v]);
            }
            a_panel += kRows;
            b_panel += kPackedColumns;
        }
        Batch acc[kRows][kVectors];
        for (int i = 0; i < kRows; ++i)
            for (int v = 0; v < kVectors; ++v) acc[i][v] = sums[i][v];
        gemm_detail::merge_tile<xsimd::avx512bw, kVectors>(acc, c, ldc, rows, columns, merge);
    }
};

// The training table's four bf16-product GEMM entries from one operands policy's instantiation of the packed GEMM.
template <class Operands>
void install_bf16_gemm(TrainingKernelTable& t) {
    using Gemm = PackedGemmF32<xsimd::avx512bw, Operands>;
    t.gemm_bf16 = [](bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a, int lda,
                     const float* b, int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue,
                     float* workspace) {
        Gemm{}(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, epilogue, workspace);
    };
    t.gemm_workspace_bf16 = [](int m, int n, int k, bool a_packed) {
        return Gemm{}.workspace_floats(m, n, k, a_packed);
    };
    t.gemm_pack_a_bf16 = [](bool transpose_a, int m, int k, const float* a, int lda, float* packed) {
        return Gemm{}.pack_a(transpose_a, m, k, a, lda, packed);
    };
    t.gemm_packed_a_bf16 = [](bool transpose_b, int m, int n, int k, float alpha, const float* packed_a,
                              const float* b, int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue,
                              float* workspace) {
        Gemm{}.multiply(false, transpose_b, m, n, k, alpha, nullptr, 0, packed_a, b, ldb, beta, c, ldc, epilogue,
                        workspace);
    };
}

}  // namespace
}  // namespace edgeqc
