// The inference runtime: a plan built once from a model, which then classifies batches of preprocessed inputs.
// Building it folds batch norm, packs every weight (and Winograd-transforms the 3x3 float ones) for the kernels
// chosen for this CPU, fuses each ReLU into the layer before it, and sizes all memory: two alternating activation buffers
// and one workspace, so a run allocates nothing. Deliberately no decoding or preprocessing (data/classifier.hpp
// adds those) and no training. Plans are independent: several may run at once on different threads.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "engine/kernels.hpp"
#include "engine/model.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

// What a plan holds, in bytes; total() is its peak: nothing else is allocated while it runs.
struct PlanMemory {
    std::size_t weights = 0;      // packed weights and biases
    std::size_t activations = 0;  // the two alternating buffers, for max_batch images
    std::size_t workspace = 0;    // the largest scratch any step needs
    std::size_t total() const { return weights + activations + workspace; }
};

class InferencePlan {
public:
    // model: a valid model, float, quantized (its int8 layers run on 7-bit activations; float activations are
    // quantized where they enter one) or mixed; max_batch: the most images one run() takes; threads: the most threads a run
    // uses, 0 for OpenMP's default. Throws edgeqc::Error when the model cannot be planned.
    // The model is taken by value: move it in, and its float tensors are released layer by layer as they are packed
    // (folding batch norm briefly holds the model and its folded copy). The plan keeps the kernels active when it
    // was built, whatever select_kernels() does later.
    explicit InferencePlan(Model model, int max_batch = 1, int threads = 0);
    ~InferencePlan();
    InferencePlan(InferencePlan&&) noexcept;
    InferencePlan& operator=(InferencePlan&&) noexcept;

    // A plan on this one's packed weights (nothing writes them once built) with buffers of its own: the two may run
    // at once on different threads, for the memory of one set of weights.
    InferencePlan sharing_weights() const;

    const ModelDescription& description() const { return description_; }
    int max_batch() const { return max_batch_; }
    int num_classes() const { return description_.num_classes(); }
    std::size_t input_floats_per_image() const { return input_floats(description_.input); }
    PlanMemory memory() const;

    // inputs: batch x C x H x W, preprocessed as description().input says; 1 <= batch <= max_batch().
    // Runs on the plan's threads (OpenMP's count for the calling thread is set for the run, then restored).
    // Returns the logits, batch x classes, valid until the next call. observer, when given, sees the float input
    // of every float conv and dense layer (calibration collects its statistics so).
    using LayerInputObserver = std::function<void(int layer, const float* values, std::size_t count)>;
    const float* run(const float* inputs, int batch, const LayerInputObserver& observer = {});
    // run() then a softmax over each image's logits: batch x classes probabilities, valid until the next call.
    const float* probabilities(const float* inputs, int batch);

private:
    struct Step;
    using Steps = std::vector<std::unique_ptr<Step>>;
    InferencePlan() = default;
    ModelDescription description_;
    const KernelTable* table_ = nullptr;  // the kernels the weights were packed for: the plan runs with these
    int max_batch_ = 1;
    int threads_ = 1;
    std::shared_ptr<const Steps> steps_;  // shared by the plans sharing_weights() makes
    AlignedFloats activations_[2];
    AlignedFloats workspace_;
    std::vector<float> probabilities_;
};

}  // namespace edgeqc
