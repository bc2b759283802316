// Scalar 2x2 max pooling: the fallback path and the test oracle of the SIMD ones (max_pool_f32.hpp).
#include "engine/kernels/max_pool_f32.hpp"

namespace edgeqc {

void max_pool_2x2_f32_reference(const float* x, int planes, int height, int width, float* y, std::uint32_t* winners) {
    const int out_height = height / 2, out_width = width / 2;
#pragma omp parallel for schedule(static)
    for (int plane = 0; plane < planes; ++plane) {
        const float* in = x + static_cast<std::size_t>(plane) * height * width;
        for (int oy = 0; oy < out_height; ++oy) {
            const std::size_t out = (static_cast<std::size_t>(plane) * out_height + oy) * out_width;
            const float* row0 = in + static_cast<std::size_t>(2 * oy) * width;
            for (int ox = 0; ox < out_width; ++ox)
                max_pool_2x2_window(row0, row0 + width, 2 * ox, width, 2 * oy, y + out + ox,
                                    winners ? winners + out + ox : nullptr);
        }
    }
}

}  // namespace edgeqc
