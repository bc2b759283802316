// Stable softmax and the fused softmax + cross-entropy loss with its gradient.
#include "layers/softmax_cross_entropy.hpp"

#include <algorithm>
#include <cmath>

#include "engine/error.hpp"
#include "engine/softmax_f32.hpp"

namespace edgeqc {


void softmax(const Tensor& logits, Tensor& probabilities) {
    if (logits.shape().rank() != 2) throw Error("softmax expects N x K logits, got " + logits.shape().str());
    probabilities.resize(logits.shape());
    const int batch = logits.shape()[0], classes = logits.shape()[1];
    for (int n = 0; n < batch; ++n)
        softmax_f32(logits.data() + static_cast<std::size_t>(n) * classes, classes,
                    probabilities.data() + static_cast<std::size_t>(n) * classes);
}

double softmax_cross_entropy(const Tensor& logits, const std::vector<int>& labels,
                             const std::vector<float>& class_weights, Tensor* dlogits,
                             const std::vector<float>& sample_weights) {
    if (logits.shape().rank() != 2) throw Error("cross-entropy expects N x K logits, got " + logits.shape().str());
    const int batch = logits.shape()[0], classes = logits.shape()[1];
    if (static_cast<int>(labels.size()) != batch) throw Error("cross-entropy: label count differs from batch size");
    if (!class_weights.empty() && static_cast<int>(class_weights.size()) != classes)
        throw Error("cross-entropy: expected " + std::to_string(classes) + " class weights");
    if (!sample_weights.empty() && static_cast<int>(sample_weights.size()) != batch)
        throw Error("cross-entropy: expected " + std::to_string(batch) + " sample weights");
    // One softmax per row: into dlogits when the gradient is wanted (it becomes p - onehot), else into scratch.
    std::vector<float> scratch(dlogits ? 0 : static_cast<std::size_t>(classes));
    if (dlogits) dlogits->resize(logits.shape());
    std::vector<double> row_weights(static_cast<std::size_t>(batch));
    double weighted_loss = 0.0, total_weight = 0.0;
    for (int n = 0; n < batch; ++n) {
        const int label = labels[static_cast<std::size_t>(n)];
        if (label < 0 || label >= classes) throw Error("cross-entropy: label " + std::to_string(label) + " out of range");
        const float* row = logits.data() + static_cast<std::size_t>(n) * classes;
        float* probabilities = dlogits ? dlogits->data() + static_cast<std::size_t>(n) * classes : scratch.data();
        const double log_partition = softmax_f32(row, classes, probabilities);
        const double class_weight = class_weights.empty() ? 1.0 : class_weights[static_cast<std::size_t>(label)];
        const double weight = class_weight * (sample_weights.empty() ? 1.0 : sample_weights[static_cast<std::size_t>(n)]);
        row_weights[static_cast<std::size_t>(n)] = weight;
        weighted_loss += weight * (log_partition - row[label]);
        total_weight += class_weight;
    }
    if (!(total_weight > 0.0)) throw Error("cross-entropy: the class weights of this batch sum to zero");
    if (dlogits) {
        for (int n = 0; n < batch; ++n) {
            float* out = dlogits->data() + static_cast<std::size_t>(n) * classes;
            out[labels[static_cast<std::size_t>(n)]] -= 1.0f;
            const auto scale = static_cast<float>(row_weights[static_cast<std::size_t>(n)] / total_weight);
            for (int k = 0; k < classes; ++k) out[k] *= scale;
        }
    }
    return weighted_loss / total_weight;
}

}  // namespace edgeqc
