// Preprocessing then the plan, one image at a time.
#include "data/classifier.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "data/preprocess.hpp"
#include "engine/error.hpp"

namespace edgeqc {

Classifier::Classifier(Model model, int threads, int max_batch)
    : Classifier(InferencePlan(std::move(model), max_batch, threads)) {}

Classifier::Classifier(InferencePlan plan) : plan_(std::move(plan)), input_(input_floats(plan_.description().input)) {}

void Classifier::preprocess(const Image& image, float* input) const {
    preprocess_into(image, plan_.description().input, input);
}

void Classifier::classify_batch(const float* inputs, int batch, Prediction* predictions) {
    const float* probabilities = plan_.probabilities(inputs, batch);
    const auto classes = static_cast<std::size_t>(plan_.num_classes());
    for (int b = 0; b < batch; ++b) {
        const float* row = probabilities + static_cast<std::size_t>(b) * classes;
        if (!std::all_of(row, row + classes, [](float p) { return std::isfinite(p); }))  // never printed as "nan"
            throw Error("the model's output is not a number for this input: its weights or input normalisation are damaged");
        Prediction& p = predictions[b];
        p.probabilities.assign(row, row + classes);
        p.class_index = static_cast<int>(std::max_element(row, row + classes) - row);
    }
}

Prediction Classifier::classify(const Image& image) {
    preprocess(image, input_.data());
    Prediction prediction;
    classify_batch(input_.data(), 1, &prediction);
    return prediction;
}

Prediction Classifier::classify_file(const std::string& path) { return classify(decode_image_file(path)); }

}  // namespace edgeqc
