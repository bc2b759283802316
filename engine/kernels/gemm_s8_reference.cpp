// Scalar reference int8 GEMM: the fallback path and the oracle every arch's int8 GEMM must equal bit for bit.
#include <cstddef>
#include <cstdint>

#include "engine/kernels/gemm_s8.hpp"

namespace edgeqc {

// The reference "packed" layout is plain A, row-major m x k.
std::size_t gemm_pack_a_s8_reference(int m, int k, const std::int8_t* a, int lda, std::int8_t* packed) {
    if (m <= 0 || k <= 0) return 0;
    if (packed)
        for (std::ptrdiff_t i = 0; i < m; ++i)
            for (std::ptrdiff_t p = 0; p < k; ++p) packed[i * k + p] = a[i * lda + p];
    return static_cast<std::size_t>(m) * k;
}

std::size_t gemm_workspace_s8_reference(int, int, int) { return 0; }

void gemm_packed_a_s8_reference(bool transpose_b, int m, int n, int k, const std::int8_t* packed_a,
                                const std::uint8_t* b, int ldb, const S8GemmEpilogue& epilogue, unsigned char*) {
#pragma omp parallel for schedule(static)
    for (std::ptrdiff_t i = 0; i < m; ++i)
        for (std::ptrdiff_t j = 0; j < n; ++j) {
            std::int32_t sum = 0;
            for (std::ptrdiff_t p = 0; p < k; ++p)
                sum += packed_a[i * k + p] * (transpose_b ? b[j * ldb + p] : b[p * ldb + j]);
            s8_gemm_detail::finish_sums(&sum, 1, static_cast<int>(i), static_cast<int>(j), epilogue);
        }
}

}  // namespace edgeqc
