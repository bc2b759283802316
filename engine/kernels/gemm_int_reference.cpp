// Scalar reference integer GEMMs: the fallback path and the oracle every arch's integer GEMMs must equal bit for
// bit.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/kernels/gemm_int.hpp"

namespace edgeqc {

namespace {

// The reference "packed" layout is plain A, row-major m x k.
template <class T>
std::size_t pack_a_reference(int m, int k, const T* a, int lda, T* packed) {
    if (m <= 0 || k <= 0) return 0;
    if (packed)
        for (std::ptrdiff_t i = 0; i < m; ++i)
            for (std::ptrdiff_t p = 0; p < k; ++p) packed[i * k + p] = a[i * lda + p];
    return static_cast<std::size_t>(m) * k;
}

// Sum (i, j) of A x op(B).
template <class A, class B>
std::int32_t product_sum(bool transpose_b, int k, const A* packed_a, const B* b, int ldb, std::ptrdiff_t i,
                         std::ptrdiff_t j) {
    std::int32_t sum = 0;
    for (std::ptrdiff_t p = 0; p < k; ++p) sum += packed_a[i * k + p] * (transpose_b ? b[j * ldb + p] : b[p * ldb + j]);
    return sum;
}

template <class A, class B>
void gemm_reference(bool transpose_b, int m, int n, int k, const A* packed_a, const B* b, int ldb,
                    const IntegerGemmEpilogue& epilogue) {
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < m; ++i)
        for (std::ptrdiff_t j = 0; j < n; ++j) {
            const std::int32_t sum = product_sum(transpose_b, k, packed_a, b, ldb, i, j);
            int_gemm_detail::finish_sums(&sum, 1, static_cast<int>(i), static_cast<int>(j), epilogue);
        }
}

}  // namespace

std::size_t gemm_pack_a_s8_reference(int m, int k, const std::int8_t* a, int lda, std::int8_t* packed) {
    return pack_a_reference(m, k, a, lda, packed);
}
std::size_t gemm_pack_a_s16_reference(int m, int k, const std::int16_t* a, int lda, std::int16_t* packed) {
    return pack_a_reference(m, k, a, lda, packed);
}

// The reference packs nothing while multiplying.
std::size_t gemm_workspace_int_reference(int, int, int) { return 0; }

void gemm_packed_a_s8_reference(bool transpose_b, int m, int n, int k, const std::int8_t* packed_a,
                                const std::uint8_t* b, int ldb, const IntegerGemmEpilogue& epilogue, unsigned char*) {
    gemm_reference(transpose_b, m, n, k, packed_a, b, ldb, epilogue);
}
void gemm_packed_a_s16_reference(bool transpose_b, int m, int n, int k, const std::int16_t* packed_a,
                                 const std::int16_t* b, int ldb, const IntegerGemmEpilogue& epilogue, unsigned char*) {
    gemm_reference(transpose_b, m, n, k, packed_a, b, ldb, epilogue);
}

// The reference's conv A is its im2col GEMM's, in either order (it has one).
std::size_t gemm_conv3x3_pack_a_s8_reference(int m, int channels, Conv3x3Order, const std::int8_t* a,
                                             std::int8_t* packed) {
    return pack_a_reference(m, 9 * channels, a, 9 * channels, packed);
}

// The reference's workspace is the im2col matrix, k x n.
std::size_t gemm_conv3x3_workspace_s8_reference(int, int channels, int height, int width) {
    return static_cast<std::size_t>(9) * channels * height * width;
}

void gemm_conv3x3_s8_reference(int m, int channels, int height, int width, Conv3x3Order, const std::int8_t* packed_a,
                               const std::uint8_t* x, std::uint8_t padding, bool max_pool_2x2,
                               const IntegerGemmEpilogue& epilogue, unsigned char* workspace) {
    const int n = height * width;
    std::uint8_t* columns = workspace;
    for (int c = 0; c < channels; ++c)
        for (int ky = 0; ky < 3; ++ky)
            for (int kx = 0; kx < 3; ++kx, columns += n)
                for (int oy = 0; oy < height; ++oy)
                    for (int ox = 0; ox < width; ++ox) {
                        const int iy = oy + ky - 1, ix = ox + kx - 1;
                        const bool inside = iy >= 0 && iy < height && ix >= 0 && ix < width;
                        columns[oy * width + ox] = inside ? x[(c * height + iy) * width + ix] : padding;
                    }
    if (!max_pool_2x2) return gemm_reference(false, m, n, 9 * channels, packed_a, workspace, n, epilogue);
    // Each pooled output finishes the largest of its window's four sums.
    const int pooled_height = height / 2, pooled_width = width / 2;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < m; ++i)
        for (int py = 0; py < pooled_height; ++py)
            for (int px = 0; px < pooled_width; ++px) {
                std::int32_t largest = INT32_MIN;
                for (int dy = 0; dy < 2; ++dy)
                    for (int dx = 0; dx < 2; ++dx)
                        largest = std::max(largest, product_sum(false, 9 * channels, packed_a, workspace, n, i,
                                                                (2 * py + dy) * width + 2 * px + dx));
                int_gemm_detail::finish_sums(&largest, 1, i, py * pooled_width + px, epilogue);
            }
}

// The reference "packed" B is plain op(B), row-major k x n.
std::size_t gemm_pack_b_s16_reference(bool transpose_b, int n, int k, const std::int16_t* b, int ldb,
                                      std::int16_t* packed) {
    if (n <= 0 || k <= 0) return 0;
    if (packed)
        for (std::ptrdiff_t p = 0; p < k; ++p)
            for (std::ptrdiff_t j = 0; j < n; ++j) packed[p * n + j] = transpose_b ? b[j * ldb + p] : b[p * ldb + j];
    return static_cast<std::size_t>(n) * k;
}

void gemm_packed_ab_s16_reference(int m, int n, int k, const std::int16_t* packed_a, const std::int16_t* packed_b,
                                  const IntegerGemmEpilogue& epilogue) {
    gemm_reference(false, m, n, k, packed_a, packed_b, n, epilogue);
}

}  // namespace edgeqc
