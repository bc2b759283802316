// The narrow interface through which layers reach their compute kernels, chosen once at start-up.
// Layers call kernels() and never look at CPU features; a faster implementation is added by filling
// another KernelTable, not by touching layer code.
#pragma once

#include <string>
#include <vector>

namespace edgeqc {

// C = alpha * op(A) * op(B) + beta * C, all row-major. op(A) is m x k, op(B) is k x n, C is m x n.
// lda/ldb/ldc are the row strides of A, B and C as stored (before the transpose is applied).
using GemmF32 = void (*)(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha,
                         const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);

struct KernelTable {
    const char* name;     // shown by `edgeqc --version`
    GemmF32 gemm_f32;
};

// The reference table: plain loops, the oracle every faster kernel is tested against.
const KernelTable& reference_kernels();
// Every table this build carries, best first; the first one the CPU can run is the default.
const std::vector<const KernelTable*>& available_kernel_tables();
// The active table. EDGEQC_ARCH=<name> in the environment forces a table (e.g. EDGEQC_ARCH=scalar).
const KernelTable& kernels();
// Switches the active table by name (tests use it to run both paths); throws edgeqc::Error if unknown.
void select_kernels(const std::string& name);

}  // namespace edgeqc
