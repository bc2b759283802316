// The training run behind `edgeqc train`: data split, normalisation, balancing, epochs with validation,
// callbacks (best model, early stopping, reduce-on-plateau), transfer learning (start from a model, frozen
// conv blocks, a second fine-tuning phase), per-epoch CSV/JSON logs, clean stop on request and exact
// --resume. It reports progress to an observer; it neither prints nor parses a command line (apps/ does both).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "data/augment.hpp"
#include "data/preprocess.hpp"
#include "data/sampling.hpp"
#include "engine/architecture.hpp"
#include "optim/html_report.hpp"
#include "layers/layer.hpp"
#include "optim/callbacks.hpp"
#include "optim/optimizer.hpp"
#include "optim/progress_observer.hpp"
#include "optim/pseudo_label.hpp"
#include "optim/schedule.hpp"

namespace edgeqc {

// The arithmetic of training's matrix products (convolutions, dense layers): f32, or bf16 operands with f32 sums
// where the CPU has AVX-512 BF16. Master weights, batch norm, the loss and the optimizer stay f32 either way.
enum class TrainPrecision { F32, BF16 };
const char* train_precision_name(TrainPrecision precision);  // "f32", "bf16"
TrainPrecision parse_train_precision(const std::string& name);  // throws edgeqc::Error
// The kernel table a network training in `precision` computes with: null for the active table (f32), else
// bf16_product_kernels(). Throws edgeqc::Error where this CPU cannot (no AVX-512 BF16), before any work is done.
const KernelTable* product_kernels_for(TrainPrecision precision);

struct TrainOptions {
    std::string data_dir;
    std::string validation_dir;  // empty: split validation off data_dir
    std::string output_path;     // best model; the last checkpoint and logs sit beside it
    std::string architecture = kDefaultArchitecture;
    InputFormat input;           // height, width, channels, enhancement; mean/stddev are estimated from the data
    AugmentOptions augment;      // training batches only
    Balance balance = Balance::None;
    int epochs = 30;
    bool epochs_given = false;  // with resume: false continues to the checkpoint's epoch count
    int batch_size = 32;
    float learning_rate = 1e-3f;
    OptimizerConfig optimizer;
    float sparsity_l1 = 0.0f;  // L1 penalty on batch-norm scales (network slimming); 0 = off
    TrainPrecision precision = TrainPrecision::F32;
    ScheduleKind schedule = ScheduleKind::Cosine;
    int warmup_epochs = 1;
    int step_epochs = 10;      // --schedule step: epochs between decays
    float step_gamma = 0.1f;   // --schedule step: factor of each decay
    CallbackOptions callbacks;
    // Transfer learning. epochs above is phase 1; phase 2 (when phase2_epochs > 0) restarts the optimizer
    // with phase2_learning_rate and releases unfreeze_blocks of the frozen blocks (-1 = all).
    std::string init_model;    // start from this model's weights; its architecture and input format are used
    int freeze_blocks = 0;     // leading conv blocks that do not train in phase 1
    int phase2_epochs = 0;
    bool phase2_epochs_given = false;  // with resume: true extends phase 2 to phase2_epochs
    float phase2_learning_rate = 1e-4f;
    int unfreeze_blocks = -1;
    std::string unlabelled_dir;  // pseudo-labelling: images without labels (any layout below the folder)
    PseudoLabelOptions pseudo;
    double validation_split = 0.2;
    std::uint64_t seed = 1;
    InitScheme init = InitScheme::He;
    bool strict = false;  // a corrupt image stops training instead of being skipped
    bool resume = false;  // continue from the last checkpoint beside output_path, with its recipe
    std::string report_path;  // when set, an HTML report of the run (curves, validation metrics) is written
};

struct TrainSummary {
    int epochs_done = 0;
    int best_epoch = 0;          // 0 when no epoch completed
    bool validated = false;      // false without a validation set: the last epoch is kept
    Monitor monitor = Monitor::ValAccuracy;  // the run's (a resumed run's from its checkpoint)
    double best_value = 0.0;     // of the monitored metric at best_epoch
    bool early_stopped = false;  // the early-stopping callback ended training
    bool interrupted = false;    // a stop was requested (Ctrl-C)
};

// Paths derived from the output path "dir/name.eqc": "dir/name.last.eqc", "dir/name.log.csv", "dir/name.log.json".
std::string checkpoint_path_for(const std::string& output_path);
std::string log_path_for(const std::string& output_path, const std::string& extension);

// The per-epoch curves of the training log beside a model written by train() (empty when there is none), for
// `edgeqc eval --report`.
std::vector<ReportEpoch> training_curves(const std::string& output_path);

// Set from a signal handler; the loop stops at the next batch and keeps the last complete epoch's checkpoint.
std::atomic<bool>& training_stop_requested();

class Network;
class BatchLoader;

// One training-mode forward pass over clean_training (from its epoch `epoch`) with batch norm averaging its
// statistics over the pass (momentum 1 / k for the k-th batch) instead of tracking recent batches; frozen layers
// keep theirs. Training runs it after each augmented epoch, so validation and inference see statistics of
// unaugmented images.
void reestimate_batch_norm(Network& network, BatchLoader& clean_training, int epoch);

// Throws edgeqc::Error for bad data, options or files, and when the loss becomes NaN or infinite (the best
// model file written so far is left intact). Progress, set-up facts and each epoch go to the observer.
TrainSummary train(const TrainOptions& options, ProgressObserver& observer = silent_observer());

}  // namespace edgeqc
