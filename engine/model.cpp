// Lookup and validation of models.
#include "engine/model.hpp"

#include <algorithm>
#include <cmath>
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
}

}  // namespace edgeqc
