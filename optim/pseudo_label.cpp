// Confidence selection and the ramp-up weight of pseudo-labels.
#include "optim/pseudo_label.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/error.hpp"

namespace edgeqc {

void validate_pseudo_label_options(const PseudoLabelOptions& o) {
    if (!(o.threshold > 0.0f && o.threshold <= 1.0f)) throw Error("--pseudo-threshold must be in (0, 1]");
    if (o.start_epoch < 1) throw Error("--pseudo-start must be an epoch number (1 or more)");
    if (o.rampup_epochs < 1) throw Error("--pseudo-rampup must be at least 1 epoch");
}

std::vector<LabelledImage> select_pseudo_labels(const std::vector<LabelledImage>& unlabelled,
                                                const std::vector<std::size_t>& indices,
                                                const std::vector<float>& probabilities, int num_classes,
                                                float threshold) {
    const auto classes = static_cast<std::size_t>(num_classes);
    if (probabilities.size() != indices.size() * classes) throw std::logic_error("select_pseudo_labels: sizes disagree");
    std::vector<LabelledImage> selected;
    for (std::size_t n = 0; n < indices.size(); ++n) {
        const float* row = probabilities.data() + n * classes;
        const float* top = std::max_element(row, row + classes);
        if (*top >= threshold) selected.push_back({unlabelled.at(indices[n]).path, static_cast<int>(top - row)});
    }
    return selected;
}

float pseudo_label_weight(const PseudoLabelOptions& options, int epoch) {
    if (epoch < options.start_epoch) return 0.0f;
    return std::min(1.0f, static_cast<float>(epoch - options.start_epoch + 1) / static_cast<float>(options.rampup_epochs));
}

}  // namespace edgeqc
