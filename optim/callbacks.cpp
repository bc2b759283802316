// Best-epoch tracking, early stopping and reduce-on-plateau.
#include "optim/callbacks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "engine/error.hpp"

namespace edgeqc {

Monitor parse_monitor(const std::string& name) {
    if (name == "val_accuracy") return Monitor::ValAccuracy;
    if (name == "val_loss") return Monitor::ValLoss;
    if (name == "val_macro_f1") return Monitor::ValMacroF1;
    throw Error("--monitor must be val_accuracy, val_loss or val_macro_f1, not '" + name + "'");
}

const char* monitor_name(Monitor monitor) {
    switch (monitor) {
        case Monitor::ValLoss: return "val_loss";
        case Monitor::ValMacroF1: return "val_macro_f1";
        default: return "val_accuracy";
    }
}

void validate_callback_options(const CallbackOptions& o) {
    if (o.early_stop_patience < 0) throw Error("--early-stop patience must be 0 (off) or a positive number of epochs");
    if (o.plateau_patience < 0) throw Error("--plateau-patience must be 0 (off) or a positive number of epochs");
    if (!(o.plateau_factor > 0.0f && o.plateau_factor < 1.0f))
        throw Error("--plateau-factor must be between 0 and 1 (exclusive)");
    if (!(o.min_learning_rate >= 0.0f) || !std::isfinite(o.min_learning_rate))
        throw Error("--min-lr must be a non-negative number");
}

TrainingCallbacks::TrainingCallbacks(const CallbackOptions& options, float base_learning_rate)
    : options_(options), base_learning_rate_(base_learning_rate) {
    validate_callback_options(options);
}

bool TrainingCallbacks::better(double value) const {
    if (!has_best_) return true;
    return options_.monitor == Monitor::ValLoss ? value < best_ : value > best_;
}

EpochDecision TrainingCallbacks::end_epoch(double value) {
    EpochDecision decision;
    if (std::isfinite(value) && better(value)) {
        has_best_ = true;
        best_ = value;
        epochs_without_improvement_ = 0;
        plateau_wait_ = 0;
        decision.improved = true;
        return decision;
    }
    ++epochs_without_improvement_;
    ++plateau_wait_;
    if (options_.plateau_patience > 0 && plateau_wait_ >= options_.plateau_patience) {
        plateau_wait_ = 0;
        const float floor = base_learning_rate_ > 0.0f ? std::min(1.0f, options_.min_learning_rate / base_learning_rate_) : 1.0f;
        const float reduced = std::max(scale_ * options_.plateau_factor, floor);
        decision.reduced_lr = reduced < scale_;
        scale_ = reduced;
    }
    decision.stop = options_.early_stop_patience > 0 && epochs_without_improvement_ >= options_.early_stop_patience;
    return decision;
}

void TrainingCallbacks::start_phase(float base_learning_rate) {
    base_learning_rate_ = base_learning_rate;
    epochs_without_improvement_ = 0;
    plateau_wait_ = 0;
    scale_ = 1.0f;
}

std::map<std::string, std::string> TrainingCallbacks::state() const {
    char best[32], scale[32];
    std::snprintf(best, sizeof best, "%.17g", best_);
    std::snprintf(scale, sizeof scale, "%.9g", scale_);
    return {{"has_best", has_best_ ? "1" : "0"},
            {"best", best},
            {"epochs_without_improvement", std::to_string(epochs_without_improvement_)},
            {"plateau_wait", std::to_string(plateau_wait_)},
            {"lr_scale", scale}};
}

void TrainingCallbacks::restore(const std::map<std::string, std::string>& state) {
    try {
        has_best_ = state.at("has_best") == "1";
        best_ = std::stod(state.at("best"));
        epochs_without_improvement_ = std::stoi(state.at("epochs_without_improvement"));
        plateau_wait_ = std::stoi(state.at("plateau_wait"));
        scale_ = std::stof(state.at("lr_scale"));
    } catch (const std::exception&) {
        throw Error("the checkpoint's callback state is damaged; it cannot be resumed");
    }
    if (epochs_without_improvement_ < 0 || plateau_wait_ < 0 || !(scale_ > 0.0f && scale_ <= 1.0f))
        throw Error("the checkpoint's callback state is damaged; it cannot be resumed");
}

}  // namespace edgeqc
