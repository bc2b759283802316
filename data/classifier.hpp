// An image in, class probabilities out: the model's preprocessing (decode, resize, enhancement, normalisation)
// followed by its inference plan. The entry point for a camera frame already in memory as well as for a file;
// part of the inference runtime (it links no training code). Not thread-safe: one classifier per thread.
#pragma once

#include <string>
#include <vector>

#include "data/image.hpp"
#include "engine/inference_plan.hpp"
#include "engine/model.hpp"

namespace edgeqc {

struct Prediction {
    int class_index = -1;
    std::vector<float> probabilities;  // one per class
};

class Classifier {
public:
    // threads: the most threads one run uses, 0 for OpenMP's default; max_batch: the most images classify_batch
    // takes. Throws edgeqc::Error when the model cannot be planned.
    // The model is moved into the inference plan (see InferencePlan).
    explicit Classifier(Model model, int threads = 0, int max_batch = 1);
    // A classifier on a plan already built (InferencePlan::sharing_weights gives one per thread at the cost of one).
    explicit Classifier(InferencePlan plan);

    // A decoded image of any size and channel count; the model's input format is applied to it.
    Prediction classify(const Image& image);
    // Decodes the file first; throws edgeqc::Error naming it when it cannot be read or decoded.
    Prediction classify_file(const std::string& path);

    // The two halves of classify, for pipelines that preprocess on one thread and classify batches on another:
    // preprocess writes input_size() floats (C x H x W); classify_batch takes batch such inputs back to back
    // (1 <= batch <= max_batch) and fills predictions[0 .. batch).
    std::size_t input_size() const { return input_.size(); }
    void preprocess(const Image& image, float* input) const;
    void classify_batch(const float* inputs, int batch, Prediction* predictions);

    const ModelDescription& description() const { return plan_.description(); }
    const InferencePlan& plan() const { return plan_; }

private:
    InferencePlan plan_;
    std::vector<float> input_;  // one preprocessed image, C x H x W
};

}  // namespace edgeqc
