// Pseudo-labelling for sparsely annotated data (Lee 2013): each epoch the current model labels the unlabelled
// images it is confident about, and those join training with a loss weight that ramps up over a few epochs,
// so early, less reliable guesses count less. Deliberately no consistency regularisation (FixMatch etc.).
#pragma once

#include <vector>

#include "data/dataset.hpp"

namespace edgeqc {

struct PseudoLabelOptions {
    float threshold = 0.95f;  // top-class probability an image needs to be used
    int start_epoch = 2;      // first epoch that uses pseudo-labels (the model needs some training first)
    int rampup_epochs = 5;    // loss weight (epoch - start + 1) / rampup, capped at 1
    // Cap each class at its share of the labelled images, so one class the model over-predicts cannot swallow
    // the unlabelled set (class-balanced self-training, Zou et al. 2018).
    bool class_balanced = false;
};

// Throws Error naming the flag of the first value out of range.
void validate_pseudo_label_options(const PseudoLabelOptions& options);

// The most pseudo-labels each class may take when they follow the labelled class mix: ceil(unlabelled_count x
// the class's share of the labelled images).
std::vector<std::size_t> class_balanced_caps(const std::vector<LabelledImage>& labelled, int num_classes,
                                             std::size_t unlabelled_count);

// The images whose top probability reaches the threshold, labelled with that class, in unlabelled order.
// probabilities: N x K for the images at indices (into unlabelled) that could be decoded. With caps (one per
// class; empty = none) a class keeps only its caps[k] most confident images.
std::vector<LabelledImage> select_pseudo_labels(const std::vector<LabelledImage>& unlabelled,
                                                const std::vector<std::size_t>& indices,
                                                const std::vector<float>& probabilities, int num_classes,
                                                float threshold, const std::vector<std::size_t>& caps = {});

// The loss weight of pseudo-labelled images in an epoch; 0 before the start epoch.
float pseudo_label_weight(const PseudoLabelOptions& options, int epoch);

}  // namespace edgeqc
