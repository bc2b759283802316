// Optimizers over the flat parameter arena: Adam (bias-corrected, optional decoupled weight decay = AdamW)
// and SGD with momentum, each one loop over all parameters with an explicit step counter.
// Semantics follow torch.optim.Adam / AdamW / SGD so the golden test can compare step by step.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace edgeqc {

enum class OptimizerKind { Adam, Sgd };

struct OptimizerConfig {
    OptimizerKind kind = OptimizerKind::Adam;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float epsilon = 1e-8f;
    float momentum = 0.9f;      // SGD only
    float weight_decay = 0.0f;  // Adam: decoupled (AdamW); SGD: L2 added to the gradient (as torch.optim.SGD)
};

OptimizerKind parse_optimizer_kind(const std::string& name);  // "adam" | "sgd"; throws edgeqc::Error
const char* optimizer_kind_name(OptimizerKind kind);

class Optimizer {
public:
    Optimizer(const OptimizerConfig& config, std::size_t parameter_floats);

    // One update of the parameters from float `first` on (the ones before it are frozen) with the given
    // learning rate; counts one step.
    void step(float* parameters, const float* gradients, float learning_rate, std::size_t first = 0);

    const OptimizerConfig& config() const { return config_; }
    std::uint64_t steps() const { return steps_; }
    // State kept in checkpoints so that --resume continues exactly.
    AlignedFloats& first_moment() { return first_moment_; }    // Adam m, SGD momentum buffer
    AlignedFloats& second_moment() { return second_moment_; }  // Adam v (empty for SGD)
    void set_steps(std::uint64_t steps) { steps_ = steps; }

private:
    OptimizerConfig config_;
    std::uint64_t steps_ = 0;
    AlignedFloats first_moment_;
    AlignedFloats second_moment_;
};

}  // namespace edgeqc
