// The training/evaluation report: one self-contained HTML file (inline SVG charts, images as data: URIs,
// no scripts, no network) with loss and accuracy curves, the confusion matrix, per-class precision / recall /
// F1, one-vs-rest ROC curves with AUC and a gallery of the most confident mistakes. Deliberately static:
// it must open from an e-mail attachment or a shop-floor PC without internet.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "engine/metrics.hpp"

namespace edgeqc {

struct ReportEpoch {
    int epoch = 0;
    double train_loss = 0, train_accuracy = 0;
    double validation_loss = 0, validation_accuracy = 0;  // NaN without validation
    double learning_rate = 0;
};

// A table of text, shown after the facts (e.g. quantize's per-layer table).
struct ReportTable {
    std::string caption;
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
};

// A chart of points joined in order, shown after the tables (prune: validation accuracy against latency, a point
// per pruning level).
struct ReportChart {
    std::string title, x_label, y_label;
    std::vector<std::pair<double, double>> points;
};
struct ReportContent {
    std::string title;
    std::vector<std::pair<std::string, std::string>> facts;  // shown as a table: model, data, recipe, ...
    std::vector<ReportTable> tables;
    std::vector<ReportChart> charts;
    std::vector<ReportEpoch> history;                        // empty: no curves (e.g. eval without a training log)
    std::string evaluated_on;                                // what the metrics below were measured on
    bool has_evaluation = false;
    ClassificationReport report;
    std::vector<std::string> image_paths;  // N, for the gallery
    std::vector<int> labels;               // N
    std::vector<float> probabilities;      // N x K
    std::size_t gallery_size = 12;
};

// The whole document. Images of the gallery that can no longer be decoded are listed without a picture.
std::string render_html_report(const ReportContent& content);
// Written atomically; throws edgeqc::Error when the file cannot be written.
void write_html_report(const std::string& path, const ReportContent& content);

}  // namespace edgeqc
