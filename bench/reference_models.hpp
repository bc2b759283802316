// The benchmarks' models of a network: He-initialised weights with batch norm folded, and the same quantized to
// int8 with min-max calibration on random inputs. Speed does not depend on the weights, so no training is needed.
#pragma once

#include <string>
#include <vector>

#include "engine/inference_plan.hpp"
#include "engine/model_passes.hpp"
#include "engine/rng.hpp"
#include "layers/network.hpp"
#include "optim/calibration.hpp"

namespace edgeqc::bench {

struct ReferenceModels {
    Model folded;     // float, batch norm folded
    Model quantized;  // int8
};

inline ReferenceModels reference_models(const std::string& architecture, int height, int width,
                                        const std::vector<std::string>& class_names) {
    ModelDescription description;
    description.architecture = architecture;
    description.class_names = class_names;
    description.input.height = height;
    description.input.width = width;
    Network network(architecture, Shape{1, height, width}, static_cast<int>(class_names.size()));
    network.initialize(InitScheme::He, 1);
    ReferenceModels models{fold_batch_norm(network.to_model(description)), {}};
    const int batch = 32;
    Rng rng(2);
    std::vector<float> images(static_cast<std::size_t>(batch) * height * width);
    for (float& v : images) v = rng.normal();
    InferencePlan calibration_plan(models.folded, batch);
    std::vector<ActivationQuantization> inputs;
    for (const ActivationHistogram& h : collect_activation_statistics(calibration_plan, images.data(), batch))
        inputs.push_back(calibrated_quantization(h, CalibrationMethod::MinMax));
    models.quantized = quantize_model(models.folded, inputs);
    return models;
}

}  // namespace edgeqc::bench
