// Classification metrics as inspection papers report them: accuracy, per-class precision / recall / F1 /
// support, macro-F1, balanced accuracy, confusion matrix and one-vs-rest ROC AUC.
// Pure functions of labels and probabilities; no I/O besides formatting to text.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace edgeqc {

struct ClassificationReport {
    std::vector<std::string> class_names;
    std::vector<std::vector<std::size_t>> confusion;  // [true class][predicted class]
    std::vector<double> precision, recall, f1, roc_auc;  // per class; roc_auc NaN where a class has no positives or no negatives
    std::vector<std::size_t> support;
    std::size_t total = 0;
    double accuracy = 0.0;
    double macro_f1 = 0.0;           // over classes that occur in the labels or the predictions (as scikit-learn)
    double balanced_accuracy = 0.0;  // mean recall over classes with support > 0
    double macro_roc_auc = 0.0;      // mean over classes where AUC is defined; NaN if none
};

// labels: N values in [0, K); probabilities: N x K row-major, all finite (else edgeqc::Error).
ClassificationReport classification_report(const std::vector<int>& labels, const std::vector<float>& probabilities,
                                            const std::vector<std::string>& class_names);

// Area under the ROC curve for scores of positives vs negatives (Mann-Whitney U, ties counted half).
double roc_auc(const std::vector<float>& scores, const std::vector<bool>& is_positive);

// The ROC curve of the same scores: (false positive rate, true positive rate) points from (0, 0) to (1, 1),
// one per distinct score (ties move diagonally), so the trapezoids under it add up to roc_auc. Empty when
// there are no positives or no negatives.
std::vector<std::pair<double, double>> roc_curve(const std::vector<float>& scores, const std::vector<bool>& is_positive);

// The per-class table, summary lines and confusion matrix as aligned text.
std::string format_report(const ClassificationReport& report);
// The same as JSON: accuracy, macro_f1, balanced_accuracy, roc_auc, per_class[], confusion (undefined AUC is null).
nlohmann::json report_to_json(const ClassificationReport& report);

}  // namespace edgeqc
