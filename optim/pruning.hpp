// `edgeqc prune`: which conv filters to remove (scores per filter, a target of filters, FLOPs or per-layer ratios),
// and the iterative schedule that removes them a step at a time and fine-tunes after each step through train().
// The surgery itself is a model pass (prune_filters, engine/model_passes.hpp).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "optim/progress_observer.hpp"
#include "optim/trainer.hpp"

namespace edgeqc {

// How a filter's importance is scored: the L1 or L2 norm of its weights, the magnitude of its batch-norm scale
// (network slimming, Liu et al. 2017), or the first-order Taylor estimate of the loss change its removal causes
// (Molchanov et al. 2019: per batch, (sum over the filter's batch-norm scale and shift, or without batch norm its
// weights and bias, of value x gradient) squared, summed over the batches).
enum class PruneCriterion { L1, L2, BatchNormGamma, Taylor };
PruneCriterion parse_prune_criterion(const std::string& name);  // "l1", "l2", "bn-gamma", "taylor"; throws Error
const char* prune_criterion_name(PruneCriterion criterion);
// The criterion that suits a model: bn-gamma when batch norm follows every conv (a conv's weights are then free to
// scale: the batch norm undoes any scale, so their norm says nothing of the channel's output), else l1.
PruneCriterion default_prune_criterion(const Model& model);

// The labelled images the taylor criterion takes its gradients on: up to `images` of the training part of
// data->data_dir (the validation split data->validation_split is left out unless data->validation_dir is given),
// drawn with data->seed, preprocessed as the model's input says, in batches of data->batch_size.
struct GradientImages {
    const TrainOptions* data = nullptr;
    int images = 512;
};

// Each conv layer's filter scores (layer index in ResolvedArchitecture::layers -> one score per filter). Throws
// edgeqc::Error for bn-gamma on a conv without batch norm, and for taylor without gradient images.
std::map<std::size_t, std::vector<double>> filter_scores(const Model& model, PruneCriterion criterion,
                                                         const GradientImages& gradient_images = {});

// How much to remove, in the end, from the original model. Conv layers are named c1, c2, ... in order.
struct PruneTarget {
    enum class Kind { FilterRatio, FlopsKept, PerLayer };
    Kind kind = Kind::FilterRatio;
    double value = 0.5;  // FilterRatio: share of all conv filters removed; FlopsKept: share of the FLOPs kept
    std::map<std::string, double> per_layer;  // PerLayer: "c3" -> share of that layer's filters removed
    // Each layer's kept filters rounded up to a multiple of this (never above what it has): for kernels that run
    // faster on whole vectors of channels. The result may then keep a little more than the target asks. 1: no
    // rounding (measured: no faster with edgeqc's kernels, README).
    int channel_multiple = 1;
};
// Parses "c3=0.75,c4=0.5"; throws edgeqc::Error for a malformed entry or a ratio outside (0, 1).
std::map<std::string, double> parse_per_layer_ratios(const std::string& text);

// The filters of `model` to keep so that a share `progress` (in (0, 1]) of the way from `original` to `target` is
// done: the lowest-scored filters go first, ranked across layers by their score over their layer's mean score
// (and, for FlopsKept, over the square root of the FLOPs they cost), or per layer for PerLayer. Every layer keeps at
// least one filter, and under a ranking across layers at least an eighth of its original filters; then each layer's
// count is rounded up to target.channel_multiple. Throws edgeqc::Error for a target that names a layer the model
// does not have, a ratio or FLOP share outside (0, 1), or a channel multiple outside 1 to 64. target_met, when given, tells whether
// the filters chosen meet the target (false: every layer it may shrink is down to one filter first).
std::map<std::size_t, std::vector<int>> choose_filters(const Model& original, const Model& model,
                                                       const std::map<std::size_t, std::vector<double>>& scores,
                                                       const PruneTarget& target, double progress,
                                                       bool* target_met = nullptr);

struct PruneOptions {
    PruneCriterion criterion = PruneCriterion::L1;
    PruneTarget target;
    int steps = 4;
    int finetune_epochs = 3;   // per step; 0 prunes without training
    TrainOptions finetune;     // data, the recipe and the seed of the fine-tuning runs (paths are set per step)
    std::string output_path;   // the final model; step s writes NAME.step<s>.eqc beside it (the last is copied here)
    double latency_seconds = 0.5;  // minimum measuring time of each batch-1 latency figure
    int taylor_images = 512;       // the taylor criterion's gradient images, per step
    // Continue the interrupted run journalled beside output_path (prune_journal_path): its finished steps are kept,
    // an unfinished step's fine-tuning continues from its checkpoint. The run's settings must be the same.
    bool resume = false;
};

// The journal of a run into output_path, "dir/name.eqc" -> "dir/name.prune.json": the run's settings and the steps it
// finished, rewritten after each; removed once the output is written.
std::string prune_journal_path(const std::string& output_path);

// One pruning level: the model after a step (step 0: the original).
struct PruneStep {
    int step = 0;
    std::string model_path;                  // empty for step 0
    std::string architecture;                // the model's spec
    std::vector<int> filters;                // per conv layer, in order
    std::size_t parameters = 0;
    double flops = 0.0;                      // per image, forward
    double latency_ms = 0.0;                 // float, batch 1, measured with the current threads
    bool validated = false;                  // fine-tuning had a validation set
    std::string monitor;                     // its monitored metric ("val_accuracy")
    double validation_value = 0.0;           // at the fine-tuning's best epoch
};

struct PruneResult {
    std::vector<PruneStep> steps;  // the original, then every step done
    bool interrupted = false;      // Ctrl-C: the steps listed are complete, the output holds no model of this run
    bool target_reached = true;    // false when every layer is down to one filter short of the target
    int resumed_steps = 0;         // steps taken over from the journal of the run resumed
};

// Prunes `model` (a float model, batch norm not folded) towards options.target in options.steps steps, fine-tuning
// after each, and writes every step's model. Checks everything it can before any work: throws edgeqc::Error for a
// quantized model, bad options or targets, training options train() would refuse, or a data folder whose classes
// differ from the model's, and for a resume without a journal or with other settings than the run resumed. Stops
// between steps, or within a fine-tuning or the taylor scoring, when training_stop_requested() is set.
PruneResult prune(const Model& model, const PruneOptions& options, ProgressObserver& observer = silent_observer());

}  // namespace edgeqc
