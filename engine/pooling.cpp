// Max pooling and global average pooling.
#include "engine/pooling.hpp"

#include <algorithm>
#include <cstddef>

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

void max_pool_u8(const KernelTable& table, const std::uint8_t* x, int planes, int height, int width, int kernel,
                 int stride, std::uint8_t* y) {
    if (kernel == 2 && stride == 2) {  // the reference network's pool: a SIMD kernel
        table.max_pool_2x2_u8(x, planes, height, width, y);
        return;
    }
    max_pool_plain(x, planes, height, width, kernel, stride, y, nullptr);
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
