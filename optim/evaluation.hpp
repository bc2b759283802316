// Classifying every image of a loader and collecting the probabilities: the trainable network in inference mode
// (validation and pseudo-labelling during training), or a model's inference plan (`edgeqc eval`, reports).
#pragma once

#include <string>
#include <vector>

#include "data/loader.hpp"
#include "engine/inference_plan.hpp"
#include "engine/metrics.hpp"
#include "engine/model.hpp"
#include "layers/network.hpp"
#include "optim/progress_observer.hpp"

namespace edgeqc {

struct InferenceResult {
    std::vector<int> labels;           // N, as the loader provided them
    std::vector<std::size_t> indices;  // N, into the loader's image list (corrupt images are skipped)
    std::vector<float> probabilities;  // N x K
    double mean_loss = 0.0;            // cross-entropy against the labels
    double forward_seconds = 0.0;      // time spent in forward passes only (no decoding)
};

// progress_label: when not empty, progress is reported to the observer under this task name. The network runs in inference mode;
// the plan's max_batch must hold the loader's batches.
InferenceResult run_inference(Network& network, BatchLoader& loader, const std::string& progress_label = {},
                              ProgressObserver& observer = silent_observer());
InferenceResult run_inference(InferencePlan& plan, BatchLoader& loader, const std::string& progress_label = {},
                              ProgressObserver& observer = silent_observer());

// `edgeqc eval`: the model's inference plan over a labelled folder whose class folders are model classes.
struct Evaluation {
    ClassificationReport report;
    std::vector<std::string> image_paths;  // N, the images evaluated (what the report's gallery shows)
    std::vector<int> labels;               // N
    std::vector<float> probabilities;      // N x K
    double milliseconds_per_image = 0.0;  // forward pass only, at the given batch size
    int batch_size = 1;
    std::size_t skipped = 0;  // corrupt images skipped
};
// Corrupt images are skipped (or, strict, an error) and reported to the observer as warnings.
Evaluation evaluate_folder(const Model& model, const std::string& data_dir, int batch_size, bool strict,
                           ProgressObserver& observer = silent_observer());
// The same over a list of labelled images (e.g. a validation split); what names them in errors.
Evaluation evaluate_images(const Model& model, const std::vector<LabelledImage>& images, int batch_size, bool strict,
                           const std::string& what, ProgressObserver& observer = silent_observer());

}  // namespace edgeqc
