// Batch-norm folding.
#include "engine/model_passes.hpp"

#include <algorithm>
#include <cmath>

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

}  // namespace edgeqc
