// Decode, classify, decide, timed from the moment the frame is in memory; and the result's JSON.
#include "edge/inspection.hpp"

#include <chrono>
#include <new>
#include <utility>

#include "data/image.hpp"
#include "engine/error.hpp"

namespace edgeqc {

Inspector::Inspector(Model model, std::string model_id, const std::string& normal_class, VerdictThresholds thresholds,
                     const std::map<std::string, VerdictThresholds>& class_thresholds, int threads, int max_batch)
    : classifier_(std::move(model), threads, max_batch),
      rule_(classifier_.description().class_names, normal_class, thresholds, class_thresholds),
      model_id_(std::move(model_id)),
      input_(classifier_.input_size()) {}

template <class Decode>
bool Inspector::prepare(Decode decode, InspectionResult& result, float* input) const {
    try {
        classifier_.preprocess(decode(), input);
        return true;
    } catch (const Error& e) {
        result.error = e.what();
    } catch (const std::bad_alloc&) {  // a frame too large for this device's memory is one bad frame, not the end
        result.error = "out of memory decoding the frame";
    }
    result.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - result.read_at).count();
    return false;
}

bool Inspector::prepare_encoded(const unsigned char* bytes, std::size_t size, InspectionResult& result,
                                float* input) const {
    return prepare([&] { return decode_image_memory(bytes, size, result.source + " frame " + std::to_string(result.frame)); },
                   result, input);
}

bool Inspector::prepare_file(const std::string& path, InspectionResult& result, float* input) const {
    return prepare([&] { return decode_image_file(path); }, result, input);
}

void Inspector::inspect_prepared(const float* inputs, const std::vector<InspectionResult*>& results) {
    std::vector<Prediction> predictions(results.size());
    classifier_.classify_batch(inputs, static_cast<int>(results.size()), predictions.data());
    const auto now = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < results.size(); ++i) {
        InspectionResult& r = *results[i];
        r.prediction = std::move(predictions[i]);
        r.decision = rule_.decide(r.prediction.probabilities);
        r.latency_ms = std::chrono::duration<double, std::milli>(now - r.read_at).count();
    }
}

void Inspector::inspect_encoded(const unsigned char* bytes, std::size_t size, InspectionResult& result) {
    if (prepare_encoded(bytes, size, result, input_.data())) inspect_prepared(input_.data(), {&result});
}

void Inspector::inspect_file(const std::string& path, InspectionResult& result) {
    if (prepare_file(path, result, input_.data())) inspect_prepared(input_.data(), {&result});
}

nlohmann::ordered_json Inspector::to_json(const InspectionResult& r, const std::string& node) const {
    nlohmann::ordered_json j = {{"node", node}, {"frame", r.frame}, {"source", r.source}, {"time", r.time}, {"model", model_id_}};
    if (!r.error.empty()) {
        j["error"] = r.error;
        return j;
    }
    const std::vector<std::string>& classes = description().class_names;
    nlohmann::ordered_json probabilities = nlohmann::ordered_json::object();
    for (std::size_t c = 0; c < classes.size(); ++c) probabilities[classes[c]] = r.prediction.probabilities[c];
    j["class"] = classes[static_cast<std::size_t>(r.prediction.class_index)];
    j["probabilities"] = probabilities;
    j["p_defect"] = r.decision.defect_probability;
    j["verdict"] = verdict_name(r.decision.verdict);
    j["latency_ms"] = r.latency_ms;
    return j;
}

}  // namespace edgeqc
