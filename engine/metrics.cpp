// Computation and text formatting of classification metrics.
#include "engine/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "engine/error.hpp"
#include "engine/json_output.hpp"

namespace edgeqc {

double roc_auc(const std::vector<float>& scores, const std::vector<bool>& is_positive) {
    std::vector<std::size_t> order(scores.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
    double positive_rank_sum = 0.0;
    std::size_t positives = 0;
    // Average ranks over runs of tied scores.
    for (std::size_t start = 0; start < order.size();) {
        std::size_t end = start;
        while (end < order.size() && scores[order[end]] == scores[order[start]]) ++end;
        const double average_rank = (static_cast<double>(start) + static_cast<double>(end) + 1.0) / 2.0;
        for (std::size_t i = start; i < end; ++i) {
            if (is_positive[order[i]]) {
                positive_rank_sum += average_rank;
                ++positives;
            }
        }
        start = end;
    }
    const std::size_t negatives = scores.size() - positives;
    if (positives == 0 || negatives == 0) return std::numeric_limits<double>::quiet_NaN();
    const double u = positive_rank_sum - static_cast<double>(positives) * (static_cast<double>(positives) + 1.0) / 2.0;
    return u / (static_cast<double>(positives) * static_cast<double>(negatives));
}

std::vector<std::pair<double, double>> roc_curve(const std::vector<float>& scores, const std::vector<bool>& is_positive) {
    const auto positives = static_cast<std::size_t>(std::count(is_positive.begin(), is_positive.end(), true));
    const std::size_t negatives = scores.size() - positives;
    if (positives == 0 || negatives == 0) return {};
    std::vector<std::size_t> order(scores.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
    std::vector<std::pair<double, double>> curve{{0.0, 0.0}};
    std::size_t true_positives = 0, false_positives = 0;
    for (std::size_t start = 0; start < order.size();) {
        std::size_t end = start;
        for (; end < order.size() && scores[order[end]] == scores[order[start]]; ++end)
            (is_positive[order[end]] ? true_positives : false_positives) += 1;
        curve.emplace_back(static_cast<double>(false_positives) / static_cast<double>(negatives),
                           static_cast<double>(true_positives) / static_cast<double>(positives));
        start = end;
    }
    return curve;
}

ClassificationReport classification_report(const std::vector<int>& labels, const std::vector<float>& probabilities,
                                            const std::vector<std::string>& class_names) {
    const std::size_t classes = class_names.size();
    const std::size_t n = labels.size();
    if (probabilities.size() != n * classes) throw Error("classification_report: probabilities are not N x K");
    // NaN would break the sorting in roc_auc and every argmax; it only arises from a diverged or damaged model.
    if (!std::all_of(probabilities.begin(), probabilities.end(), [](float p) { return std::isfinite(p); }))
        throw Error("the model produced non-finite outputs (its weights diverged or are damaged)");
    ClassificationReport r;
    r.class_names = class_names;
    r.total = n;
    r.confusion.assign(classes, std::vector<std::size_t>(classes, 0));
    for (std::size_t i = 0; i < n; ++i) {
        const float* row = probabilities.data() + i * classes;
        const auto predicted = static_cast<std::size_t>(std::max_element(row, row + classes) - row);
        ++r.confusion[static_cast<std::size_t>(labels[i])][predicted];
    }
    std::size_t correct = 0, present = 0, in_f1 = 0, auc_defined = 0;
    double f1_sum = 0.0, recall_sum = 0.0, auc_sum = 0.0;
    for (std::size_t k = 0; k < classes; ++k) {
        std::size_t predicted_k = 0;
        for (std::size_t t = 0; t < classes; ++t) predicted_k += r.confusion[t][k];
        const std::size_t true_positive = r.confusion[k][k];
        const std::size_t support = std::accumulate(r.confusion[k].begin(), r.confusion[k].end(), std::size_t{0});
        correct += true_positive;
        const double precision = predicted_k ? static_cast<double>(true_positive) / static_cast<double>(predicted_k) : 0.0;
        const double recall = support ? static_cast<double>(true_positive) / static_cast<double>(support) : 0.0;
        const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
        r.precision.push_back(precision);
        r.recall.push_back(recall);
        r.f1.push_back(f1);
        r.support.push_back(support);
        if (support) {
            ++present;
            recall_sum += recall;
        }
        if (support || predicted_k) {  // scikit-learn's macro average: labels in the truth or the predictions
            ++in_f1;
            f1_sum += f1;
        }
        std::vector<float> scores(n);
        std::vector<bool> positive(n);
        for (std::size_t i = 0; i < n; ++i) {
            scores[i] = probabilities[i * classes + k];
            positive[i] = static_cast<std::size_t>(labels[i]) == k;
        }
        r.roc_auc.push_back(roc_auc(scores, positive));
        if (!std::isnan(r.roc_auc.back())) {
            ++auc_defined;
            auc_sum += r.roc_auc.back();
        }
    }
    r.accuracy = n ? static_cast<double>(correct) / static_cast<double>(n) : 0.0;
    r.macro_f1 = in_f1 ? f1_sum / static_cast<double>(in_f1) : 0.0;
    r.balanced_accuracy = present ? recall_sum / static_cast<double>(present) : 0.0;
    r.macro_roc_auc = auc_defined ? auc_sum / static_cast<double>(auc_defined) : std::numeric_limits<double>::quiet_NaN();
    return r;
}

std::string format_report(const ClassificationReport& r) {
    std::size_t width = 9;
    for (const std::string& name : r.class_names) width = std::max(width, name.size());
    const int w = static_cast<int>(width);
    std::string text;
    char line[512];
    std::snprintf(line, sizeof line, "%-*s  %9s  %9s  %9s  %8s  %8s\n", w, "class", "precision", "recall", "f1-score",
                  "support", "roc-auc");
    text += line;
    for (std::size_t k = 0; k < r.class_names.size(); ++k) {
        std::snprintf(line, sizeof line, "%-*s  %9.4f  %9.4f  %9.4f  %8zu  %8.4f\n", w, r.class_names[k].c_str(),
                      r.precision[k], r.recall[k], r.f1[k], r.support[k], r.roc_auc[k]);
        text += line;
    }
    std::snprintf(line, sizeof line,
                  "\naccuracy           %.4f  (%zu images)\nmacro-F1           %.4f\nbalanced accuracy  %.4f\n"
                  "ROC AUC (macro OvR) %.4f\n\nconfusion matrix (rows: true class, columns: predicted)\n",
                  r.accuracy, r.total, r.macro_f1, r.balanced_accuracy, r.macro_roc_auc);
    text += line;
    std::snprintf(line, sizeof line, "%-*s", w, "");
    text += line;
    for (std::size_t k = 0; k < r.class_names.size(); ++k) {
        std::snprintf(line, sizeof line, " %7.7s", r.class_names[k].c_str());
        text += line;
    }
    text += '\n';
    for (std::size_t t = 0; t < r.class_names.size(); ++t) {
        std::snprintf(line, sizeof line, "%-*s", w, r.class_names[t].c_str());
        text += line;
        for (std::size_t p = 0; p < r.class_names.size(); ++p) {
            std::snprintf(line, sizeof line, " %7zu", r.confusion[t][p]);
            text += line;
        }
        text += '\n';
    }
    return text;
}

nlohmann::json report_to_json(const ClassificationReport& r) {
    nlohmann::json per_class = nlohmann::json::array();
    for (std::size_t k = 0; k < r.class_names.size(); ++k)
        per_class.push_back({{"class", r.class_names[k]}, {"precision", r.precision[k]}, {"recall", r.recall[k]},
                             {"f1", r.f1[k]}, {"support", r.support[k]}, {"roc_auc", number_or_null(r.roc_auc[k])}});
    return {{"images", r.total},         {"accuracy", r.accuracy},
            {"macro_f1", r.macro_f1},    {"balanced_accuracy", r.balanced_accuracy},
            {"roc_auc", number_or_null(r.macro_roc_auc)}, {"classes", r.class_names},
            {"per_class", per_class},    {"confusion", r.confusion}};
}

}  // namespace edgeqc
