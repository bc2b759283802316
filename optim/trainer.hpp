// The training loop behind `edgeqc train`: data split, normalisation, epochs with validation, best-model
// and last-checkpoint saving, per-epoch CSV/JSON logs, clean stop on request and exact --resume.
// It prints progress but parses no command line; apps/ does that.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "data/augment.hpp"
#include "data/preprocess.hpp"
#include "data/sampling.hpp"
#include "engine/architecture.hpp"
#include "layers/layer.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"

namespace edgeqc {

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
    ScheduleKind schedule = ScheduleKind::Cosine;
    int warmup_epochs = 1;
    double validation_split = 0.2;
    std::uint64_t seed = 1;
    InitScheme init = InitScheme::He;
    bool strict = false;  // a corrupt image stops training instead of being skipped
    bool resume = false;  // continue from the last checkpoint beside output_path, with its recipe
};

struct TrainSummary {
    int epochs_done = 0;
    int best_epoch = 0;               // 0 when no epoch completed
    double best_validation_accuracy = -1.0;  // -1 without a validation set
    bool stopped_early = false;       // a stop was requested (Ctrl-C)
};

// Paths derived from the output path "dir/name.eqc": "dir/name.last.eqc", "dir/name.log.csv", "dir/name.log.json".
std::string checkpoint_path_for(const std::string& output_path);
std::string log_path_for(const std::string& output_path, const std::string& extension);

// Set from a signal handler; the loop stops at the next batch and keeps the last complete epoch's checkpoint.
std::atomic<bool>& training_stop_requested();

// Throws edgeqc::Error for bad data, options or files, and when the loss becomes NaN or infinite (the best
// model file written so far is left intact).
TrainSummary train(const TrainOptions& options);

}  // namespace edgeqc
