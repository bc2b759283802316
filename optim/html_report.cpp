// HTML and SVG generation for the report. Every text that comes from data (class names, file names) is
// escaped; numbers are formatted here, so the document needs nothing but a browser.
#include "optim/html_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <stdexcept>

#include "data/image.hpp"
#include "engine/error.hpp"
#include "engine/model_file.hpp"

namespace edgeqc {

namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int kThumbnailSide = 128;

std::string escaped(const std::string& text) {
    std::string out;
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string number(double value, const char* format = "%.4f") {
    if (!std::isfinite(value)) return "n/a";
    char text[48];
    std::snprintf(text, sizeof text, format, value);
    return text;
}

std::string base64(const std::vector<unsigned char>& bytes) {
    static const char* const digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        const std::uint32_t chunk = static_cast<std::uint32_t>(bytes[i]) << 16 |
                                    (i + 1 < bytes.size() ? static_cast<std::uint32_t>(bytes[i + 1]) << 8 : 0u) |
                                    (i + 2 < bytes.size() ? static_cast<std::uint32_t>(bytes[i + 2]) : 0u);
        out += digits[chunk >> 18 & 63];
        out += digits[chunk >> 12 & 63];
        out += i + 1 < bytes.size() ? digits[chunk >> 6 & 63] : '=';
        out += i + 2 < bytes.size() ? digits[chunk & 63] : '=';
    }
    return out;
}

struct Series {
    std::string name, color;
    std::vector<std::pair<double, double>> points;  // NaN y values break the line
    bool dashed = false;
};

struct Axes {
    double x_min, x_max, y_min, y_max;
    std::string x_label, y_label;
};

// A line chart with axes, five ticks per axis and a legend on the right.
std::string line_chart(const std::string& title, const std::vector<Series>& series, const Axes& axes) {
    constexpr double kWidth = 520, kHeight = 300, kLeft = 56, kRight = 170, kTop = 28, kBottom = 44;
    const double plot_width = kWidth - kLeft - kRight, plot_height = kHeight - kTop - kBottom;
    const double x_span = axes.x_max > axes.x_min ? axes.x_max - axes.x_min : 1.0;
    const double y_span = axes.y_max > axes.y_min ? axes.y_max - axes.y_min : 1.0;
    auto px = [&](double x) { return kLeft + (x - axes.x_min) / x_span * plot_width; };
    auto py = [&](double y) { return kTop + plot_height - (y - axes.y_min) / y_span * plot_height; };
    std::string svg = "<svg class=\"chart\" width=\"" + number(kWidth, "%.0f") + "\" height=\"" + number(kHeight, "%.0f") +
                      "\" viewBox=\"0 0 " + number(kWidth, "%.0f") + " " + number(kHeight, "%.0f") + "\" role=\"img\">\n";
    svg += "<text x=\"" + number(kLeft, "%.0f") + "\" y=\"18\" class=\"title\">" + escaped(title) + "</text>\n";
    for (int t = 0; t <= 4; ++t) {
        const double x = axes.x_min + x_span * t / 4.0, y = axes.y_min + y_span * t / 4.0;
        svg += "<line x1=\"" + number(px(x), "%.1f") + "\" y1=\"" + number(kTop, "%.1f") + "\" x2=\"" + number(px(x), "%.1f") +
               "\" y2=\"" + number(kTop + plot_height, "%.1f") + "\" class=\"grid\"/>\n";
        svg += "<line x1=\"" + number(kLeft, "%.1f") + "\" y1=\"" + number(py(y), "%.1f") + "\" x2=\"" +
               number(kLeft + plot_width, "%.1f") + "\" y2=\"" + number(py(y), "%.1f") + "\" class=\"grid\"/>\n";
        svg += "<text x=\"" + number(px(x), "%.1f") + "\" y=\"" + number(kTop + plot_height + 16, "%.1f") +
               "\" class=\"tick\" text-anchor=\"middle\">" + number(x, "%.3g") + "</text>\n";
        svg += "<text x=\"" + number(kLeft - 6, "%.1f") + "\" y=\"" + number(py(y) + 4, "%.1f") +
               "\" class=\"tick\" text-anchor=\"end\">" + number(y, "%.3g") + "</text>\n";
    }
    svg += "<rect x=\"" + number(kLeft, "%.1f") + "\" y=\"" + number(kTop, "%.1f") + "\" width=\"" + number(plot_width, "%.1f") +
           "\" height=\"" + number(plot_height, "%.1f") + "\" class=\"frame\"/>\n";
    svg += "<text x=\"" + number(kLeft + plot_width / 2, "%.1f") + "\" y=\"" + number(kHeight - 8, "%.1f") +
           "\" class=\"label\" text-anchor=\"middle\">" + escaped(axes.x_label) + "</text>\n";
    svg += "<text transform=\"translate(14," + number(kTop + plot_height / 2, "%.1f") +
           ") rotate(-90)\" class=\"label\" text-anchor=\"middle\">" + escaped(axes.y_label) + "</text>\n";
    for (std::size_t s = 0; s < series.size(); ++s) {
        const Series& line = series[s];
        std::string path;
        bool pen_down = false;
        for (const auto& [x, y] : line.points) {
            if (!std::isfinite(y)) {
                pen_down = false;
                continue;
            }
            path += (pen_down ? " L" : " M") + number(px(x), "%.1f") + "," + number(py(std::clamp(y, axes.y_min, axes.y_max)), "%.1f");
            pen_down = true;
        }
        if (!path.empty())
            svg += "<path d=\"" + path + "\" fill=\"none\" stroke=\"" + line.color + "\" stroke-width=\"2\"" +
                   (line.dashed ? " stroke-dasharray=\"5,4\"" : "") + "/>\n";
        const double legend_y = kTop + 10 + 18.0 * static_cast<double>(s);
        svg += "<line x1=\"" + number(kWidth - kRight + 12, "%.1f") + "\" y1=\"" + number(legend_y, "%.1f") + "\" x2=\"" +
               number(kWidth - kRight + 32, "%.1f") + "\" y2=\"" + number(legend_y, "%.1f") + "\" stroke=\"" + line.color +
               "\" stroke-width=\"3\"" + (line.dashed ? " stroke-dasharray=\"5,4\"" : "") + "/>\n";
        svg += "<text x=\"" + number(kWidth - kRight + 38, "%.1f") + "\" y=\"" + number(legend_y + 4, "%.1f") +
               "\" class=\"legend\">" + escaped(line.name) + "</text>\n";
    }
    return svg + "</svg>\n";
}

std::string curves_section(const std::vector<ReportEpoch>& history) {
    if (history.empty()) return "<h2>Training curves</h2>\n<p>No training log was found beside the model.</p>\n";
    Series train_loss{"train loss", kPalette[0], {}}, val_loss{"validation loss", kPalette[1], {}};
    Series train_acc{"train accuracy", kPalette[0], {}}, val_acc{"validation accuracy", kPalette[1], {}};
    Series rate{"learning rate", kPalette[2], {}};
    double loss_max = 0, rate_max = 0;
    for (const ReportEpoch& e : history) {
        train_loss.points.emplace_back(e.epoch, e.train_loss);
        val_loss.points.emplace_back(e.epoch, e.validation_loss);
        train_acc.points.emplace_back(e.epoch, e.train_accuracy);
        val_acc.points.emplace_back(e.epoch, e.validation_accuracy);
        rate.points.emplace_back(e.epoch, e.learning_rate);
        for (double v : {e.train_loss, e.validation_loss})
            if (std::isfinite(v)) loss_max = std::max(loss_max, v);
        rate_max = std::max(rate_max, e.learning_rate);
    }
    const double first = history.front().epoch, last = std::max(history.back().epoch, history.front().epoch + 1);
    return "<h2>Training curves</h2>\n<div class=\"charts\">\n" +
           line_chart("Loss per epoch", {train_loss, val_loss}, {first, last, 0.0, loss_max > 0 ? loss_max * 1.05 : 1.0, "epoch", "cross-entropy"}) +
           line_chart("Accuracy per epoch", {train_acc, val_acc}, {first, last, 0.0, 1.0, "epoch", "accuracy"}) +
           line_chart("Learning rate", {rate}, {first, last, 0.0, rate_max > 0 ? rate_max * 1.05 : 1.0, "epoch", "learning rate"}) +
           "</div>\n";
}

std::string metrics_section(const ReportContent& c) {
    const ClassificationReport& r = c.report;
    std::string html = "<h2>Metrics on " + escaped(c.evaluated_on) + "</h2>\n<table class=\"summary\">\n";
    const std::pair<const char*, double> summary[] = {{"images", static_cast<double>(r.total)}, {"accuracy", r.accuracy},
                                                      {"macro-F1", r.macro_f1}, {"balanced accuracy", r.balanced_accuracy},
                                                      {"macro ROC AUC (one-vs-rest)", r.macro_roc_auc}};
    for (const auto& [name, value] : summary)
        html += std::string("<tr><th>") + name + "</th><td>" + (std::string(name) == "images" ? number(value, "%.0f") : number(value)) + "</td></tr>\n";
    html += "</table>\n<h3>Per class</h3>\n<table class=\"per-class\">\n<tr><th>class</th><th>precision</th><th>recall</th>"
            "<th>F1</th><th>support</th><th>ROC AUC</th></tr>\n";
    for (std::size_t k = 0; k < r.class_names.size(); ++k)
        html += "<tr><td>" + escaped(r.class_names[k]) + "</td><td>" + number(r.precision[k]) + "</td><td>" + number(r.recall[k]) +
                "</td><td>" + number(r.f1[k]) + "</td><td>" + std::to_string(r.support[k]) + "</td><td>" + number(r.roc_auc[k]) +
                "</td></tr>\n";
    html += "</table>\n<h3>Confusion matrix</h3>\n<p>Rows: true class; columns: predicted class; shading: share of the row.</p>\n"
            "<table class=\"confusion\">\n<tr><th></th>";
    for (const std::string& name : r.class_names) html += "<th>" + escaped(name) + "</th>";
    html += "</tr>\n";
    for (std::size_t t = 0; t < r.class_names.size(); ++t) {
        html += "<tr><th>" + escaped(r.class_names[t]) + "</th>";
        std::size_t row_total = 0;
        for (std::size_t count : r.confusion[t]) row_total += count;
        for (std::size_t p = 0; p < r.class_names.size(); ++p) {
            const double share = row_total ? static_cast<double>(r.confusion[t][p]) / static_cast<double>(row_total) : 0.0;
            html += "<td style=\"background:rgba(" + std::string(t == p ? "44,160,44," : "214,39,40,") + number(share, "%.3f") +
                    ")\">" + std::to_string(r.confusion[t][p]) + "</td>";
        }
        html += "</tr>\n";
    }
    return html + "</table>\n";
}

std::string roc_section(const ReportContent& c) {
    const std::size_t classes = c.report.class_names.size();
    std::vector<Series> series;
    for (std::size_t k = 0; k < classes; ++k) {
        std::vector<float> scores;
        std::vector<bool> positive;
        for (std::size_t n = 0; n < c.labels.size(); ++n) {
            scores.push_back(c.probabilities[n * classes + k]);
            positive.push_back(c.labels[n] == static_cast<int>(k));
        }
        const auto curve = roc_curve(scores, positive);
        if (curve.empty()) continue;  // AUC undefined: the class has no positives (or no negatives) here
        series.push_back({c.report.class_names[k] + " (AUC " + number(c.report.roc_auc[k], "%.3f") + ")",
                          kPalette[k % std::size(kPalette)], curve});
    }
    series.push_back({"chance", "#999999", {{0.0, 0.0}, {1.0, 1.0}}, true});
    return "<h3>ROC curves (one class against the rest)</h3>\n<div class=\"charts\">\n" +
           line_chart("ROC", series, {0.0, 1.0, 0.0, 1.0, "false positive rate", "true positive rate"}) + "</div>\n";
}

std::string thumbnail(const std::string& path) {
    try {
        const Image image = decode_image_file(path);
        const double scale = std::min(1.0, static_cast<double>(kThumbnailSide) / std::max(image.width, image.height));
        const Image small = resize_image(convert_channels(image, image.channels >= 3 ? 3 : 1),
                                         std::max(1, static_cast<int>(image.width * scale)),
                                         std::max(1, static_cast<int>(image.height * scale)));
        return "<img alt=\"\" src=\"data:image/png;base64," + base64(encode_png(small, "a thumbnail")) + "\">";
    } catch (const Error&) {
        return "<div class=\"missing\">image unreadable</div>";
    }
}

std::string gallery_section(const ReportContent& c) {
    const std::size_t classes = c.report.class_names.size();
    struct Mistake {
        std::size_t index;
        int predicted;
        float confidence;
    };
    std::vector<Mistake> mistakes;
    for (std::size_t n = 0; n < c.labels.size(); ++n) {
        const float* row = c.probabilities.data() + n * classes;
        const auto predicted = static_cast<int>(std::max_element(row, row + classes) - row);
        if (predicted != c.labels[n]) mistakes.push_back({n, predicted, row[predicted]});
    }
    std::stable_sort(mistakes.begin(), mistakes.end(), [](const Mistake& a, const Mistake& b) { return a.confidence > b.confidence; });
    std::string html = "<h3>Most confident mistakes</h3>\n";
    if (mistakes.empty()) return html + "<p>Every image was classified correctly.</p>\n";
    html += "<p>" + std::to_string(mistakes.size()) + " images misclassified; the " +
            std::to_string(std::min(mistakes.size(), c.gallery_size)) + " the model was surest about:</p>\n<div class=\"gallery\">\n";
    for (std::size_t i = 0; i < std::min(mistakes.size(), c.gallery_size); ++i) {
        const Mistake& m = mistakes[i];
        const std::string& path = c.image_paths[m.index];
        html += "<figure>" + thumbnail(path) + "<figcaption><b>" + escaped(std::filesystem::path(path).filename().string()) +
                "</b><br>true: " + escaped(c.report.class_names[static_cast<std::size_t>(c.labels[m.index])]) +
                "<br>predicted: " + escaped(c.report.class_names[static_cast<std::size_t>(m.predicted)]) + " (" +
                number(m.confidence, "%.3f") + ")</figcaption></figure>\n";
    }
    return html + "</div>\n";
}

constexpr const char* kStyle = R"(body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ccc}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f4f4f4}table.facts td,table.facts th{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart .title{font-size:13px;font-weight:bold}
.chart .tick{font-size:10px;fill:#555}.chart .label{font-size:11px}.chart .legend{font-size:11px}
.chart .grid{stroke:#eee}.chart .frame{fill:none;stroke:#888}
.gallery{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;width:150px;font-size:11px}
figure img{max-width:128px;max-height:128px;border:2px solid #d62728}.missing{width:128px;height:64px;background:#eee})";

}  // namespace

std::string render_html_report(const ReportContent& c) {
    std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + escaped(c.title) +
                       "</title>\n<style>\n" + kStyle + "\n</style>\n</head>\n<body>\n<h1>" + escaped(c.title) + "</h1>\n";
    if (!c.facts.empty()) {
        html += "<table class=\"facts\">\n";
        for (const auto& [name, value] : c.facts) html += "<tr><th>" + escaped(name) + "</th><td>" + escaped(value) + "</td></tr>\n";
        html += "</table>\n";
    }
    for (const ReportTable& table : c.tables) {
        html += "<h2>" + escaped(table.caption) + "</h2>\n<table class=\"summary\">\n<tr>";
        for (const std::string& name : table.header) html += "<th>" + escaped(name) + "</th>";
        html += "</tr>\n";
        for (const auto& row : table.rows) {
            html += "<tr>";
            for (const std::string& cell : row) html += "<td>" + escaped(cell) + "</td>";
            html += "</tr>\n";
        }
        html += "</table>\n";
    }
    if (!c.charts.empty()) html += "<div class=\"charts\">\n";
    for (const ReportChart& chart : c.charts) {
        double x_max = 0.0, y_min = INFINITY, y_max = -INFINITY;
        for (const auto& [x, y] : chart.points) {
            x_max = std::max(x_max, x);
            y_min = std::min(y_min, y);
            y_max = std::max(y_max, y);
        }
        const double margin = y_max > y_min ? 0.1 * (y_max - y_min) : 0.05;
        html += line_chart(chart.title, {{chart.y_label, kPalette[0], chart.points}},
                           {0.0, x_max > 0.0 ? x_max * 1.05 : 1.0, chart.points.empty() ? 0.0 : y_min - margin,
                            chart.points.empty() ? 1.0 : y_max + margin, chart.x_label, chart.y_label});
    }
    if (!c.charts.empty()) html += "</div>\n";
    // A report of tables and charts alone (quantize, prune) has no training curves to miss.
    if (!c.history.empty() || (c.tables.empty() && c.charts.empty())) html += curves_section(c.history);
    if (c.has_evaluation) {
        if (c.labels.size() != c.image_paths.size() || c.probabilities.size() != c.labels.size() * c.report.class_names.size())
            throw std::logic_error("render_html_report: labels, paths and probabilities disagree in size");
        html += metrics_section(c) + roc_section(c) + gallery_section(c);
    } else if (c.tables.empty()) {
        html += "<h2>Metrics</h2>\n<p>No validation images: nothing was evaluated.</p>\n";
    }
    return html + "</body>\n</html>\n";
}

void write_html_report(const std::string& path, const ReportContent& content) {
    const std::string html = render_html_report(content);
    write_file_atomically(path, {html.begin(), html.end()});
}

}  // namespace edgeqc
