// Commands the edge node takes on its MQTT topic <prefix>/<node>/cmd, as JSON objects:
//   {"cmd":"pause"}   {"cmd":"resume"}   {"cmd":"thresholds","reinspect":0.4,"defective":0.7}
//   {"cmd":"reload"} (check and run the model file again, e.g. after replacing it)   {"cmd":"rollback"}
// They are applied between two frames. Parsing is strict and bounded: anything else is refused with a reason.
#pragma once

#include <string>

#include "edge/decision.hpp"

namespace edgeqc {

struct NodeCommand {
    enum class Kind { Pause, Resume, Thresholds, Reload, Rollback };
    Kind kind = Kind::Pause;
    VerdictThresholds thresholds;  // for Thresholds
};

inline constexpr std::size_t kMaxCommandBytes = 4096;

// Throws Error saying what is wrong with the payload.
NodeCommand parse_node_command(const std::string& payload);

}  // namespace edgeqc
