// A model as data: its description (architecture, class names, input format) and its named, typed tensors.
// Everything that rewrites a model (batch-norm folding here; quantization and pruning later) is a function from
// Model to Model (engine/model_passes.hpp); the model file reads and writes it, the inference plan runs it and the
// training side converts its network to and from it. Deliberately no compute and no training state here.
#pragma once

#include <string>
#include <vector>

#include "engine/architecture.hpp"
#include "engine/input_format.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

struct ModelDescription {
    std::string architecture;  // a spec string (engine/architecture.hpp)
    std::vector<std::string> class_names;
    InputFormat input;
    std::string writer_version;  // the edgeqc version that wrote the file (filled on load; saving writes this build's)

    Shape input_shape() const { return {input.channels, input.height, input.width}; }
    int num_classes() const { return static_cast<int>(class_names.size()); }
    // The architecture resolved for this input and class count; throws edgeqc::Error when it does not fit.
    ResolvedArchitecture resolve() const;
};

struct NamedTensor {
    std::string name;  // a TensorSlot name, "<layer>.<role>"
    TypedTensor tensor;
};

// How the activations entering a quantized layer (a conv or dense layer with s8 weights) are stored: 7-bit
// integers q, real value = scale * (q - zero_point).
struct ActivationQuantization {
    int layer = 0;  // index into ResolvedArchitecture::layers
    float scale = 1.0f;
    int zero_point = 0;  // 0 after a ReLU; the network input, which has negative values, needs more
    bool operator==(const ActivationQuantization&) const = default;
};

struct Model {
    ModelDescription description;
    std::vector<NamedTensor> tensors;  // in the order of ResolvedArchitecture::tensors
    std::vector<ActivationQuantization> activations;  // one per quantized layer, by layer; empty for float models

    // Throws edgeqc::Error naming the tensor when the model has none of that name.
    const TypedTensor& tensor(const std::string& name) const;
    TypedTensor& tensor(const std::string& name);
    bool has_tensor(const std::string& name) const;
    // The values of an f32 tensor; throws edgeqc::Error "tensor 'x' is s8; <why_float>" for any other type.
    const float* f32_values(const std::string& name, const std::string& why_float) const;
    // Whether layer `layer` runs in int8 (its weight is s8), and the quantization of its input if so.
    bool is_quantized(const ResolvedArchitecture& architecture, std::size_t layer) const;
    const ActivationQuantization& input_quantization(std::size_t layer) const;
};

// Whether every value is finite (no NaN, no infinity).
bool all_finite(const float* values, std::size_t count);

// Throws edgeqc::Error unless the model's tensors are exactly those its resolved architecture names, with the
// shapes it needs, in element types their roles allow (f32 everywhere; s8 weights and s32 biases with one scale
// per output channel), finite, with non-negative running variances; and unless its quantized layers are
// consistent: s8 weights within [-127, 127] with positive finite scales, an s32 bias of scale weight scale x
// input scale and magnitude at most 2^30, an activation quantization for exactly these layers with a positive
// finite scale and a zero point in 0..127, and no batch norm left. Messages start with what is wrong ("tensor
// '3.weight' holds NaN ..."), for the caller to say which model.
void validate_model(const Model& model);

}  // namespace edgeqc
