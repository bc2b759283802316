// JSON helpers shared by the training logs, `eval --json` and `predict --json`.
// Class names and paths are raw file-system bytes, so text output replaces invalid UTF-8 instead of throwing.
#pragma once

#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

namespace edgeqc {

// JSON has no NaN: an undefined figure (an AUC without negatives, a missing validation loss) becomes null.
inline nlohmann::json number_or_null(double value) {
    return std::isnan(value) ? nlohmann::json(nullptr) : nlohmann::json(value);
}

// indent -1: one line; otherwise pretty-printed. Json: nlohmann::json, or nlohmann::ordered_json to keep the
// order the keys were added in.
template <class Json = nlohmann::json>
std::string json_text(const Json& value, int indent = -1) {
    return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace edgeqc
