// Training callbacks driven by a validation metric after each epoch: which epoch is the best so far (the
// model kept), early stopping after `patience` epochs without improvement, and reduce-learning-rate-on-
// plateau (Keras' ReduceLROnPlateau: multiply by factor after patience epochs without improvement, not
// below min_lr). Their state is a few counters, saved in checkpoints so --resume continues exactly.
#pragma once

#include <map>
#include <string>

namespace edgeqc {

enum class Monitor { ValAccuracy, ValLoss, ValMacroF1 };
Monitor parse_monitor(const std::string& name);  // "val_accuracy" | "val_loss" | "val_macro_f1"; throws Error
const char* monitor_name(Monitor monitor);

struct CallbackOptions {
    Monitor monitor = Monitor::ValAccuracy;
    int early_stop_patience = 0;  // 0 = off
    int plateau_patience = 0;     // 0 = off
    float plateau_factor = 0.5f;
    float min_learning_rate = 1e-6f;
};

// Throws Error naming the flag of the first value out of range (e.g. a negative patience).
void validate_callback_options(const CallbackOptions& options);

struct EpochDecision {
    bool improved = false;    // the best value so far: keep this epoch's model
    bool reduced_lr = false;  // the plateau callback just lowered the learning rate
    bool stop = false;        // early stopping ends training (or the current phase)
};

class TrainingCallbacks {
public:
    // base_learning_rate bounds the plateau scale: scale * base never goes below min_learning_rate.
    TrainingCallbacks(const CallbackOptions& options, float base_learning_rate);

    // Call once per epoch with the monitored validation value.
    EpochDecision end_epoch(double value);
    // Multiplies the schedule's learning rate.
    float learning_rate_scale() const { return scale_; }
    bool has_best() const { return has_best_; }
    double best() const { return best_; }

    // Starts a new training phase: counters and the scale reset, the best value is kept (the best model
    // of the whole run stays the reference).
    void start_phase(float base_learning_rate);

    std::map<std::string, std::string> state() const;
    // Throws Error when the state is damaged.
    void restore(const std::map<std::string, std::string>& state);

private:
    bool better(double value) const;

    CallbackOptions options_;
    float base_learning_rate_;
    bool has_best_ = false;
    double best_ = 0.0;
    int epochs_without_improvement_ = 0;
    int plateau_wait_ = 0;
    float scale_ = 1.0f;
};

}  // namespace edgeqc
