// One inspected frame as the edge node reports it: decode, classify, decide, and the JSON object written to standard
// output and published on <prefix>/<node>/result (schema in the README, "edgeqc-edge output").
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/classifier.hpp"
#include "edge/decision.hpp"

namespace edgeqc {

struct InspectionResult {
    std::int64_t frame = 0;
    std::string source;  // the file, or "stdin" for a stream
    std::string time;    // UTC, when the frame was read
    std::chrono::steady_clock::time_point read_at = std::chrono::steady_clock::now();  // the same, for latency
    Prediction prediction;
    Decision decision;
    double latency_ms = 0;  // frame read to verdict: decode, preprocessing, waiting, inference, decision
    std::string error;      // set instead of a prediction when the frame could not be decoded
};

// A classifier and its decision rule: what the edge node swaps as a whole when the model changes.
class Inspector {
public:
    // model_id: the SHA-256 of the model file; max_batch: the most frames inspect_prepared takes. Throws Error
    // when the model cannot be planned or the rule does not fit its classes.
    Inspector(Model model, std::string model_id, const std::string& normal_class, VerdictThresholds thresholds,
              const std::map<std::string, VerdictThresholds>& class_thresholds, int threads, int max_batch = 1);

    // Classifies a JPEG/PNG/... held in memory, or a file; a frame that cannot be read or decoded gives a result
    // with its error set (it never throws for a bad frame).
    void inspect_encoded(const unsigned char* bytes, std::size_t size, InspectionResult& result);
    void inspect_file(const std::string& path, InspectionResult& result);

    // The same in two steps, for a pipeline that decodes on one thread and classifies batches on another.
    // prepare_*: decode and preprocess into input_size() floats; false (with result.error set) for a bad frame.
    // Thread-safe against inspect_prepared running at the same time.
    std::size_t input_size() const { return classifier_.input_size(); }
    bool prepare_encoded(const unsigned char* bytes, std::size_t size, InspectionResult& result, float* input) const;
    bool prepare_file(const std::string& path, InspectionResult& result, float* input) const;
    // Classifies results.size() prepared inputs (back to back) and decides each.
    void inspect_prepared(const float* inputs, const std::vector<InspectionResult*>& results);

    nlohmann::ordered_json to_json(const InspectionResult& result, const std::string& node) const;

    const ModelDescription& description() const { return classifier_.description(); }
    const DecisionRule& rule() const { return rule_; }
    void set_thresholds(VerdictThresholds thresholds) { rule_.set_thresholds(thresholds); }
    const std::string& model_id() const { return model_id_; }

private:
    template <class Decode>
    bool prepare(Decode decode, InspectionResult& result, float* input) const;

    Classifier classifier_;
    DecisionRule rule_;
    std::string model_id_;
    std::vector<float> input_;  // inspect_encoded and inspect_file's one frame
};

}  // namespace edgeqc
