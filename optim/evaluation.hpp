// Running a network over every batch of a loader in inference mode and collecting the probabilities, shared by
// validation during training and by `edgeqc eval`; and `edgeqc predict`'s one image at a time.
#pragma once

#include <string>
#include <vector>

#include "data/loader.hpp"
#include "engine/metrics.hpp"
#include "engine/model.hpp"
#include "layers/network.hpp"

namespace edgeqc {

struct InferenceResult {
    std::vector<int> labels;           // N, as the loader provided them
    std::vector<std::size_t> indices;  // N, into the loader's image list (corrupt images are skipped)
    std::vector<float> probabilities;  // N x K
    double mean_loss = 0.0;            // cross-entropy against the labels
    double forward_seconds = 0.0;      // time spent in forward passes only (no decoding)
};

// progress_label: when not empty, a progress bar with this label is drawn.
InferenceResult run_inference(Network& network, BatchLoader& loader, const std::string& progress_label = {});

// `edgeqc eval`: the model (batch norm folded) over a labelled folder whose class folders are model classes.
struct Evaluation {
    ClassificationReport report;
    std::vector<std::string> image_paths;  // N, the images evaluated (what the report's gallery shows)
    std::vector<int> labels;               // N
    std::vector<float> probabilities;      // N x K
    double milliseconds_per_image = 0.0;  // forward pass only, at the given batch size
    int batch_size = 1;
    std::size_t skipped = 0;  // corrupt images skipped
};
Evaluation evaluate_folder(const Model& model, const std::string& data_dir, int batch_size, bool strict);
// The same over a list of labelled images (e.g. a validation split); what names them in errors.
Evaluation evaluate_images(const Model& model, const std::vector<LabelledImage>& images, int batch_size, bool strict,
                           const std::string& what);

// `edgeqc predict`: one image at a time through the folded network.
struct Prediction {
    int class_index = -1;
    std::vector<float> probabilities;  // one per class
};
class Predictor {
public:
    explicit Predictor(const Model& model);
    // Throws edgeqc::Error when the image cannot be read or decoded.
    Prediction predict(const std::string& image_path);

private:
    InputFormat input_;
    std::unique_ptr<Network> network_;
    Tensor batch_, probabilities_;
};

}  // namespace edgeqc
