// Model rewrites: plain functions from Model to Model, each testable on its own: folding batch norm, quantization
// (given calibrated activation ranges; the calibration itself runs models, optim/calibration.hpp) and pruning
// (given the filters to keep; choosing them is optim/pruning.hpp). Deliberately no file I/O and no compute beyond the rewrite itself.
#pragma once

#include <cstddef>
#include <map>
#include <vector>

#include "engine/model.hpp"

namespace edgeqc {

// Every batch norm folded into the convolution before it: w' = w * gamma / sqrt(var + eps) and
// b' = beta + (b - mean) * gamma / sqrt(var + eps), per output channel. The result has no batch-norm layers (its
// architecture is rewritten and its tensors renumbered) and computes the same function in inference mode. A
// model without batch norm comes back unchanged (moved, not copied). Needs f32 tensors; throws edgeqc::Error
// otherwise.
Model fold_batch_norm(Model model);

// The 7-bit quantization of activations observed in [low, high] (low <= 0 <= high, as a ReLU output or a
// normalised image has): zero point 0 and scale high / 127 when nothing is negative, else an asymmetric grid
// whose zero point is the integer nearest the real 0. A range of zero width gets scale 1.
ActivationQuantization activation_quantization(int layer, float low, float high);

// Post-training static quantization of a model without batch norm: every layer of `inputs` (conv or dense layers,
// each with the quantization of its input activations, in layer order) gets s8 weights, symmetric per output
// channel (scale = max |w| / 127), and an s32 bias of scale weight scale x input scale; every other layer stays
// float (mixed precision). Throws edgeqc::Error for a model with batch norm, quantized layers already, or a layer
// in `inputs` that has no weights.
Model quantize_model(Model model, const std::vector<ActivationQuantization>& inputs);

// Structured pruning: in each conv layer listed in `kept` (by its index in ResolvedArchitecture::layers) only the
// listed filters stay (output channels, ascending, at least one), with their bias and batch-norm channels; the next
// conv or dense layer loses the matching input channels (all of a channel's features after a flatten). The result is
// an ordinary, smaller dense model, its architecture rewritten with the new filter counts; conv layers not listed
// keep every filter. It computes what the original computes with the removed channels' activations set to zero.
// Throws edgeqc::Error for a quantized model ("prune before quantizing"), a listed layer that is not a conv, or a
// channel list that is empty, not strictly ascending or out of range.
Model prune_filters(const Model& model, const std::map<std::size_t, std::vector<int>>& kept);

// PyTorch's BatchNorm2d epsilon, which training and folding both use.
inline constexpr float kBatchNormEpsilon = 1e-5f;

}  // namespace edgeqc
