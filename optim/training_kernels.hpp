// The kernels only training needs (the optimizer's update, the GEMMs of bf16 training), kept out of the inference
// runtime: their own kernel list and tables, built like the runtime's (engine/kernels.hpp) and following its choice
// of arch, so that EDGEQC_ARCH and select_kernels() switch them too.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "engine/kernels.hpp"

namespace edgeqc {

// One Adam (AdamW) step over n parameters; the scalars that depend on the step count come precomputed.
struct AdamStepF32 {
    float beta1, beta2, epsilon;
    float step_size;         // learning rate / (1 - beta1^t)
    float root_correction2;  // sqrt(1 - beta2^t)
    float keep;              // 1 - learning rate * decoupled weight decay
};
using AdamF32 = void (*)(const AdamStepF32& step, std::ptrdiff_t n, float* parameters, const float* gradients,
                         float* first_moment, float* second_moment);

struct TrainingKernelTable {
    std::string name;          // the arch, as the runtime's tables are named
    std::string kernels_used;  // "adam_f32 avx2, gemm_bf16 avx512_bf16"
    AdamF32 adam_f32;
    // The runtime's f32 GEMM contracts (engine/kernels.hpp) with bf16 products: the operands rounded to bf16 (to
    // nearest even), the sums and results in f32.
    GemmF32 gemm_bf16;
    GemmWorkspaceF32 gemm_workspace_bf16;
    GemmPackAF32 gemm_pack_a_bf16;
    GemmPackedAF32 gemm_packed_a_bf16;
};

const std::vector<KernelListing<TrainingKernelTable>>& training_kernel_list();
// The table of the runtime's active arch (kernels().name), or each op's best where the arch lists none.
const TrainingKernelTable& training_kernels();
// `base` with its four f32 GEMM entries replaced by `training`'s bf16-product ones, named after it.
KernelTable with_bf16_products(const KernelTable& base, const TrainingKernelTable& training);
// The active runtime table with its f32 GEMMs replaced by the bf16-product ones, for the layers of a network that
// trains in bf16. Throws edgeqc::Error where this CPU has no bf16 instructions (only the scalar reference, hundreds
// of times slower, would compute them) unless the scalar arch was chosen on purpose (EDGEQC_ARCH=scalar, the tests).
const KernelTable& bf16_product_kernels();
// The scalar reference, and one table per runnable arch (for the tests).
const TrainingKernelTable& reference_training_kernels();
const std::vector<const TrainingKernelTable*>& available_training_kernel_tables();

}  // namespace edgeqc
