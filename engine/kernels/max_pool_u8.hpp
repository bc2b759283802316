// 2x2 stride-2 max pooling of 7-bit quantized activations, written once as vector-extension code that each per-arch
// source compiles with its own flags: chunks of outputs as wide as the arch's vectors of 16-bit lanes (32 on
// AVX-512 BW, 16 on AVX2, 8 on SSE2 and NEON), a row's last chunk overlapping the one before it instead of leaving
// a scalar tail. Arch is only a tag (and names the vector width).
#pragma once

#include <xsimd/xsimd.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "engine/kernels.hpp"
#include "engine/kernels/simd_arch.hpp"

namespace edgeqc {

template <class Arch>
struct SimdMaxPool2x2U8 {
    void operator()(const std::uint8_t* x, int planes, int height, int width, std::uint8_t* y) const;
};

// Unnamed, as gemm_f32.hpp's helpers: each per-arch source keeps its own copy, compiled with its own flags.
namespace {
namespace max_pool_u8_detail {

// A chunk of kOutputs outputs from 2 kOutputs columns of two rows (GCC and Clang vector extensions): the two rows'
// maximum byte by byte, then, in kOutputs 16-bit lanes of a pair of columns each, the maximum of each lane's two
// bytes, narrowed back to bytes. The types are spelled out: GCC 12 rejects __builtin_convertvector on a vector_size
// that depends on a template parameter.
template <int kOutputs>
struct PoolVectors;
#define EDGEQC_POOL_VECTORS(outputs)                                              \
    template <>                                                                   \
    struct PoolVectors<outputs> {                                                 \
        using Columns = std::uint8_t __attribute__((vector_size(2 * (outputs)))); \
        using Pairs = std::uint16_t __attribute__((vector_size(2 * (outputs)))); \
        using Bytes = std::uint8_t __attribute__((vector_size(outputs)));        \
    };
EDGEQC_POOL_VECTORS(32)
EDGEQC_POOL_VECTORS(16)
EDGEQC_POOL_VECTORS(8)
EDGEQC_POOL_VECTORS(4)
EDGEQC_POOL_VECTORS(2)
#undef EDGEQC_POOL_VECTORS

template <int kOutputs>
void pool_chunk(const std::uint8_t* row0, const std::uint8_t* row1, std::uint8_t* out) {
    using Vectors = PoolVectors<kOutputs>;
    typename Vectors::Columns top, bottom;
    std::memcpy(&top, row0, sizeof top);
    std::memcpy(&bottom, row1, sizeof bottom);
    const typename Vectors::Columns rows = top > bottom ? top : bottom;
    typename Vectors::Pairs pairs;
    std::memcpy(&pairs, &rows, sizeof pairs);
    const typename Vectors::Pairs left = pairs & 0xFF, right = pairs >> 8;
    const typename Vectors::Pairs window = left > right ? left : right;
    const auto result = __builtin_convertvector(window, typename Vectors::Bytes);
    std::memcpy(out, &result, sizeof result);
}

// A row of `outputs` >= kOutputs outputs, chunk by chunk, the last chunk ending at the row's end.
template <int kOutputs>
void pool_row_in_chunks(const std::uint8_t* row0, const std::uint8_t* row1, int outputs, std::uint8_t* out) {
    for (int ox = 0;; ox += kOutputs) {
        const int first = std::min(ox, outputs - kOutputs);
        pool_chunk<kOutputs>(row0 + 2 * first, row1 + 2 * first, out + first);
        if (first + kOutputs == outputs) return;
    }
}

// A row in the widest chunks it holds, at most kMaxOutputs wide; a row of one output on its own.
template <int kMaxOutputs>
void pool_row(const std::uint8_t* row0, const std::uint8_t* row1, int outputs, std::uint8_t* out) {
    if constexpr (kMaxOutputs >= 2) {
        if (outputs >= kMaxOutputs) return pool_row_in_chunks<kMaxOutputs>(row0, row1, outputs, out);
        return pool_row<kMaxOutputs / 2>(row0, row1, outputs, out);
    }
    *out = std::max({row0[0], row0[1], row1[0], row1[1]});
}

}  // namespace max_pool_u8_detail
}  // namespace

// Defined outside the class so that it is not implicitly inline: only the per-arch sources instantiate it.
template <class Arch>
void SimdMaxPool2x2U8<Arch>::operator()(const std::uint8_t* x, int planes, int height, int width,
                                        std::uint8_t* y) const {
    constexpr int kMaxOutputs = static_cast<int>(std::min<std::size_t>(xsimd::batch<std::uint16_t, Arch>::size, 32));
    // Pooling is quick: a thread team pays off from about a 20x30 layer of 64 channels on.
    constexpr std::size_t kParallelMinBytes = 32 * 1024;
    const int out_height = height / 2, out_width = width / 2;
    if (out_width == 0) return;
#pragma omp parallel for schedule(static) if (static_cast<std::size_t>(planes) * height * width >= kParallelMinBytes)
    for (int p = 0; p < planes; ++p)
        for (int oy = 0; oy < out_height; ++oy) {
            const std::uint8_t* row0 = x + (static_cast<std::size_t>(p) * height + 2 * oy) * width;
            max_pool_u8_detail::pool_row<kMaxOutputs>(row0, row0 + width, out_width,
                                                      y + (static_cast<std::size_t>(p) * out_height + oy) * out_width);
        }
}

EDGEQC_EXTERN_SIMD_KERNEL(SimdMaxPool2x2U8)

}  // namespace edgeqc
