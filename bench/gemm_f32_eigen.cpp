// GEMM through Eigen's blocked, OpenMP-threaded product: the outside reference the kernel benchmark compares
// edgeqc's own GEMM with (it was edgeqc's fast path before the xsimd kernels). Ignores the epilogue.
#include <Eigen/Core>

#include "engine/kernels.hpp"

namespace edgeqc {

namespace {
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMajor, 0, Eigen::OuterStride<>>;
using Map = Eigen::Map<RowMajor, 0, Eigen::OuterStride<>>;
}  // namespace

void gemm_f32_eigen(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a,
                    int lda, const float* b, int ldb, float beta, float* c, int ldc, const GemmEpilogue&, float*) {
    Map out(c, m, n, Eigen::OuterStride<>(ldc));
    if (beta == 0.0f) out.setZero();
    else if (beta != 1.0f) out *= beta;
    if (k == 0) return;
    const ConstMap a_stored(a, transpose_a ? k : m, transpose_a ? m : k, Eigen::OuterStride<>(lda));
    const ConstMap b_stored(b, transpose_b ? n : k, transpose_b ? k : n, Eigen::OuterStride<>(ldb));
    if (!transpose_a && !transpose_b) out.noalias() += alpha * a_stored * b_stored;
    else if (transpose_a && !transpose_b) out.noalias() += alpha * a_stored.transpose() * b_stored;
    else if (!transpose_a && transpose_b) out.noalias() += alpha * a_stored * b_stored.transpose();
    else out.noalias() += alpha * a_stored.transpose() * b_stored.transpose();
}

}  // namespace edgeqc
