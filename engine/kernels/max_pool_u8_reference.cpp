// Scalar int8 2x2 max pooling: the test oracle of the per-arch ones (max_pool_u8.hpp).
#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace edgeqc {

void max_pool_2x2_u8_reference(const std::uint8_t* x, int planes, int height, int width, std::uint8_t* y) {
    const int out_height = height / 2, out_width = width / 2;
    for (int p = 0; p < planes; ++p)
        for (int oy = 0; oy < out_height; ++oy) {
            const std::uint8_t* row0 = x + (static_cast<std::size_t>(p) * height + 2 * oy) * width;
            const std::uint8_t* row1 = row0 + width;
            std::uint8_t* out = y + (static_cast<std::size_t>(p) * out_height + oy) * out_width;
            for (int ox = 0; ox < out_width; ++ox)
                out[ox] = std::max({row0[2 * ox], row0[2 * ox + 1], row1[2 * ox], row1[2 * ox + 1]});
        }
}

}  // namespace edgeqc
