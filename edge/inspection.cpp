// Decode, classify, decide, timed from the moment the frame is in memory; and the result's JSON.
#include "edge/inspection.hpp"

#include <chrono>
#include <new>
#include <utility>

#include "data/image.hpp"
#include "engine/error.hpp"

namespace edgeqc {

Inspector::Inspector(Model model, std::string model_id, const std::string& normal_class, VerdictThresholds thresholds,
                     const std::map<std::string, VerdictThresholds>& class_thresholds, int threads)
    : classifier_(std::move(model), threads),
      rule_(classifier_.description().class_names, normal_class, thresholds, class_thresholds),
      model_id_(std::move(model_id)) {}

template <class Decode>
void Inspector::inspect(Decode decode, InspectionResult& result) {
    const auto start = std::chrono::steady_clock::now();
    try {
        result.prediction = classifier_.classify(decode());
        result.decision = rule_.decide(result.prediction.probabilities);
    } catch (const Error& e) {
        result.error = e.what();
    } catch (const std::bad_alloc&) {  // a frame too large for this device's memory is one bad frame, not the end
        result.error = "out of memory decoding or classifying the frame";
    }
    result.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

void Inspector::inspect_encoded(const unsigned char* bytes, std::size_t size, InspectionResult& result) {
    inspect([&] { return decode_image_memory(bytes, size, result.source + " frame " + std::to_string(result.frame)); },
            result);
}

void Inspector::inspect_file(const std::string& path, InspectionResult& result) {
    inspect([&] { return decode_image_file(path); }, result);
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
