// Batch-norm folding, quantization and filter pruning.
#include "engine/model_passes.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <string>

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

namespace {

std::vector<int> all_units(int count) {
    std::vector<int> units(static_cast<std::size_t>(count));
    std::iota(units.begin(), units.end(), 0);
    return units;
}

// Refuses a list of filters to keep that is empty, not strictly ascending or outside [0, filters).
void check_kept_filters(std::size_t layer, const std::vector<int>& filters, int count) {
    const std::string where = "pruning layer " + std::to_string(layer) + ": ";
    if (filters.empty()) throw Error(where + "at least one filter must stay");
    for (std::size_t i = 0; i < filters.size(); ++i) {
        if (filters[i] < 0 || filters[i] >= count)
            throw Error(where + "filter " + std::to_string(filters[i]) + " does not exist (the layer has " +
                        std::to_string(count) + ")");
        if (i > 0 && filters[i] <= filters[i - 1]) throw Error(where + "the filters to keep must be strictly ascending");
    }
}

}  // namespace

Model prune_filters(const Model& model, const std::map<std::size_t, std::vector<int>>& kept) {
    for (const NamedTensor& t : model.tensors)
        if (t.tensor.type() != DataType::F32)
            throw Error("tensor '" + t.name + "' is " + data_type_name(t.tensor.type()) +
                        ": prune before quantizing (prune the float model, then quantize the pruned one)");
    const ResolvedArchitecture source = model.description.resolve();
    for (const auto& [layer, filters] : kept) {
        if (layer >= source.layers.size() || source.layers[layer].kind != LayerKind::Conv)
            throw Error("pruning layer " + std::to_string(layer) + ": only convolutions lose filters");
        check_kept_filters(layer, filters, source.layers[layer].units);
    }
    // For every layer, which units of the source's tensor enter it (channels of an image, or features after a
    // flatten) and which of its own outputs stay.
    std::vector<std::vector<int>> inputs(source.layers.size()), outputs(source.layers.size());
    std::vector<LayerSpec> layers = source.layers;
    std::vector<int> flowing = all_units(source.input[0]);
    for (std::size_t i = 0; i < source.layers.size(); ++i) {
        inputs[i] = flowing;
        const LayerSpec& layer = source.layers[i];
        if (layer.kind == LayerKind::Conv) {
            const auto listed = kept.find(i);
            flowing = listed != kept.end() ? listed->second : all_units(layer.units);
            layers[i].units = static_cast<int>(flowing.size());
        } else if (layer.kind == LayerKind::Dense) {
            flowing = all_units(static_cast<int>(source.outputs[i][0]));
        } else if (layer.kind == LayerKind::Flatten) {
            const Shape& image = i == 0 ? source.input : source.outputs[i - 1];
            const int plane = static_cast<int>(image.elements() / static_cast<std::size_t>(image[0]));
            std::vector<int> features;
            for (const int channel : flowing)
                for (int j = 0; j < plane; ++j) features.push_back(channel * plane + j);
            flowing = std::move(features);
        }  // batch norm, ReLU, pooling and dropout keep their channels
        outputs[i] = flowing;
    }

    Model pruned;
    pruned.description = model.description;
    pruned.description.architecture = write_architecture(layers);
    const ResolvedArchitecture target = pruned.description.resolve();
    if (target.layers.size() != source.layers.size())
        throw Error("pruning changed the layer list of '" + model.description.architecture + "'");
    for (const TensorSlot& slot : target.tensors) {
        const std::size_t i = static_cast<std::size_t>(slot.layer);
        const LayerKind kind = source.layers[i].kind;
        const std::string& name = source.tensor_name(i, slot.role);
        const float* values = model.f32_values(name, "pruning needs a float model");
        const Shape& original = model.tensor(name).shape();
        TypedTensor out(DataType::F32, slot.shape);
        float* pruned_values = out.data<float>();
        // Batch norm's tensors follow its input channels; a conv's or dense layer's bias its outputs; a weight both.
        const std::vector<int>& rows = kind == LayerKind::BatchNorm ? inputs[i] : outputs[i];
        if (slot.role == TensorRole::Weight) {
            const std::vector<int>& columns = inputs[i];
            const std::size_t source_row = original.elements() / static_cast<std::size_t>(original[0]);
            const std::size_t block = source_row / static_cast<std::size_t>(original[1]);  // k x k, or 1 for dense
            for (std::size_t r = 0; r < rows.size(); ++r)
                for (std::size_t c = 0; c < columns.size(); ++c)
                    std::copy_n(values + static_cast<std::size_t>(rows[r]) * source_row +
                                    static_cast<std::size_t>(columns[c]) * block,
                                block, pruned_values + (r * columns.size() + c) * block);
        } else {
            for (std::size_t r = 0; r < rows.size(); ++r) pruned_values[r] = values[rows[r]];
        }
        pruned.tensors.push_back({slot.name, std::move(out)});
    }
    return pruned;
}

}  // namespace edgeqc
