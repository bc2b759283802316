// Learning-rate schedule evaluation.
#include "optim/schedule.hpp"

#include <algorithm>
#include <cmath>

#include "engine/error.hpp"

namespace edgeqc {

ScheduleKind parse_schedule_kind(const std::string& name) {
    if (name == "constant") return ScheduleKind::Constant;
    if (name == "cosine") return ScheduleKind::Cosine;
    if (name == "step") return ScheduleKind::Step;
    throw Error("unknown schedule '" + name + "' (use constant, cosine or step)");
}

const char* schedule_kind_name(ScheduleKind kind) {
    switch (kind) {
        case ScheduleKind::Cosine: return "cosine";
        case ScheduleKind::Step: return "step";
        default: return "constant";
    }
}

float Schedule::learning_rate_at(std::uint64_t step) const {
    if (step < warmup_steps)
        return base_learning_rate * static_cast<float>(step + 1) / static_cast<float>(warmup_steps);
    if (kind == ScheduleKind::Constant || total_steps <= warmup_steps) return base_learning_rate;
    if (kind == ScheduleKind::Step) {
        const auto decays = static_cast<double>((step - warmup_steps) / std::max<std::uint64_t>(step_interval, 1));
        return static_cast<float>(base_learning_rate * std::pow(static_cast<double>(step_gamma), decays));
    }
    const double progress =
        std::min(1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(total_steps - warmup_steps));
    return static_cast<float>(base_learning_rate * 0.5 * (1.0 + std::cos(3.14159265358979323846 * progress)));
}

}  // namespace edgeqc
