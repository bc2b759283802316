// Model rewrites: plain functions from Model to Model, each testable on its own. Folding batch norm is the first;
// quantization and pruning join it here. Deliberately no file I/O and no compute beyond the rewrite itself.
#pragma once

#include "engine/model.hpp"

namespace edgeqc {

// Every batch norm folded into the convolution before it: w' = w * gamma / sqrt(var + eps) and
// b' = beta + (b - mean) * gamma / sqrt(var + eps), per output channel. The result has no batch-norm layers (its
// architecture is rewritten and its tensors renumbered) and computes the same function in inference mode. A
// model without batch norm comes back unchanged (moved, not copied). Needs f32 tensors; throws edgeqc::Error
// otherwise.
Model fold_batch_norm(Model model);

// PyTorch's BatchNorm2d epsilon, which training and folding both use.
inline constexpr float kBatchNormEpsilon = 1e-5f;

}  // namespace edgeqc
