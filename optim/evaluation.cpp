// Inference over a loader: the trainable network, or a model's inference plan.
#include "optim/evaluation.hpp"

#include <algorithm>
#include <chrono>
#include <functional>

#include "data/dataset.hpp"
#include "data/image.hpp"
#include "engine/error.hpp"
#include "layers/softmax_cross_entropy.hpp"

namespace edgeqc {

namespace {

// forward: a batch of images -> their logits (N x K).
InferenceResult run_batches(BatchLoader& loader, const std::string& progress_label, ProgressObserver& observer,
                            const std::function<const Tensor&(const Tensor&)>& forward) {
    InferenceResult result;
    loader.start_epoch(0);
    Batch batch;
    Tensor probabilities;
    double loss_sum = 0.0;
    while (loader.next(batch)) {
        const auto start = std::chrono::steady_clock::now();
        const Tensor& logits = forward(batch.images);
        result.forward_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        softmax(logits, probabilities);
        loss_sum += softmax_cross_entropy(logits, batch.labels, {}, nullptr) * static_cast<double>(batch.labels.size());
        result.labels.insert(result.labels.end(), batch.labels.begin(), batch.labels.end());
        result.indices.insert(result.indices.end(), batch.indices.begin(), batch.indices.end());
        result.probabilities.insert(result.probabilities.end(), probabilities.data(),
                                    probabilities.data() + probabilities.size());
        if (!progress_label.empty()) observer.progress(progress_label, result.labels.size() + loader.skipped(), loader.size(), "");
    }
    if (!progress_label.empty()) observer.progress_end();
    if (!result.labels.empty()) result.mean_loss = loss_sum / static_cast<double>(result.labels.size());
    return result;
}

}  // namespace

InferenceResult run_inference(Network& network, BatchLoader& loader, const std::string& progress_label,
                              ProgressObserver& observer) {
    return run_batches(loader, progress_label, observer, [&network](const Tensor& images) -> const Tensor& {
        return network.forward(images, Mode::Infer);
    });
}

InferenceResult run_inference(InferencePlan& plan, BatchLoader& loader, const std::string& progress_label,
                              ProgressObserver& observer) {
    Tensor logits;
    return run_batches(loader, progress_label, observer, [&plan, &logits](const Tensor& images) -> const Tensor& {
        const int batch = images.shape()[0];
        logits.resize({batch, plan.num_classes()});
        const float* out = plan.run(images.data(), batch);
        std::copy(out, out + logits.size(), logits.data());
        return logits;
    });
}

Evaluation evaluate_folder(const Model& model, const std::string& data_dir, int batch_size, bool strict,
                           ProgressObserver& observer) {
    const FolderScan scan = scan_with_classes(data_dir, model.description.class_names);
    if (scan.images.empty()) throw Error("'" + data_dir + "' holds no images in folders named after the model's classes");
    return evaluate_images(model, scan.images, batch_size, strict, "'" + data_dir + "'", observer);
}

Evaluation evaluate_images(const Model& model, const std::vector<LabelledImage>& images, int batch_size, bool strict,
                           const std::string& what, ProgressObserver& observer) {
    if (batch_size < 1) throw Error("--batch must be at least 1");
    InferencePlan plan(model, batch_size);
    const auto warn = [&observer](const std::string& line) { observer.warning(line); };
    BatchLoader loader(images, model.description.input,
                       {.batch_size = batch_size, .shuffle = false, .strict = strict, .augment = {}, .warn = warn});
    const InferenceResult result = run_inference(plan, loader, "evaluating", observer);
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

}  // namespace edgeqc
