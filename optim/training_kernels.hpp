// The kernels only training needs (the optimizer's update), kept out of the inference runtime: their own kernel
// list and tables, built like the runtime's (engine/kernels.hpp) and following its choice of arch, so that
// EDGEQC_ARCH and select_kernels() switch them too.
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
    std::string kernels_used;  // "adam_f32 avx2"
    AdamF32 adam_f32;
};

const std::vector<KernelListing<TrainingKernelTable>>& training_kernel_list();
// The table of the runtime's active arch (kernels().name), or each op's best where the arch lists none.
const TrainingKernelTable& training_kernels();
// The scalar reference, and one table per runnable arch (for the tests).
const TrainingKernelTable& reference_training_kernels();
const std::vector<const TrainingKernelTable*>& available_training_kernel_tables();

}  // namespace edgeqc
