// Max pooling and global average pooling.
#include "engine/pooling.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace edgeqc {

namespace {

template <class T>
void max_pool_plain(const T* x, int planes, int height, int width, int kernel, int stride, T* y,
                    std::uint32_t* winners) {
    const int out_height = (height - kernel) / stride + 1, out_width = (width - kernel) / stride + 1;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; ++p) {
        const T* in = x + static_cast<std::size_t>(p) * height * width;
        const std::size_t out_offset = static_cast<std::size_t>(p) * out_height * out_width;
        for (int oy = 0; oy < out_height; ++oy) {
            for (int ox = 0; ox < out_width; ++ox) {
                auto best = static_cast<std::uint32_t>(oy * stride * width + ox * stride);
                for (int ky = 0; ky < kernel; ++ky) {
                    for (int kx = 0; kx < kernel; ++kx) {
                        const auto index = static_cast<std::uint32_t>((oy * stride + ky) * width + ox * stride + kx);
                        // Strict ">" keeps the first maximum on ties.
                        if (in[index] > in[best]) best = index;
                    }
                }
                const std::size_t o = out_offset + static_cast<std::size_t>(oy) * out_width + ox;
                if (winners) winners[o] = best;
                y[o] = in[best];
            }
        }
    }
}

}  // namespace

void max_pool_f32(const KernelTable& table, const float* x, int planes, int height, int width, int kernel, int stride,
                  float* y, std::uint32_t* winners) {
    if (kernel == 2 && stride == 2) {  // the reference network's pool: a SIMD kernel
        table.max_pool_2x2_f32(x, planes, height, width, y, winners);
        return;
    }
    max_pool_plain(x, planes, height, width, kernel, stride, y, winners);
}

namespace {

// kOutputs outputs of a 2x2 pool from rows row0 and row1, in one vector of kOutputs 16-bit lanes (GCC and Clang
// vector extensions): each lane holds a pair of columns, whose two bytes are split, compared and narrowed back. The
// compiler did not vectorize the same in plain loops for rows this short. At most 8 lanes: one register of the
// baseline SSE2 and NEON (wider vectors are emulated there, several times slower).
// (The vector types are spelled out: GCC 12 rejects __builtin_convertvector on a vector_size that depends on a
// template parameter.)
template <int kOutputs>
struct PoolVectors;
#define EDGEQC_POOL_VECTORS(outputs)                                                        \
    template <>                                                                             \
    struct PoolVectors<outputs> {                                                           \
        using Pairs = std::uint16_t __attribute__((vector_size(2 * (outputs))));           \
        using Bytes = std::uint8_t __attribute__((vector_size(outputs)));                  \
    };
EDGEQC_POOL_VECTORS(8)
EDGEQC_POOL_VECTORS(4)
EDGEQC_POOL_VECTORS(2)
#undef EDGEQC_POOL_VECTORS

template <int kOutputs>
void pool_chunk(const std::uint8_t* row0, const std::uint8_t* row1, std::uint8_t* out) {
    using Pairs = typename PoolVectors<kOutputs>::Pairs;
    using Bytes = typename PoolVectors<kOutputs>::Bytes;
    Pairs top, bottom;
    std::memcpy(&top, row0, sizeof top);
    std::memcpy(&bottom, row1, sizeof bottom);
    // max(a, b) = a + ((b - a) & (a < b)), the comparison giving all ones where true.
    const Pairs left_top = top & 0xFF, left_bottom = bottom & 0xFF, right_top = top >> 8, right_bottom = bottom >> 8;
    const Pairs left = left_top + ((left_bottom - left_top) & (Pairs)(left_top < left_bottom));
    const Pairs right = right_top + ((right_bottom - right_top) & (Pairs)(right_top < right_bottom));
    const Pairs window = left + ((right - left) & (Pairs)(left < right));
    const Bytes result = __builtin_convertvector(window, Bytes);
    std::memcpy(out, &result, sizeof result);
}

// A row of any length in a plain loop, which the compiler vectorizes 16 outputs at a time (and leaves a scalar tail
// of up to 15): the faster way for rows of 16 outputs or more, and the way for a row of one.
void pool_row(const std::uint8_t* row0, const std::uint8_t* row1, int outputs, std::uint8_t* __restrict out) {
    for (int ox = 0; ox < outputs; ++ox) {
        std::uint16_t top, bottom;  // a pair of columns, read as one value so that the loads are contiguous
        std::memcpy(&top, row0 + 2 * ox, sizeof top);
        std::memcpy(&bottom, row1 + 2 * ox, sizeof bottom);
        const auto left = std::max<std::int16_t>(top & 0xFF, bottom & 0xFF);
        const auto right =
            std::max<std::int16_t>(static_cast<std::int16_t>(top >> 8), static_cast<std::int16_t>(bottom >> 8));
        out[ox] = static_cast<std::uint8_t>(std::max(left, right));
    }
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

}  // namespace

void max_pool_u8(const std::uint8_t* x, int planes, int height, int width, int kernel, int stride, std::uint8_t* y) {
    if (kernel != 2 || stride != 2) {
        max_pool_plain(x, planes, height, width, kernel, stride, y, nullptr);
        return;
    }
    // The reference network's pool (no winners to track here): long rows in a loop the compiler vectorizes, short
    // ones in vector chunks, a row's last chunk overlapping the one before it instead of leaving a scalar tail (rows
    // of 3 to 15 outputs were mostly tails: the pool took a tenth of an int8 network's time).
    const int out_height = height / 2, out_width = width / 2;
    if (out_width == 0) return;
#pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; ++p)
        for (int oy = 0; oy < out_height; ++oy) {
            const std::uint8_t* row0 = x + (static_cast<std::size_t>(p) * height + 2 * oy) * width;
            const std::uint8_t* row1 = row0 + width;
            std::uint8_t* out = y + (static_cast<std::size_t>(p) * out_height + oy) * out_width;
            if (out_width >= 16 || out_width == 1) pool_row(row0, row1, out_width, out);
            else if (out_width >= 8) pool_row_in_chunks<8>(row0, row1, out_width, out);
            else if (out_width >= 4) pool_row_in_chunks<4>(row0, row1, out_width, out);
            else pool_row_in_chunks<2>(row0, row1, out_width, out);
        }
}

void global_avg_pool_f32(const float* x, int planes, std::size_t plane, float* y) {
#pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; ++p) {
        const float* in = x + static_cast<std::size_t>(p) * plane;
        double sum = 0.0;
        for (std::size_t i = 0; i < plane; ++i) sum += in[i];
        y[p] = static_cast<float>(sum / static_cast<double>(plane));
    }
}

void global_avg_pool_u8(const std::uint8_t* x, int planes, std::size_t plane, std::uint8_t* y) {
    for (int p = 0; p < planes; ++p) {
        const std::uint8_t* in = x + static_cast<std::size_t>(p) * plane;
        std::uint64_t sum = 0;
        for (std::size_t i = 0; i < plane; ++i) sum += in[i];
        y[p] = static_cast<std::uint8_t>((sum + plane / 2) / plane);
    }
}

}  // namespace edgeqc
