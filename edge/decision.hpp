// The inspection decision of the source papers: defect probability p = 1 - P(normal class), then normal below the
// re-inspect threshold (0.5), re-inspect below the defective threshold (0.8), defective from there on. Thresholds
// are configurable, globally and per defect class (the most likely one decides which pair applies).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace edgeqc {

enum class Verdict { Normal, Reinspect, Defective };
const char* verdict_name(Verdict verdict);  // "normal", "re-inspect", "defective"

struct VerdictThresholds {
    float reinspect = 0.5f;
    float defective = 0.8f;
};

// "0.5,0.8"; throws Error unless 0 <= reinspect <= defective <= 1.
VerdictThresholds parse_thresholds(const std::string& text);

// "crack, pore, normal": class names for messages.
std::string class_list(const std::vector<std::string>& names);

struct Decision {
    float defect_probability = 0.0f;
    int defect_class = -1;  // the most likely class other than the normal one
    Verdict verdict = Verdict::Normal;
};

class DecisionRule {
public:
    // normal_class empty: the one class named normal, good, ok, free or no_defect (any case). per_class maps a
    // defect class name to its thresholds. Throws Error naming the classes when a name is unknown or ambiguous.
    DecisionRule(const std::vector<std::string>& class_names, const std::string& normal_class,
                 VerdictThresholds thresholds, const std::map<std::string, VerdictThresholds>& per_class = {});

    Decision decide(const std::vector<float>& probabilities) const;

    int normal_class() const { return normal_class_; }
    VerdictThresholds thresholds() const { return thresholds_; }
    void set_thresholds(VerdictThresholds thresholds) { thresholds_ = thresholds; }

private:
    int normal_class_ = -1;
    VerdictThresholds thresholds_;
    std::vector<std::optional<VerdictThresholds>> per_class_;  // one per class: its own pair, if it has one
};

}  // namespace edgeqc
