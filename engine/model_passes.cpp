// Batch-norm folding and quantization.
#include "engine/model_passes.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/error.hpp"

namespace edgeqc {

namespace {

// Folding computes on floats: a quantized model has nothing left to fold.
const float* f32_of(const Model& model, const std::string& name) {
    return model.f32_values(name, "batch-norm folding needs a float model");
}

}  // namespace

Model fold_batch_norm(Model model) {
    const ResolvedArchitecture source = model.description.resolve();
    if (std::none_of(source.layers.begin(), source.layers.end(),
                     [](const LayerSpec& l) { return l.kind == LayerKind::BatchNorm; }))
        return model;
    std::vector<LayerSpec> folded_layers;
    std::vector<std::size_t> source_of;  // folded layer -> source layer
    for (std::size_t i = 0; i < source.layers.size(); ++i) {
        if (source.layers[i].kind == LayerKind::BatchNorm) {
            // The grammar only puts batch norm right after a conv; anything else would lose its statistics here.
            if (folded_layers.empty() || folded_layers.back().kind != LayerKind::Conv)
                throw Error("batch norm can only be folded into a convolution right before it");
            folded_layers.back().bias = true;
            continue;
        }
        folded_layers.push_back(source.layers[i]);
        source_of.push_back(i);
    }
    Model folded;
    folded.description = model.description;
    folded.description.architecture = write_architecture(folded_layers);
    const ResolvedArchitecture target = folded.description.resolve();
    for (const TensorSlot& slot : target.tensors) {
        const std::size_t i = source_of[static_cast<std::size_t>(slot.layer)];
        const LayerSpec& layer = source.layers[i];
        const bool batch_norm = i + 1 < source.layers.size() && source.layers[i + 1].kind == LayerKind::BatchNorm;
        TypedTensor out(DataType::F32, slot.shape);
        float* values = out.data<float>();
        if (layer.kind == LayerKind::Conv && batch_norm) {
            const float* gamma = f32_of(model, source.tensor_name(i + 1, TensorRole::Gamma));
            const float* beta = f32_of(model, source.tensor_name(i + 1, TensorRole::Beta));
            const float* mean = f32_of(model, source.tensor_name(i + 1, TensorRole::RunningMean));
            const float* variance = f32_of(model, source.tensor_name(i + 1, TensorRole::RunningVariance));
            const float* weight = f32_of(model, source.tensor_name(i, TensorRole::Weight));
            const float* bias = layer.bias ? f32_of(model, source.tensor_name(i, TensorRole::Bias)) : nullptr;
            const std::size_t per_output = slot.shape.elements() / static_cast<std::size_t>(slot.shape[0]);
            for (std::size_t c = 0; c < static_cast<std::size_t>(slot.shape[0]); ++c) {
                const float scale = gamma[c] / std::sqrt(variance[c] + kBatchNormEpsilon);
                if (slot.role == TensorRole::Weight)
                    for (std::size_t k = 0; k < per_output; ++k) values[c * per_output + k] = weight[c * per_output + k] * scale;
                else
                    values[c] = beta[c] + ((bias ? bias[c] : 0.0f) - mean[c]) * scale;
            }
        } else {
            const float* same = f32_of(model, source.tensor_name(i, slot.role));
            std::copy(same, same + slot.shape.elements(), values);
        }
        folded.tensors.push_back({slot.name, std::move(out)});
    }
    return folded;
}

ActivationQuantization activation_quantization(int layer, float low, float high) {
    low = std::min(low, 0.0f);
    high = std::max(high, 0.0f);
    ActivationQuantization q;
    q.layer = layer;
    if (!(high - low > 0.0f) || !std::isfinite(high - low)) return q;  // all zero (or unusable): scale 1
    q.scale = (high - low) / static_cast<float>(kActivationMax);
    q.zero_point = std::clamp(static_cast<int>(std::lround(-low / q.scale)), 0, kActivationMax);
    return q;
}

Model quantize_model(Model model, const std::vector<ActivationQuantization>& inputs) {
    const ResolvedArchitecture architecture = model.description.resolve();
    if (std::any_of(architecture.layers.begin(), architecture.layers.end(),
                    [](const LayerSpec& l) { return l.kind == LayerKind::BatchNorm; }))
        throw Error("quantization needs batch norm folded first");
    if (!model.activations.empty()) throw Error("the model is already quantized");
    constexpr double kMaxBias = 1 << 30;
    for (const ActivationQuantization& input : inputs) {
        const auto layer = static_cast<std::size_t>(input.layer);
        const std::string weight_name = architecture.tensor_name(layer, TensorRole::Weight);
        if (layer >= architecture.layers.size() || weight_name.empty())
            throw Error("layer " + std::to_string(input.layer) + " has no weights to quantize");
        const TypedTensor& weight = model.tensor(weight_name);
        const float* w = model.f32_values(weight_name, "the model is already quantized");
        const int outputs = weight.shape()[0];
        const std::size_t per_output = weight.elements() / static_cast<std::size_t>(outputs);
        TypedTensor quantized(DataType::S8, weight.shape());
        quantized.scales.resize(static_cast<std::size_t>(outputs));
        std::int8_t* q = quantized.data<std::int8_t>();
        for (std::size_t c = 0; c < static_cast<std::size_t>(outputs); ++c) {
            float largest = 0.0f;
            for (std::size_t k = 0; k < per_output; ++k) largest = std::max(largest, std::abs(w[c * per_output + k]));
            const float scale = largest > 0.0f ? largest / static_cast<float>(kWeightMax) : 1.0f;
            quantized.scales[c] = scale;
            for (std::size_t k = 0; k < per_output; ++k)
                q[c * per_output + k] = static_cast<std::int8_t>(
                    std::clamp(static_cast<int>(std::lround(w[c * per_output + k] / scale)), -kWeightMax, kWeightMax));
        }
        const std::string bias_name = architecture.tensor_name(layer, TensorRole::Bias);
        if (!bias_name.empty()) {
            const float* b = model.f32_values(bias_name, "the model is already quantized");
            TypedTensor bias(DataType::S32, model.tensor(bias_name).shape());
            bias.scales.resize(static_cast<std::size_t>(outputs));
            for (std::size_t c = 0; c < static_cast<std::size_t>(outputs); ++c) {
                bias.scales[c] = quantized.scales[c] * input.scale;
                const double steps = std::nearbyint(static_cast<double>(b[c]) / bias.scales[c]);
                bias.data<std::int32_t>()[c] = static_cast<std::int32_t>(std::clamp(steps, -kMaxBias, kMaxBias));
            }
            model.tensor(bias_name) = std::move(bias);
        }
        model.tensor(weight_name) = std::move(quantized);
        model.activations.push_back(input);
    }
    std::sort(model.activations.begin(), model.activations.end(),
              [](const ActivationQuantization& a, const ActivationQuantization& b) { return a.layer < b.layer; });
    validate_model(model);
    return model;
}

}  // namespace edgeqc
