// Inference over a loader, and one image at a time.
#include "optim/evaluation.hpp"

#include <algorithm>
#include <chrono>

#include "data/dataset.hpp"
#include "data/image.hpp"
#include "engine/error.hpp"
#include "engine/progress.hpp"
#include "layers/softmax_cross_entropy.hpp"

namespace edgeqc {

InferenceResult run_inference(Network& network, BatchLoader& loader, const std::string& progress_label) {
    InferenceResult result;
    loader.start_epoch(0);
    Batch batch;
    Tensor probabilities;
    double loss_sum = 0.0;
    ProgressBar progress(progress_label, loader.size(), "img");
    while (loader.next(batch)) {
        const auto start = std::chrono::steady_clock::now();
        const Tensor& logits = network.forward(batch.images, Mode::Infer);
        result.forward_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        softmax(logits, probabilities);
        loss_sum += softmax_cross_entropy(logits, batch.labels, {}, nullptr) * static_cast<double>(batch.labels.size());
        result.labels.insert(result.labels.end(), batch.labels.begin(), batch.labels.end());
        result.indices.insert(result.indices.end(), batch.indices.begin(), batch.indices.end());
        result.probabilities.insert(result.probabilities.end(), probabilities.data(),
                                    probabilities.data() + probabilities.size());
        if (!progress_label.empty()) progress.update(result.labels.size() + loader.skipped());
    }
    progress.finish();
    if (!result.labels.empty()) result.mean_loss = loss_sum / static_cast<double>(result.labels.size());
    return result;
}

Evaluation evaluate_folder(const Model& model, const std::string& data_dir, int batch_size, bool strict) {
    const FolderScan scan = scan_with_classes(data_dir, model.description.class_names);
    if (scan.images.empty()) throw Error("'" + data_dir + "' holds no images in folders named after the model's classes");
    return evaluate_images(model, scan.images, batch_size, strict, "'" + data_dir + "'");
}

Evaluation evaluate_images(const Model& model, const std::vector<LabelledImage>& images, int batch_size, bool strict,
                           const std::string& what) {
    if (batch_size < 1) throw Error("--batch must be at least 1");
    const std::unique_ptr<Network> network = inference_network(model);
    BatchLoader loader(images, model.description.input, {.batch_size = batch_size, .shuffle = false, .strict = strict, .augment = {}});
    const InferenceResult result = run_inference(*network, loader, "evaluating");
    if (result.labels.empty()) throw Error("no image in " + what + " could be decoded");
    Evaluation evaluation;
    evaluation.report = classification_report(result.labels, result.probabilities, model.description.class_names);
    for (std::size_t index : result.indices) evaluation.image_paths.push_back(images[index].path);
    evaluation.labels = result.labels;
    evaluation.probabilities = result.probabilities;
    evaluation.milliseconds_per_image = 1000.0 * result.forward_seconds / static_cast<double>(result.labels.size());
    evaluation.batch_size = batch_size;
    evaluation.skipped = loader.skipped();
    return evaluation;
}

Predictor::Predictor(const Model& model) : input_(model.description.input), network_(inference_network(model)) {
    batch_.resize({1, input_.channels, input_.height, input_.width});
}

Prediction Predictor::predict(const std::string& image_path) {
    preprocess_into(decode_image_file(image_path), input_, batch_.data());
    softmax(network_->forward(batch_, Mode::Infer), probabilities_);
    Prediction prediction;
    prediction.probabilities.assign(probabilities_.data(), probabilities_.data() + probabilities_.size());
    prediction.class_index = static_cast<int>(
        std::max_element(prediction.probabilities.begin(), prediction.probabilities.end()) - prediction.probabilities.begin());
    return prediction;
}

}  // namespace edgeqc
