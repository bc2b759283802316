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

std::vector<std::size_t> class_balanced_caps(const std::vector<LabelledImage>& labelled, int num_classes,
                                             std::size_t unlabelled_count) {
    std::vector<std::size_t> counts(static_cast<std::size_t>(num_classes), 0);
    for (const LabelledImage& image : labelled) ++counts.at(static_cast<std::size_t>(image.label));
    std::vector<std::size_t> caps(counts.size(), 0);
    if (labelled.empty()) return caps;
    for (std::size_t k = 0; k < counts.size(); ++k)
        caps[k] = (unlabelled_count * counts[k] + labelled.size() - 1) / labelled.size();
    return caps;
}

std::vector<LabelledImage> select_pseudo_labels(const std::vector<LabelledImage>& unlabelled,
                                                const std::vector<std::size_t>& indices,
                                                const std::vector<float>& probabilities, int num_classes,
                                                float threshold, const std::vector<std::size_t>& caps) {
    const auto classes = static_cast<std::size_t>(num_classes);
    if (probabilities.size() != indices.size() * classes) throw std::logic_error("select_pseudo_labels: sizes disagree");
    if (!caps.empty() && caps.size() != classes) throw std::logic_error("select_pseudo_labels: one cap per class");
    struct Candidate {
        std::size_t row;
        int label;
        float confidence;
    };
    std::vector<Candidate> candidates;
    for (std::size_t n = 0; n < indices.size(); ++n) {
        const float* row = probabilities.data() + n * classes;
        const float* top = std::max_element(row, row + classes);
        if (*top >= threshold) candidates.push_back({n, static_cast<int>(top - row), *top});
    }
    if (!caps.empty()) {
        // Most confident first (ties by position, so the choice is deterministic), then back to unlabelled order.
        std::stable_sort(candidates.begin(), candidates.end(),
                         [](const Candidate& a, const Candidate& b) { return a.confidence > b.confidence; });
        std::vector<std::size_t> taken(classes, 0);
        std::erase_if(candidates, [&](const Candidate& c) {
            const auto k = static_cast<std::size_t>(c.label);
            return taken[k]++ >= caps[k];
        });
        std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) { return a.row < b.row; });
    }
    std::vector<LabelledImage> selected;
    selected.reserve(candidates.size());
    for (const Candidate& c : candidates) selected.push_back({unlabelled.at(indices[c.row]).path, c.label});
    return selected;
}

float pseudo_label_weight(const PseudoLabelOptions& options, int epoch) {
    if (epoch < options.start_epoch) return 0.0f;
    return std::min(1.0f, static_cast<float>(epoch - options.start_epoch + 1) / static_cast<float>(options.rampup_epochs));
}

}  // namespace edgeqc
