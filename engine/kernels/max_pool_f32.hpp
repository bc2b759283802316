// 2x2 stride-2 max pooling written once against xsimd::batch<float, Arch>: V outputs per step from 2V input columns
// of two rows, split into even and odd columns (rows narrower than V: V outputs of the flattened planes at a time);
// the first (row-major) maximum of a window wins. Other window sizes stay in the layer's plain loops.
#pragma once

#include <omp.h>
#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/kernels.hpp"
#include "engine/kernels/simd_arch.hpp"

namespace edgeqc {

// One 2x2 window, first (row-major) maximum wins: the plain definition, for the SIMD path's planes that hold fewer
// outputs than a vector all together. Unnamed namespace: each per-arch source keeps its own copy, compiled with its
// own flags (gemm_f32.hpp says why).
namespace {
inline void max_pool_2x2_window(const float* row0, const float* row1, int column, int width, int row, float* out,
                                std::uint32_t* winner) {
    const float candidates[4] = {row0[column], row0[column + 1], row1[column], row1[column + 1]};
    int best = 0;
    for (int i = 1; i < 4; ++i)
        if (candidates[i] > candidates[best]) best = i;  // strict ">" keeps the first maximum on ties, as PyTorch
    *out = candidates[best];
    if (winner) *winner = static_cast<std::uint32_t>((row + best / 2) * width + column + best % 2);
}
}  // namespace

template <class Arch>
struct SimdMaxPool2x2F32 {
    void operator()(const float* x, int planes, int height, int width, float* y, std::uint32_t* winners) const;

private:
    using Batch = xsimd::batch<float, Arch>;
    using Indices = xsimd::batch<std::int32_t, Arch>;
    static constexpr int kWidth = static_cast<int>(Batch::size);

    // The winning candidate of each lane (first maximum on ties, as PyTorch) and its offset from the window's first
    // input; `offsets` holds each candidate's offset (right: + 1, lower row: + width) as the bit pattern of a float.
    static void select_best(const Batch (&candidates)[4], const Batch (&offsets)[4], Batch& best, Batch& offset) {
        best = candidates[0];
        offset = offsets[0];
        for (int i = 1; i < 4; ++i) {
            const auto better = candidates[i] > best;  // strict: the first maximum wins ties
            best = xsimd::select(better, candidates[i], best);
            offset = xsimd::select(better, offsets[i], offset);
        }
    }

    // Rows of fewer than kWidth outputs (20x30 and 10x15 inputs at AVX-512's 16 lanes): the outputs of all planes are
    // taken as one run and pooled kWidth at a time, each lane's four candidates gathered through memory wherever its
    // window lies. Window by window, the comparisons' branches mispredicted on most windows: 5x slower per byte.
    static void pool_narrow_rows(const float* x, int planes, int height, int width, float* y, std::uint32_t* winners,
                                 const Batch (&offsets)[4]);
    // The kWidth outputs of that run from `first` on.
    static void pool_narrow_step(const float* x, int height, int width, std::ptrdiff_t first, float* y,
                                 std::uint32_t* winners, const Batch (&offsets)[4]);

