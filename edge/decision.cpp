// Normal-class lookup, threshold parsing and the verdict.
#include "edge/decision.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "engine/error.hpp"

namespace edgeqc {

namespace {

std::string lower_case(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
}

int find_normal_class(const std::vector<std::string>& names, const std::string& requested) {
    if (!requested.empty()) {
        const auto it = std::find(names.begin(), names.end(), requested);
        if (it == names.end())
            throw Error("--normal-class '" + requested + "' is not one of the model's classes (" + class_list(names) + ")");
        return static_cast<int>(it - names.begin());
    }
    static const char* const kNormalNames[] = {"normal", "good", "ok", "free", "no_defect"};
    int found = -1;
    for (std::size_t c = 0; c < names.size(); ++c) {
        const std::string name = lower_case(names[c]);
        if (std::find(std::begin(kNormalNames), std::end(kNormalNames), name) == std::end(kNormalNames)) continue;
        if (found >= 0)
            throw Error("the model has two classes that could be the normal one (" + names[static_cast<std::size_t>(found)] +
                        ", " + names[c] + "): choose with --normal-class");
        found = static_cast<int>(c);
    }
    if (found < 0)
        throw Error("none of the model's classes (" + class_list(names) +
                    ") is named normal, good, ok, free or no_defect: name the defect-free one with --normal-class");
    return found;
}

float parse_probability(const std::string& text, const std::string& whole) {
    char* end = nullptr;
    const float value = std::strtof(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(value) || value < 0.0f || value > 1.0f)
        throw Error("thresholds '" + whole + "': '" + text + "' is not a probability between 0 and 1");
    return value;
}

}  // namespace

std::string class_list(const std::vector<std::string>& names) {
    std::string list;
    for (const std::string& name : names) list += (list.empty() ? "" : ", ") + name;
    return list;
}

const char* verdict_name(Verdict verdict) {
    switch (verdict) {
        case Verdict::Normal: return "normal";
        case Verdict::Reinspect: return "re-inspect";
        case Verdict::Defective: return "defective";
    }
    return "?";
}

VerdictThresholds parse_thresholds(const std::string& text) {
    const std::size_t comma = text.find(',');
    if (comma == std::string::npos)
        throw Error("thresholds '" + text + "' must be two probabilities, re-inspect then defective, e.g. 0.5,0.8");
    VerdictThresholds t{parse_probability(text.substr(0, comma), text), parse_probability(text.substr(comma + 1), text)};
    if (t.reinspect > t.defective)
        throw Error("thresholds '" + text + "': the re-inspect threshold must not exceed the defective one");
    return t;
}

DecisionRule::DecisionRule(const std::vector<std::string>& class_names, const std::string& normal_class,
                           VerdictThresholds thresholds, const std::map<std::string, VerdictThresholds>& per_class)
    : normal_class_(find_normal_class(class_names, normal_class)),
      thresholds_(thresholds),
      per_class_(class_names.size()) {
    for (const auto& [name, pair] : per_class) {
        const auto it = std::find(class_names.begin(), class_names.end(), name);
        if (it == class_names.end())
            throw Error("class thresholds for '" + name + "': no such class (the model's classes: " +
                        class_list(class_names) + ")");
        const auto c = static_cast<std::size_t>(it - class_names.begin());
        if (static_cast<int>(c) == normal_class_)
            throw Error("class thresholds for '" + name + "': it is the normal class; thresholds apply to defect classes");
        per_class_[c] = pair;
    }
}

Decision DecisionRule::decide(const std::vector<float>& probabilities) const {
    Decision d;
    const auto normal = static_cast<std::size_t>(normal_class_);
    d.defect_probability = std::clamp(1.0f - probabilities[normal], 0.0f, 1.0f);
    for (std::size_t c = 0; c < probabilities.size(); ++c) {
        if (c != normal && (d.defect_class < 0 || probabilities[c] > probabilities[static_cast<std::size_t>(d.defect_class)]))
            d.defect_class = static_cast<int>(c);
    }
    const VerdictThresholds t =
        d.defect_class >= 0 ? per_class_[static_cast<std::size_t>(d.defect_class)].value_or(thresholds_) : thresholds_;
    d.verdict = d.defect_probability >= t.defective   ? Verdict::Defective
                : d.defect_probability >= t.reinspect ? Verdict::Reinspect
                                                      : Verdict::Normal;
    return d;
}

}  // namespace edgeqc
