// What library code reports while it works (training, evaluation): set-up facts and decisions, warnings, the
// progress of a long task, and each finished epoch. apps/ turns them into text on a terminal; library code never
// prints. Every method does nothing by default, so an observer takes only what it wants (a test may count warnings).
#pragma once

#include <cmath>
#include <cstddef>
#include <string>

namespace edgeqc {

// The figures of one training epoch, as the logs store them.
struct EpochRecord {
    int epoch = 0;
    double train_loss = 0, train_accuracy = 0;
    double validation_loss = NAN, validation_accuracy = NAN, validation_macro_f1 = NAN;
    double learning_rate = 0, seconds = 0, images_per_second = 0;
    std::size_t pseudo_labelled = 0;  // unlabelled images used this epoch
};

// A finished epoch and what the run decided after it.
struct EpochReport {
    EpochRecord record;
    int total_epochs = 0;
    bool validated = false;         // record has validation figures
    bool improved = false;          // the kept model is now this epoch's
    bool reduced_lr = false;        // reduce-on-plateau lowered the learning rate
    bool pseudo_labelling = false;  // the run uses unlabelled images (record.pseudo_labelled says how many)
    float pseudo_weight = 0.0f;     // their loss weight this epoch
    double eta_seconds = 0.0;       // the rest of the run at the mean epoch time so far
};

class ProgressObserver {
public:
    virtual ~ProgressObserver() = default;
    // One line of information: a fact of the set-up or a decision ("split: 30 training, 10 validation images").
    virtual void info(const std::string& /*line*/) {}
    // Something the user should know that does not stop the work (a skipped image). May come from a loader's
    // worker thread.
    virtual void warning(const std::string& /*line*/) {}
    // `done` of `total` items of a task ("epoch 3/30", "validating"); detail: running figures ("loss 0.41 acc 0.88").
    virtual void progress(const std::string& /*task*/, std::size_t /*done*/, std::size_t /*total*/,
                          const std::string& /*detail*/) {}
    // The task in progress ended: finished, stopped on request, or abandoned by an error.
    virtual void progress_end() {}
    virtual void epoch_end(const EpochReport& /*report*/) {}
};

// An observer that keeps everything to itself.
inline ProgressObserver& silent_observer() {
    static ProgressObserver silent;
    return silent;
}

}  // namespace edgeqc
