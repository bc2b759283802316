// Scalar reference GEMM: the fallback path and the test oracle for every optimised GEMM.
// Accumulates in double so that it stays a trustworthy oracle on long reductions.
#include <algorithm>
#include <cstddef>

#include "engine/conv2d_f32.hpp"
#include "engine/kernels.hpp"

namespace edgeqc {

void gemm_f32_reference(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a,
                        int lda, const float* b, int ldb, float beta, float* c, int ldc,
                        const GemmEpilogue& epilogue, float*) {
    // Indices in ptrdiff_t: row * stride overflows int for matrices of a few hundred million elements.
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < m; ++i) {
        for (std::ptrdiff_t j = 0; j < n; ++j) {
            double sum = 0.0;
            for (std::ptrdiff_t p = 0; p < k; ++p) {
                const float av = transpose_a ? a[p * lda + i] : a[i * lda + p];
                const float bv = transpose_b ? b[j * ldb + p] : b[p * ldb + j];
                sum += static_cast<double>(av) * bv;
            }
            float& out = c[i * ldc + j];
            float value = static_cast<float>(alpha * sum) + (beta == 0.0f ? 0.0f : beta * out);
            if (epilogue.row_bias) value += epilogue.row_bias[i];
            out = epilogue.relu && value < 0.0f ? 0.0f : value;  // NaN passes through, as in PyTorch
        }
    }
}

// The reference packs nothing while multiplying.
std::size_t gemm_workspace_f32_reference(int, int, int, bool) { return 0; }

// The reference "packed" layout is plain op(A), row-major m x k.
std::size_t gemm_pack_a_f32_reference(bool transpose_a, int m, int k, const float* a, int lda, float* packed) {
    if (!packed || m <= 0 || k <= 0) return static_cast<std::size_t>(std::max(m, 0)) * std::max(k, 0);
    for (std::ptrdiff_t i = 0; i < m; ++i)
        for (std::ptrdiff_t p = 0; p < k; ++p) packed[i * k + p] = transpose_a ? a[p * lda + i] : a[i * lda + p];
    return static_cast<std::size_t>(m) * k;
}

void gemm_packed_a_f32_reference(bool transpose_b, int m, int n, int k, float alpha, const float* packed_a,
                                 const float* b, int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue,
                                 float* workspace) {
    gemm_f32_reference(false, transpose_b, m, n, k, alpha, packed_a, k, b, ldb, beta, c, ldc, epilogue, workspace);
}

// The reference narrow GEMM packs as its packed-A GEMM does (plain A) and computes as the reference GEMM.
std::size_t gemm_pack_a_narrow_f32_reference(int m, int k, const float* a, int lda, float* packed) {
    return gemm_pack_a_f32_reference(false, m, k, a, lda, packed);
}

void gemm_narrow_f32_reference(int m, int n, int k, const float* packed_a, const float* b, int ldb, float* c, int ldc,
                               const GemmEpilogue& epilogue) {
    gemm_f32_reference(false, false, m, n, k, 1.0f, packed_a, k, b, ldb, 0.0f, c, ldc, epilogue, nullptr);
}

// The reference convolution GEMM reads A plain, as its packed-A GEMM does.
std::size_t gemm_conv3x3_pack_a_f32_reference(int m, int channels, const float* a, float* packed) {
    return gemm_pack_a_f32_reference(false, m, 9 * channels, a, 9 * channels, packed);
}

// The reference's workspace is one image's im2col matrix, k x n.
std::size_t gemm_conv3x3_workspace_f32_reference(int, int channels, int height, int width, int) {
    return static_cast<std::size_t>(9) * channels * height * width;
}

// Image by image: the reference's sums of a column do not depend on the others.
void gemm_conv3x3_f32_reference(int m, int channels, int height, int width, int images, const float* packed_a,
                                const float* x, float* c, const GemmEpilogue& epilogue, float* workspace) {
    const ConvGeometry g{channels, height, width, 3, 1, 1, height, width};
    for (int image = 0; image < images; ++image) {
        im2col(g, x + static_cast<std::size_t>(image) * channels * g.positions(), 1, workspace, 0.0f);
        gemm_f32_reference(false, false, m, g.positions(), g.rows(), 1.0f, packed_a, g.rows(), workspace,
                           g.positions(), 0.0f, c + static_cast<std::size_t>(image) * m * g.positions(), g.positions(),
                           epilogue, nullptr);
    }
}

}  // namespace edgeqc
