// Learning-rate schedule per optimizer step: linear warm-up, then constant or cosine decay to zero.
// Warm-up matters for small defect sets: large early Adam steps on an untrained net can collapse it onto
// the majority class.
#pragma once

#include <cstdint>
#include <string>

namespace edgeqc {

enum class ScheduleKind { Constant, Cosine };

ScheduleKind parse_schedule_kind(const std::string& name);  // "constant" | "cosine"; throws edgeqc::Error
const char* schedule_kind_name(ScheduleKind kind);

struct Schedule {
    ScheduleKind kind = ScheduleKind::Constant;
    float base_learning_rate = 1e-3f;
    std::uint64_t warmup_steps = 0;
    std::uint64_t total_steps = 1;

    // step counts from 0: during warm-up lr * (step + 1) / warmup_steps.
    float learning_rate_at(std::uint64_t step) const;
};

}  // namespace edgeqc
