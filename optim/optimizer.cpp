// Adam and SGD update loops.
#include "optim/optimizer.hpp"

#include <cmath>

#include "engine/error.hpp"

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

void Optimizer::step(float* parameters, const float* gradients, float learning_rate) {
    ++steps_;
    const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(first_moment_.size());
    float* m = first_moment_.data();
    const float decay = config_.weight_decay;
    if (config_.kind == OptimizerKind::Adam) {
        float* v = second_moment_.data();
        const float beta1 = config_.beta1, beta2 = config_.beta2, epsilon = config_.epsilon;
        const double t = static_cast<double>(steps_);
        const float step_size = static_cast<float>(learning_rate / (1.0 - std::pow(beta1, t)));
        const float root_correction2 = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, t)));
        const float keep = 1.0f - learning_rate * decay;
#pragma omp parallel for simd schedule(static)
        for (std::ptrdiff_t i = 0; i < n; ++i) {
            const float g = gradients[i];
            m[i] = beta1 * m[i] + (1.0f - beta1) * g;
            v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
            const float p = parameters[i] * keep;
            parameters[i] = p - step_size * m[i] / (std::sqrt(v[i]) / root_correction2 + epsilon);
        }
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
