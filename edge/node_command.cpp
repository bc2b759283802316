// JSON command parsing with every field checked.
#include "edge/node_command.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/error.hpp"

namespace edgeqc {

namespace {

float probability_field(const nlohmann::json& command, const char* name) {
    const auto it = command.find(name);
    if (it == command.end() || !it->is_number()) throw Error(std::string("command: '") + name + "' must be a number");
    const double value = it->get<double>();
    if (!std::isfinite(value) || value < 0 || value > 1)
        throw Error(std::string("command: '") + name + "' must be a probability between 0 and 1");
    return static_cast<float>(value);
}

}  // namespace

NodeCommand parse_node_command(const std::string& payload) {
    if (payload.size() > kMaxCommandBytes)
        throw Error("command of " + std::to_string(payload.size()) + " bytes (at most " +
                    std::to_string(kMaxCommandBytes) + ")");
    const nlohmann::json command = nlohmann::json::parse(payload, nullptr, false);
    if (command.is_discarded() || !command.is_object()) throw Error("command is not a JSON object");
    const auto name = command.find("cmd");
    if (name == command.end() || !name->is_string()) throw Error("command has no \"cmd\" string");
    NodeCommand result;
    const std::string& kind = name->get_ref<const std::string&>();
    if (kind == "pause") {
        result.kind = NodeCommand::Kind::Pause;
    } else if (kind == "resume") {
        result.kind = NodeCommand::Kind::Resume;
    } else if (kind == "thresholds") {
        result.kind = NodeCommand::Kind::Thresholds;
        result.thresholds = {probability_field(command, "reinspect"), probability_field(command, "defective")};
        if (result.thresholds.reinspect > result.thresholds.defective)
            throw Error("command: the re-inspect threshold must not exceed the defective one");
    } else if (kind == "reload") {
        result.kind = NodeCommand::Kind::Reload;
    } else if (kind == "rollback") {
        result.kind = NodeCommand::Kind::Rollback;
    } else {
        throw Error("unknown command '" + kind.substr(0, 64) + "' (known: pause, resume, thresholds, reload, rollback)");
    }
    return result;
}

}  // namespace edgeqc
