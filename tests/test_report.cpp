// The HTML report: ROC curve points worked out by hand, the document's sections, escaping, self-containment
// (no external references) and the gallery, and `train --report` / `eval --report` end to end. That the
// document renders in a browser is checked by bench/report_render.sh (headless Chromium screenshot).
#include <doctest/doctest.h>

#include <fstream>

#include "data/image.hpp"
#include "engine/error.hpp"
#include "optim/html_report.hpp"
#include "engine/metrics.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

std::size_t occurrences(const std::string& text, const std::string& part) {
    std::size_t count = 0;
    for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + part.size())) ++count;
    return count;
}


}  // namespace

TEST_CASE("roc_curve steps through the scores from the highest, and its area is roc_auc") {
    // Descending: 0.9 positive, 0.8 negative, 0.7 positive, 0.6 negative (2 of each).
    const std::vector<float> scores = {0.7f, 0.9f, 0.6f, 0.8f};
    const std::vector<bool> positive = {true, true, false, false};
    const auto curve = roc_curve(scores, positive);
    const std::vector<std::pair<double, double>> expected = {{0, 0}, {0, 0.5}, {0.5, 0.5}, {0.5, 1}, {1, 1}};
    CHECK(curve == expected);
    double area = 0.0;
    for (std::size_t i = 1; i < curve.size(); ++i)
        area += (curve[i].first - curve[i - 1].first) * (curve[i].second + curve[i - 1].second) / 2.0;
    CHECK(area == doctest::Approx(roc_auc(scores, positive)));
    CHECK(area == doctest::Approx(0.75));

    // A tie between a positive and a negative moves diagonally.
    CHECK(roc_curve({0.5f, 0.5f}, {true, false}) == std::vector<std::pair<double, double>>{{0, 0}, {1, 1}});
    CHECK(roc_curve({0.5f, 0.4f}, {true, true}).empty());
}

TEST_CASE("the report holds curves, metrics, ROC and the most confident mistakes, escaped and self-contained") {
    TempFolder folder;
    const std::vector<std::string> names = {"crack", "a<b&c", "normal"};
    ReportContent content;
    content.title = "test <report>";
    content.facts = {{"model", "m.eqc"}};
    content.history = {{1, 1.2, 0.4, 1.3, 0.35, 1e-3}, {2, 0.8, 0.6, 0.9, 0.55, 5e-4}, {3, 0.5, 0.8, NAN, NAN, 1e-4}};
    content.has_evaluation = true;
    content.evaluated_on = "fixtures";
    // Four images: 0 and 1 right, 2 wrong with 0.7, 3 wrong with 0.9 (an unreadable file).
    content.labels = {0, 1, 2, 0};
    content.probabilities = {0.8f, 0.1f, 0.1f, 0.2f, 0.7f, 0.1f, 0.7f, 0.2f, 0.1f, 0.05f, 0.9f, 0.05f};
    for (int i = 0; i < 3; ++i) {
        content.image_paths.push_back(folder.file("img" + std::to_string(i) + ".png"));
        write_png(content.image_paths.back(), Image{300, 200, 1, std::vector<float>(60000, 0.25f * i)});
    }
    content.image_paths.push_back(folder.file("gone.png"));
    content.report = classification_report(content.labels, content.probabilities, names);
    const std::string html = render_html_report(content);

    CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(html.find("test &lt;report&gt;") != std::string::npos);
    CHECK(html.find("a&lt;b&amp;c") != std::string::npos);
    CHECK(html.find("a<b&c") == std::string::npos);
    CHECK(occurrences(html, "<svg") == 4);  // loss, accuracy, learning rate, ROC
    CHECK(occurrences(html, "<svg") == occurrences(html, "</svg>"));
    CHECK(html.find("http://") == std::string::npos);
    CHECK(html.find("https://") == std::string::npos);
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("2 images misclassified") != std::string::npos);
    CHECK(occurrences(html, "data:image/png;base64,") == 1);  // img2; gone.png cannot be shown
    CHECK(html.find("image unreadable") != std::string::npos);
    CHECK(html.find("gone.png") < html.find("img2.png"));  // the surer mistake (0.9) first
    CHECK(html.find("predicted: a&lt;b&amp;c (0.900)") != std::string::npos);
    CHECK(html.find("<td>0.5000</td>") != std::string::npos);  // accuracy 2 / 4

    content.history.clear();
    content.has_evaluation = false;
    const std::string bare = render_html_report(content);
    CHECK(bare.find("No training log") != std::string::npos);
    CHECK(occurrences(bare, "<svg") == 0);
    CHECK_THROWS_AS(write_html_report(folder.str() + "/missing/r.html", content), Error);
}

TEST_CASE("cli: train --report and eval --report write self-contained reports; a bad report path fails first") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 5);
    const std::string common = " --arch c4bn-p-c6-p-fc --size 16x20 --epochs 2 --batch 8 --threads 2 --out '" + folder.file("m.eqc") + "'";
    const CommandResult trained = run_edgeqc("train '" + folder.file("data") + "'" + common + " --report '" + folder.file("train.html") + "'");
    INFO(trained.output);
    REQUIRE(trained.exit_code == 0);
    const std::string train_html = read_text(folder.file("train.html"));
    CHECK(train_html.find("Loss per epoch") != std::string::npos);
    CHECK(train_html.find("Metrics on the validation split (5 images)") != std::string::npos);
    CHECK(train_html.find("Confusion matrix") != std::string::npos);

    const CommandResult evaluated = run_edgeqc("eval '" + folder.file("m.eqc") + "' '" + folder.file("data") + "' --report '" +
                                               folder.file("eval.html") + "'");
    CHECK(evaluated.exit_code == 0);
    const std::string eval_html = read_text(folder.file("eval.html"));
    CHECK(eval_html.find("Loss per epoch") != std::string::npos);  // the log beside the model was found
    CHECK(eval_html.find("(25 images)") != std::string::npos);

    const CommandResult refused = run_edgeqc("train '" + folder.file("data") + "'" + common + " --report '" +
                                             folder.str() + "/no/such/dir/r.html" + "'");
    CHECK(refused.exit_code != 0);
    CHECK(refused.output.find("cannot write the report") != std::string::npos);
    CHECK(refused.output.find("epoch   1/") == std::string::npos);
}
