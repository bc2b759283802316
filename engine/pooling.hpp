// Pooling for inference and training alike: max pooling of floats and of 7-bit quantized activations (max commutes
// with the monotonic quantization, so pooling needs no scale), the 2x2 stride-2 case through the kernel table and
// any other window in plain loops, and global average pooling of both. Backward passes live
// with the training layers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "engine/kernels.hpp"

namespace edgeqc {

// x: `planes` planes of height x width -> y: planes of ((height - k) / s + 1) x ((width - k) / s + 1). winners,
// when not null, receives per output the index within its input plane of the first (row-major) maximum.
void max_pool_f32(const KernelTable& table, const float* x, int planes, int height, int width, int kernel, int stride,
                  float* y, std::uint32_t* winners);
void max_pool_u8(const KernelTable& table, const std::uint8_t* x, int planes, int height, int width, int kernel,
                 int stride, std::uint8_t* y);

// y[p] = mean of plane p of x (`planes` planes of `plane` values), summed in double.
void global_avg_pool_f32(const float* x, int planes, std::size_t plane, float* y);
// The same on quantized activations, rounded half up: the mean keeps the input's scale and zero point.
void global_avg_pool_u8(const std::uint8_t* x, int planes, std::size_t plane, std::uint8_t* y);

}  // namespace edgeqc
