// Adam and SGD update loops.
#include "optim/optimizer.hpp"

#include <cmath>
#include <stdexcept>

#include "engine/error.hpp"
#include "optim/training_kernels.hpp"

namespace edgeqc {

OptimizerKind parse_optimizer_kind(const std::string& name) {
    if (name == "adam") return OptimizerKind::Adam;
    if (name == "sgd") return OptimizerKind::Sgd;
    throw Error("unknown optimizer '" + name + "' (use adam or sgd)");
}

const char* optimizer_kind_name(OptimizerKind kind) { return kind == OptimizerKind::Adam ? "adam" : "sgd"; }

Optimizer::Optimizer(const OptimizerConfig& config, std::size_t parameter_floats)
    : config_(config), first_moment_(parameter_floats, 0.0f) {
    if (config.kind == OptimizerKind::Adam) second_moment_.assign(parameter_floats, 0.0f);
}

void Optimizer::step(float* parameters, const float* gradients, float learning_rate, std::size_t first) {
    if (first > first_moment_.size()) throw std::logic_error("Optimizer::step: first parameter beyond the arena");
    ++steps_;
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(first_moment_.size() - first);
    parameters += first;
    gradients += first;
    float* m = first_moment_.data() + first;
    const float decay = config_.weight_decay;
    if (config_.kind == OptimizerKind::Adam) {
        const double t = static_cast<double>(steps_);
        const AdamStepF32 step{config_.beta1,
                               config_.beta2,
                               config_.epsilon,
                               static_cast<float>(learning_rate / (1.0 - std::pow(config_.beta1, t))),
                               static_cast<float>(std::sqrt(1.0 - std::pow(config_.beta2, t))),
                               1.0f - learning_rate * decay};
        training_kernels().adam_f32(step, n, parameters, gradients, m, second_moment_.data() + first);
    } else {
        const float momentum = config_.momentum;
#pragma omp parallel for simd schedule(static)
        for (std::ptrdiff_t i = 0; i < n; ++i) {
            const float g = gradients[i] + decay * parameters[i];
            m[i] = momentum * m[i] + g;
            parameters[i] -= learning_rate * m[i];
        }
    }
}

}  // namespace edgeqc