    // Splits 2V consecutive floats into their even and odd elements. Through memory on purpose: xsimd 8's zip_lo /
    // zip_hi interleave within 128-bit lanes on AVX, so a zip-based split would scramble the order there; the
    // compiler turns this copy into shuffles anyway.
    template <class Batch>
    static void split_even_odd(const float* source, Batch& even, Batch& odd) {
        alignas(64) float evens[Batch::size], odds[Batch::size];
        for (std::size_t i = 0; i < Batch::size; ++i) {
            evens[i] = source[2 * i];
            odds[i] = source[2 * i + 1];
        }
        even = Batch::load_aligned(evens);
        odd = Batch::load_aligned(odds);
    }
};

// Defined outside the class so that it is not implicitly inline: only the per-arch sources instantiate it.
template <class Arch>
void SimdMaxPool2x2F32<Arch>::operator()(const float* x, int planes, int height, int width, float* y,
                                         std::uint32_t* winners) const {
    const int out_height = height / 2, out_width = width / 2;
    // Input columns 2 x lane of each output lane, and each candidate's offset from its window's first input
    // (right: + 1, lower row: + width), carried through the selects below as the bit patterns of floats.
    alignas(64) std::int32_t column_values[kWidth];
    for (int i = 0; i < kWidth; ++i) column_values[i] = 2 * i;
    const Indices columns = Indices::load_aligned(column_values);
    Batch offsets[4];
    for (int i = 0; i < 4; ++i) offsets[i] = xsimd::bitwise_cast<Batch>(Indices((i / 2) * width + i % 2));
    if (out_width < kWidth && static_cast<std::ptrdiff_t>(planes) * out_height * out_width >= kWidth) {
        pool_narrow_rows(x, planes, height, width, y, winners, offsets);
        return;
    }
#pragma omp parallel for schedule(static) if (!omp_in_parallel())  // inside a batch norm's loop over channels: alone
    for (int plane = 0; plane < planes; ++plane) {
        const float* in = x + static_cast<std::size_t>(plane) * height * width;
        const std::size_t out_offset = static_cast<std::size_t>(plane) * out_height * out_width;
        for (int oy = 0; oy < out_height; ++oy) {
            const float* row0 = in + static_cast<std::size_t>(2 * oy) * width;
            const float* row1 = row0 + width;
            float* out = y + out_offset + static_cast<std::size_t>(oy) * out_width;
            std::uint32_t* winner = winners ? winners + out_offset + static_cast<std::size_t>(oy) * out_width : nullptr;
            // Whole vectors; a row at least one vector wide ends with one that overlaps the one before (recomputing
            // a few outputs the same way). Narrower rows get here only when all planes together hold fewer than V
            // outputs: they go window by window.
            const int vector_end = out_width >= kWidth ? out_width : 0;
            for (int step = 0; step < vector_end; step += kWidth) {
                const int ox = std::min(step, out_width - kWidth);
                Batch candidates[4];
                split_even_odd(row0 + 2 * ox, candidates[0], candidates[1]);
                split_even_odd(row1 + 2 * ox, candidates[2], candidates[3]);
                Batch best, offset;
                select_best(candidates, offsets, best, offset);
                best.store_unaligned(out + ox);
                if (winner)
                    (Indices(2 * oy * width + 2 * ox) + columns + xsimd::bitwise_cast<Indices>(offset))
                        .store_unaligned(reinterpret_cast<std::int32_t*>(winner + ox));
            }
            for (int ox = vector_end; ox < out_width; ++ox)
                max_pool_2x2_window(row0, row1, 2 * ox, width, 2 * oy, out + ox, winner ? winner + ox : nullptr);
        }
    }
}

template <class Arch>
void SimdMaxPool2x2F32<Arch>::pool_narrow_rows(const float* x, int planes, int height, int width, float* y,
                                               std::uint32_t* winners, const Batch (&offsets)[4]) {
    const std::ptrdiff_t outputs = static_cast<std::ptrdiff_t>(planes) * (height / 2) * (width / 2);
    const std::ptrdiff_t whole_steps = outputs / kWidth;
#pragma omp parallel for schedule(static) if (!omp_in_parallel())  // inside a batch norm's loop over channels: alone
    for (std::ptrdiff_t step = 0; step < whole_steps; ++step)
        pool_narrow_step(x, height, width, step * kWidth, y, winners, offsets);
    // A last step overlapping the one before, recomputing a few outputs the same way, once the others are written.
    if (outputs % kWidth) pool_narrow_step(x, height, width, outputs - kWidth, y, winners, offsets);
}

template <class Arch>
void SimdMaxPool2x2F32<Arch>::pool_narrow_step(const float* x, int height, int width, std::ptrdiff_t first, float* y,
                                               std::uint32_t* winners, const Batch (&offsets)[4]) {
    const int out_height = height / 2, out_width = width / 2;
    const std::ptrdiff_t out_plane = static_cast<std::ptrdiff_t>(out_height) * out_width;
    std::ptrdiff_t plane = first / out_plane;
    int oy = static_cast<int>(first % out_plane / out_width), ox = static_cast<int>(first % out_width);
    alignas(64) float gathered[4][kWidth];
    alignas(64) std::int32_t window_starts[kWidth];  // within the plane, as the winners count
    for (int lane = 0; lane < kWidth; ++lane) {
        const int start = 2 * oy * width + 2 * ox;
        const float* window = x + plane * height * width + start;
        gathered[0][lane] = window[0];
        gathered[1][lane] = window[1];
        gathered[2][lane] = window[width];
        gathered[3][lane] = window[width + 1];
        window_starts[lane] = start;
        if (++ox == out_width) {
            ox = 0;
            if (++oy == out_height) {
                oy = 0;
                ++plane;
            }
        }
    }
    const Batch candidates[4] = {Batch::load_aligned(gathered[0]), Batch::load_aligned(gathered[1]),
                                 Batch::load_aligned(gathered[2]), Batch::load_aligned(gathered[3])};
    Batch best, offset;
    select_best(candidates, offsets, best, offset);
    best.store_unaligned(y + first);
    if (winners)
        (Indices::load_aligned(window_starts) + xsimd::bitwise_cast<Indices>(offset))
            .store_unaligned(reinterpret_cast<std::int32_t*>(winners + first));
}

EDGEQC_EXTERN_SIMD_KERNEL(SimdMaxPool2x2F32)

}  // namespace edgeqc
