// Scalar reference of the GEMM with bf16 products: the operands rounded to bf16 as vcvtne2ps2bf16 rounds them, then
// multiplied by the f32 reference GEMM (whose double sums make it the oracle for any order of f32 additions).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/kernels.hpp"

namespace edgeqc {

void gemm_f32_reference(bool, bool, int, int, int, float, const float*, int, const float*, int, float, float*, int,
                        const GemmEpilogue&, float*);

namespace {

// Round to nearest even on the upper 16 bits; NaN stays NaN (quiet). Subnormal inputs round like the rest here,
// where the instruction flushes them to zero: the tests keep their operands normal.
float round_to_bf16(float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    if (std::isnan(value)) bits |= 0x00400000u;
    else bits += 0x7fffu + ((bits >> 16) & 1u);
    bits &= 0xffff0000u;
    std::memcpy(&value, &bits, sizeof bits);
    return value;
}

// op(X) (rows x depth as the GEMM reads it), rounded, row-major.
std::vector<float> rounded(bool transposed, int rows, int depth, const float* x, int ldx) {
    std::vector<float> out(static_cast<std::size_t>(std::max(rows, 0)) * std::max(depth, 0));
    for (std::ptrdiff_t i = 0; i < rows; ++i)
        for (std::ptrdiff_t p = 0; p < depth; ++p)
            out[static_cast<std::size_t>(i * depth + p)] = round_to_bf16(transposed ? x[p * ldx + i] : x[i * ldx + p]);
    return out;
}

}  // namespace

void gemm_bf16_reference(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a,
                         int lda, const float* b, int ldb, float beta, float* c, int ldc,
                         const GemmEpilogue& epilogue, float*) {
    const std::vector<float> a_rounded = rounded(transpose_a, m, k, a, lda);
    // B as n x k (op(B) transposed), which `rounded` reads with the same loops.
    const std::vector<float> b_rounded = rounded(!transpose_b, n, k, b, ldb);
    gemm_f32_reference(false, true, m, n, k, alpha, a_rounded.data(), k, b_rounded.data(), k, beta, c, ldc, epilogue,
                       nullptr);
}

std::size_t gemm_workspace_bf16_reference(int, int, int, bool) { return 0; }

// The reference "packed" layout is op(A) rounded, row-major m x k.
std::size_t gemm_pack_a_bf16_reference(bool transpose_a, int m, int k, const float* a, int lda, float* packed) {
    const std::size_t floats = static_cast<std::size_t>(std::max(m, 0)) * std::max(k, 0);
    if (packed && floats > 0) {
        const std::vector<float> a_rounded = rounded(transpose_a, m, k, a, lda);
        std::copy(a_rounded.begin(), a_rounded.end(), packed);
    }
    return floats;
}

void gemm_packed_a_bf16_reference(bool transpose_b, int m, int n, int k, float alpha, const float* packed_a,
                                  const float* b, int ldb, float beta, float* c, int ldc,
                                  const GemmEpilogue& epilogue, float* workspace) {
    gemm_bf16_reference(false, transpose_b, m, n, k, alpha, packed_a, k, b, ldb, beta, c, ldc, epilogue, workspace);
}

}  // namespace edgeqc
