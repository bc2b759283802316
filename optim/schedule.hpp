// Learning-rate schedule per optimizer step: linear warm-up, then constant, cosine decay to zero, or step
// decay (multiplied by gamma every interval). Reduce-on-plateau scales on top of it (optim/callbacks).
// Warm-up matters for small defect sets: large early Adam steps on an untrained net can collapse it onto
// the majority class.
#pragma once

#include <cstdint>
#include <string>

namespace edgeqc {

enum class ScheduleKind { Constant, Cosine, Step };

ScheduleKind parse_schedule_kind(const std::string& name);  // "constant" | "cosine" | "step"; throws edgeqc::Error
const char* schedule_kind_name(ScheduleKind kind);

struct Schedule {
    ScheduleKind kind = ScheduleKind::Constant;
    float base_learning_rate = 1e-3f;
    std::uint64_t warmup_steps = 0;
    std::uint64_t total_steps = 1;
    std::uint64_t step_interval = 1;  // Step: steps after warm-up between two decays
    float step_gamma = 0.1f;          // Step: factor of each decay

    // step counts from 0: during warm-up lr * (step + 1) / warmup_steps.
    float learning_rate_at(std::uint64_t step) const;
};

}  // namespace edgeqc
