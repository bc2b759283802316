// Metrics and the learning-rate schedule against hand-computed values (scikit-learn conventions for the
// metrics): ROC AUC with ties, macro-F1 with a predicted-but-absent class, non-finite outputs refused.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "engine/error.hpp"
#include "engine/metrics.hpp"
#include "optim/schedule.hpp"

using namespace edgeqc;

TEST_CASE("roc_auc counts ties as half and is undefined without both classes") {
    // sklearn.metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
    CHECK(roc_auc({0.1f, 0.4f, 0.35f, 0.8f}, {false, false, true, true}) == doctest::Approx(0.75));
    CHECK(roc_auc({0.5f, 0.5f, 0.5f, 0.5f}, {false, true, false, true}) == doctest::Approx(0.5));
    CHECK(roc_auc({0.2f, 0.2f, 0.9f}, {false, true, true}) == doctest::Approx(0.75));  // one win, one tie
    CHECK(std::isnan(roc_auc({0.1f, 0.2f}, {true, true})));
}

TEST_CASE("classification_report: per-class figures, macro-F1 over true or predicted classes, balanced accuracy") {
    // Three classes; class 2 never occurs in the labels but is predicted once.
    const std::vector<int> labels{0, 0, 0, 1, 1};
    const std::vector<float> probabilities{0.9f, 0.1f, 0.0f,   // 0 -> 0
                                           0.8f, 0.2f, 0.0f,   // 0 -> 0
                                           0.1f, 0.2f, 0.7f,   // 0 -> 2
                                           0.3f, 0.7f, 0.0f,   // 1 -> 1
                                           0.6f, 0.4f, 0.0f};  // 1 -> 0
    const ClassificationReport r = classification_report(labels, probabilities, {"a", "b", "c"});
    CHECK(r.accuracy == doctest::Approx(3.0 / 5.0));
    CHECK(r.precision[0] == doctest::Approx(2.0 / 3.0));
    CHECK(r.recall[0] == doctest::Approx(2.0 / 3.0));
    CHECK(r.precision[1] == doctest::Approx(1.0));
    CHECK(r.recall[1] == doctest::Approx(0.5));
    CHECK(r.f1[2] == 0.0);
    CHECK(r.support == std::vector<std::size_t>{3, 2, 0});
    CHECK(r.confusion[0] == std::vector<std::size_t>{2, 0, 1});
    // sklearn f1_score(average="macro"): mean of F1 over labels {0, 1, 2} = (2/3 + 2/3 + 0) / 3
    CHECK(r.macro_f1 == doctest::Approx((2.0 / 3.0 + 2.0 / 3.0 + 0.0) / 3.0));
    // balanced accuracy: mean recall over classes that occur in the labels
    CHECK(r.balanced_accuracy == doctest::Approx((2.0 / 3.0 + 0.5) / 2.0));
    CHECK(std::isnan(r.roc_auc[2]));  // no positives of class 2
    CHECK(r.macro_roc_auc == doctest::Approx((r.roc_auc[0] + r.roc_auc[1]) / 2.0));
}

TEST_CASE("classification_report refuses non-finite probabilities instead of sorting NaN") {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(classification_report({0, 1}, {nan, nan, 0.5f, 0.5f}, {"a", "b"}),
                         doctest::Contains("non-finite"), Error);
}

TEST_CASE("schedule: linear warm-up, then constant or cosine down to zero") {
    Schedule s{ScheduleKind::Cosine, 1.0f, 4, 14};
    CHECK(s.learning_rate_at(0) == doctest::Approx(0.25));
    CHECK(s.learning_rate_at(3) == doctest::Approx(1.0));
    CHECK(s.learning_rate_at(4) == doctest::Approx(1.0));
    CHECK(s.learning_rate_at(9) == doctest::Approx(0.5));  // halfway through the cosine
    CHECK(s.learning_rate_at(14) == doctest::Approx(0.0));
    CHECK(s.learning_rate_at(100) == doctest::Approx(0.0));
    s.kind = ScheduleKind::Constant;
    CHECK(s.learning_rate_at(9) == doctest::Approx(1.0));
    const Schedule all_warmup{ScheduleKind::Cosine, 2.0f, 10, 5};
    CHECK(all_warmup.learning_rate_at(7) == doctest::Approx(1.6));
    CHECK(all_warmup.learning_rate_at(12) == doctest::Approx(2.0));
    CHECK_THROWS_AS(parse_schedule_kind("linear"), Error);
}
