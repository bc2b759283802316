// Lookup and validation of models.
#include "engine/model.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/error.hpp"

namespace edgeqc {

ResolvedArchitecture ModelDescription::resolve() const {
    validate_input_format(input);
    return resolve_architecture(architecture, input_shape(), num_classes());
}

bool Model::has_tensor(const std::string& name) const {
    return std::any_of(tensors.begin(), tensors.end(), [&name](const NamedTensor& t) { return t.name == name; });
}

const TypedTensor& Model::tensor(const std::string& name) const {
    for (const NamedTensor& t : tensors)
        if (t.name == name) return t.tensor;
    throw Error("the model has no tensor '" + name + "'");
}

TypedTensor& Model::tensor(const std::string& name) {
    return const_cast<TypedTensor&>(static_cast<const Model&>(*this).tensor(name));
}

const float* Model::f32_values(const std::string& name, const std::string& why_float) const {
    const TypedTensor& t = tensor(name);
    if (t.type() != DataType::F32) throw Error("tensor '" + name + "' is " + data_type_name(t.type()) + "; " + why_float);
    return t.data<float>();
}

bool Model::is_quantized(const ResolvedArchitecture& architecture, std::size_t layer) const {
    const std::string weight = architecture.tensor_name(layer, TensorRole::Weight);
    return !weight.empty() && tensor(weight).type() == DataType::S8;
}

const ActivationQuantization& Model::input_quantization(std::size_t layer) const {
    for (const ActivationQuantization& a : activations)
        if (a.layer == static_cast<int>(layer)) return a;
    throw Error("layer " + std::to_string(layer) + " has no activation quantization");
}

bool all_finite(const float* values, std::size_t count) {
    return std::all_of(values, values + count, [](float v) { return std::isfinite(v); });
}

namespace {

bool type_allowed(TensorRole role, DataType type) {
    if (type == DataType::F32) return true;
    if (role == TensorRole::Weight) return type == DataType::S8;
    if (role == TensorRole::Bias) return type == DataType::S32;
    return false;
}

bool positive_finite(float v) { return std::isfinite(v) && v > 0.0f; }

// The checks of quantized layers validate_model promises; the plan relies on every one of them (a -128 weight or
// a huge bias would overflow the kernels' int16 pair sums or int32 accumulators).
void validate_quantization(const Model& model, const ResolvedArchitecture& architecture) {
    constexpr std::int32_t kMaxBias = 1 << 30;
    std::size_t quantized_layers = 0;
    for (std::size_t i = 0; i < architecture.layers.size(); ++i) {
        if (!model.is_quantized(architecture, i)) continue;
        ++quantized_layers;
        const std::string layer = "layer " + std::to_string(i);
        if (std::any_of(architecture.layers.begin(), architecture.layers.end(),
                        [](const LayerSpec& l) { return l.kind == LayerKind::BatchNorm; }))
            throw Error(layer + " is quantized but the model still has batch norm (quantize folds it first)");
        const TypedTensor& weight = model.tensor(architecture.tensor_name(i, TensorRole::Weight));
        const std::int8_t* w = weight.data<std::int8_t>();
        if (std::any_of(w, w + weight.elements(), [](std::int8_t v) { return v < -kWeightMax; }))
            throw Error(layer + " has a weight of -128 (quantized weights stay within [-127, 127])");
        if (!std::all_of(weight.scales.begin(), weight.scales.end(), positive_finite))
            throw Error(layer + " has a weight scale that is zero, negative, NaN or infinite");
        const auto input = std::find_if(model.activations.begin(), model.activations.end(),
                                        [i](const ActivationQuantization& a) { return a.layer == static_cast<int>(i); });
        if (input == model.activations.end()) throw Error(layer + " is quantized but has no input activation scale");
        if (!positive_finite(input->scale) || input->zero_point < 0 || input->zero_point > kActivationMax)
            throw Error(layer + " has an input activation scale or zero point out of range");
        const std::string bias_name = architecture.tensor_name(i, TensorRole::Bias);
        if (bias_name.empty()) continue;
        const TypedTensor& bias = model.tensor(bias_name);
        if (bias.type() != DataType::S32) throw Error(layer + " has s8 weights but a bias that is not s32");
        const std::int32_t* b = bias.data<std::int32_t>();
        if (std::any_of(b, b + bias.elements(), [](std::int32_t v) { return v < -kMaxBias || v > kMaxBias; }))
            throw Error(layer + " has a bias beyond 2^30 in magnitude");
        for (std::size_t c = 0; c < bias.scales.size(); ++c)
            if (bias.scales[c] != weight.scales[c] * input->scale)
                throw Error(layer + "'s bias scale is not its weight scale times its input scale");
    }
    for (const TensorSlot& slot : architecture.tensors) {
        if (slot.role == TensorRole::Bias && model.tensor(slot.name).type() == DataType::S32 &&
            !model.is_quantized(architecture, static_cast<std::size_t>(slot.layer)))
            throw Error("tensor '" + slot.name + "' is s32 but its layer's weight is not s8");
    }
    if (model.activations.size() != quantized_layers)
        throw Error("it has activation scales for layers that are not quantized");
    for (std::size_t a = 1; a < model.activations.size(); ++a)
        if (model.activations[a].layer <= model.activations[a - 1].layer)
            throw Error("its activation scales are not in layer order");
}

}  // namespace

void validate_model(const Model& model) {
    const ResolvedArchitecture architecture = model.description.resolve();
    if (model.tensors.size() != architecture.tensors.size())
        throw Error("it holds " + std::to_string(model.tensors.size()) + " tensors where its architecture needs " +
                    std::to_string(architecture.tensors.size()));
    for (const TensorSlot& slot : architecture.tensors) {
        if (!model.has_tensor(slot.name)) throw Error("it lacks the tensor '" + slot.name + "'");
        const TypedTensor& t = model.tensor(slot.name);
        const std::string name = "tensor '" + slot.name + "'";
        if (t.shape() != slot.shape) throw Error(name + " does not have the shape " + slot.shape.str() + " its architecture needs");
        if (!type_allowed(slot.role, t.type()))
            throw Error(name + " has the element type " + data_type_name(t.type()) + ", which its role does not allow");
        const bool quantized = t.type() != DataType::F32;
        if (quantized ? t.scales.size() != static_cast<std::size_t>(slot.shape[0]) : !t.scales.empty())
            throw Error(name + " needs " + (quantized ? "one scale per output channel" : "no scales"));
        if (!all_finite(t.scales.data(), t.scales.size()) || (!quantized && !all_finite(t.data<float>(), t.elements())))
            throw Error(name + " holds NaN or infinite values");
        if (slot.role == TensorRole::RunningVariance &&
            !std::all_of(t.data<float>(), t.data<float>() + t.elements(), [](float v) { return v >= 0.0f; }))
            throw Error(name + " holds a negative variance");
    }
    validate_quantization(model, architecture);
}

}  // namespace edgeqc
