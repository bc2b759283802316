// Preprocessing then the plan, one image at a time.
#include "data/classifier.hpp"

#include <algorithm>
#include <utility>

#include "data/preprocess.hpp"

namespace edgeqc {

Classifier::Classifier(Model model, int threads)
    : plan_(std::move(model), 1, threads), input_(input_floats(plan_.description().input)) {}

Prediction Classifier::classify(const Image& image) {
    preprocess_into(image, plan_.description().input, input_.data());
    const float* probabilities = plan_.probabilities(input_.data(), 1);
    Prediction prediction;
    prediction.probabilities.assign(probabilities, probabilities + plan_.num_classes());
    prediction.class_index = static_cast<int>(
        std::max_element(prediction.probabilities.begin(), prediction.probabilities.end()) - prediction.probabilities.begin());
    return prediction;
}

Prediction Classifier::classify_file(const std::string& path) { return classify(decode_image_file(path)); }

}  // namespace edgeqc
