// The padded copy of a 3x3, stride-1, padding-1 convolution's input that the GEMMs pack B from without an im2col
// matrix (gemm_int.hpp for int8, gemm_f32.hpp for f32): each plane with a border of the padding value.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

namespace edgeqc {
namespace {
namespace padded_planes_detail {

// `images` x `channels` planes of height x width, each stored (height + 2) x (width + 2) with a border one value
// wide, and a margin after the last plane that whole-vector loads past a row's end may read. Sizes in elements.
struct PaddedPlanes {
    int channels, height, width, images = 1;
    static constexpr int kMargin = 64;
    int stride() const { return width + 2; }
    std::size_t plane() const { return static_cast<std::size_t>(height + 2) * stride(); }
    std::size_t image() const { return plane() * channels; }
    std::size_t elements() const { return (image() * images + kMargin + 63) / 64 * 64; }
    // Where depth p of im2col (channel p / 9, tap (ky, kx) = (p % 9 / 3, p % 3)) reads for the output at offset
    // `base` (oy * stride() + ox) of the planes: base + offset(p).
    std::ptrdiff_t offset(int p) const {
        return static_cast<std::ptrdiff_t>(p / 9) * plane() + static_cast<std::ptrdiff_t>(p % 9 / 3) * stride() + p % 3;
    }
    // Column j of im2col (image j / (height x width), its output at (j / width, j % width) within it) at depth p
    // reads planes[base(j) + offset(p)].
    std::ptrdiff_t base(int j) const {
        const int positions = height * width, image_index = j / positions, position = j % positions;
        return static_cast<std::ptrdiff_t>(image_index) * static_cast<std::ptrdiff_t>(image()) +
               position / width * stride() + position % width;
    }
};

// Copies the planes in (an orphaned `omp for`), the border and the margin set to `padding`.
template <class T>
void pad_planes(const PaddedPlanes& p, const T* x, T padding, T* planes) {
    const int all = p.channels * p.images;
#pragma omp for schedule(static)
    for (int c = 0; c < all; ++c) {
        T* out = planes + c * p.plane();
        std::fill_n(out, p.stride(), padding);
        for (int y = 0; y < p.height; ++y) {
            T* row = out + static_cast<std::size_t>(y + 1) * p.stride();
            row[0] = padding;
            std::memcpy(row + 1, x + (static_cast<std::size_t>(c) * p.height + y) * p.width, p.width * sizeof(T));
            row[p.width + 1] = padding;
        }
        std::fill_n(out + static_cast<std::size_t>(p.height + 1) * p.stride(), p.stride(), padding);
        if (c == all - 1)  // the margin
            std::fill(out + p.plane(), planes + p.elements(), padding);
    }
}

}  // namespace padded_planes_detail
}  // namespace
}  // namespace edgeqc
