// Decode, classify, decide, timed from the moment the frame is in memory; and the result's JSON.
#include "edge/inspection.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <new>
#include <utility>

#include "data/image.hpp"
#include "engine/error.hpp"

namespace edgeqc {

namespace {

int parse_int(const std::string& text, const std::string& what) {
    char* end = nullptr;
    const long value = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || value < 0 || value > kMaxImageSide)
        throw Error(what + ": '" + text + "' is not a whole number from 0 to " + std::to_string(kMaxImageSide));
    return static_cast<int>(value);
}

std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> parts(1);
    for (const char c : text) {
        if (c == separator) parts.emplace_back();
        else parts.back() += c;
    }
    return parts;
}

// Tile origins along one side of length `length`: 0, stride, ..., and a last one ending at the edge.
std::vector<int> tile_origins(int length, int tile, int stride) {
    std::vector<int> origins;
    for (int at = 0;; at += stride) {
        if (at + tile >= length) {
            origins.push_back(length - tile);
            return origins;
        }
        origins.push_back(at);
    }
}

}  // namespace

Rect parse_roi(const std::string& text) {
    const std::vector<std::string> parts = split(text, ',');
    if (parts.size() != 4) throw Error("--roi '" + text + "' must be x,y,width,height in pixels");
    const Rect r{parse_int(parts[0], "--roi x"), parse_int(parts[1], "--roi y"), parse_int(parts[2], "--roi width"),
                 parse_int(parts[3], "--roi height")};
    if (r.width < 1 || r.height < 1) throw Error("--roi '" + text + "' is empty");
    return r;
}

void parse_tiling(const std::string& tile, int stride, FrameLayout& layout) {
    const std::vector<std::string> parts = split(tile, 'x');
    if (parts.size() != 2) throw Error("--tile '" + tile + "' must be HEIGHTxWIDTH in pixels, e.g. 240x320");
    layout.tile_height = parse_int(parts[0], "--tile height");
    layout.tile_width = parse_int(parts[1], "--tile width");
    if (layout.tile_height < 8 || layout.tile_width < 8) throw Error("--tile '" + tile + "': tiles of 8x8 pixels or more");
    layout.stride = stride > 0 ? stride : std::min(layout.tile_width, layout.tile_height);
}

std::vector<Rect> tile_areas(const FrameLayout& layout, int width, int height) {
    const Rect region = layout.roi.value_or(Rect{0, 0, width, height});
    if (region.x + region.width > width || region.y + region.height > height)
        throw Error("the region of interest " + std::to_string(region.width) + "x" + std::to_string(region.height) +
                    " at " + std::to_string(region.x) + "," + std::to_string(region.y) + " is not inside the " +
                    std::to_string(width) + "x" + std::to_string(height) + " frame");
    if (layout.tile_width == 0) return {region};
    if (layout.tile_width > region.width || layout.tile_height > region.height)
        throw Error("tiles of " + std::to_string(layout.tile_height) + "x" + std::to_string(layout.tile_width) +
                    " do not fit in a region of " + std::to_string(region.height) + "x" + std::to_string(region.width));
    std::vector<Rect> tiles;
    for (const int y : tile_origins(region.height, layout.tile_height, layout.stride))
        for (const int x : tile_origins(region.width, layout.tile_width, layout.stride))
            tiles.push_back({region.x + x, region.y + y, layout.tile_width, layout.tile_height});
    return tiles;
}

namespace {

std::vector<std::unique_ptr<Classifier>> make_lanes(Model model, int threads, int max_batch, int lanes) {
    if (lanes < 1) throw Error("an inspector needs a lane or more, not " + std::to_string(lanes));
    std::vector<std::unique_ptr<Classifier>> classifiers;
    classifiers.push_back(std::make_unique<Classifier>(std::move(model), threads, max_batch));
    for (int lane = 1; lane < lanes; ++lane)
        classifiers.push_back(std::make_unique<Classifier>(classifiers.front()->plan().sharing_weights()));
    return classifiers;
}

}  // namespace

Inspector::Inspector(Model model, std::string model_id, const std::string& normal_class, VerdictThresholds thresholds,
                     const std::map<std::string, VerdictThresholds>& class_thresholds, int threads, int max_batch,
                     FrameLayout layout, int lanes)
    : lanes_(make_lanes(std::move(model), threads, max_batch, lanes)),
      layout_(layout),
      max_batch_(max_batch),
      rule_(description().class_names, normal_class, thresholds, class_thresholds),
      model_id_(std::move(model_id)) {}

DecisionRule Inspector::rule() const {
    std::lock_guard lock(rule_mutex_);
    return rule_;
}

void Inspector::set_thresholds(VerdictThresholds thresholds) {
    std::lock_guard lock(rule_mutex_);
    rule_.set_thresholds(thresholds);
}


template <class Decode>
bool Inspector::prepare(Decode decode, InspectionResult& result, std::vector<float>& input) const {
    try {
        const Image frame = decode();
        const std::vector<Rect> areas = tile_areas(layout_, frame.width, frame.height);
        input.resize(areas.size() * input_size());
        result.tiles.clear();
        for (std::size_t t = 0; t < areas.size(); ++t) {
            const Rect& a = areas[t];
            const bool whole = a.x == 0 && a.y == 0 && a.width == frame.width && a.height == frame.height;
            lanes_.front()->preprocess(whole ? frame : crop_image(frame, a.x, a.y, a.width, a.height),
                                   input.data() + t * input_size());
            result.tiles.push_back({a, {}, {}});
        }
        return true;
    } catch (const Error& e) {
        result.error = e.what();
    } catch (const std::bad_alloc&) {  // a frame too large for this device's memory is one bad frame, not the end
        result.error = "out of memory decoding the frame";
    }
    result.latency_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - result.read_at).count();
    return false;
}

// Whole frames decode at a DCT scale down to twice the model's input, so the area shrink after it still averages
// 2x2 decoded pixels or more per input pixel. On the real sets' test images, enlarged as a camera would see them,
// that kept >= 99.5 % of the full decode's verdicts at half its time; scaling down to the input size itself lost 1-2
// points of accuracy (bench/RESULTS.md, "JPEG decoding at a DCT scale").
DecodeSize Inspector::decode_size() const {
    if (!layout_.scaled_decode || layout_.roi || layout_.tile_width > 0) return {};
    const InputFormat& input = description().input;
    return {2 * input.width, 2 * input.height};
}

bool Inspector::prepare_encoded(const unsigned char* bytes, std::size_t size, InspectionResult& result,
                                std::vector<float>& input) const {
    return prepare(
        [&] {
            return decode_image_memory(bytes, size, result.source + " frame " + std::to_string(result.frame), decode_size());
        },
        result, input);
}

bool Inspector::prepare_file(const std::string& path, InspectionResult& result, std::vector<float>& input) const {
    return prepare([&] { return decode_image_file(path, decode_size()); }, result, input);
}

void Inspector::inspect_prepared(const float* inputs, const std::vector<InspectionResult*>& results,
                                 const DecisionRule& rule, int lane) {
    Classifier& classifier = *lanes_.at(static_cast<std::size_t>(lane));
    std::size_t tiles = 0;
    for (const InspectionResult* r : results) tiles += r->tiles.size();
    std::vector<Prediction> predictions(tiles);
    for (std::size_t start = 0; start < tiles; start += static_cast<std::size_t>(max_batch_)) {
        const std::size_t count = std::min(tiles - start, static_cast<std::size_t>(max_batch_));
        classifier.classify_batch(inputs + start * input_size(), static_cast<int>(count), predictions.data() + start);
    }
    const auto now = std::chrono::steady_clock::now();
    std::size_t next = 0;
    for (InspectionResult* r : results) {
        const TileResult* worst = nullptr;
        for (TileResult& tile : r->tiles) {
            tile.prediction = std::move(predictions[next++]);
            tile.decision = rule.decide(tile.prediction.probabilities);
            if (!worst || tile.decision.defect_probability > worst->decision.defect_probability) worst = &tile;
        }
        r->prediction = worst->prediction;
        r->decision = worst->decision;
        r->latency_ms = std::chrono::duration<double, std::milli>(now - r->read_at).count();
    }
}

void Inspector::inspect_encoded(const unsigned char* bytes, std::size_t size, InspectionResult& result) {
    if (prepare_encoded(bytes, size, result, input_)) inspect_prepared(input_.data(), {&result}, rule());
}

void Inspector::inspect_file(const std::string& path, InspectionResult& result) {
    if (prepare_file(path, result, input_)) inspect_prepared(input_.data(), {&result}, rule());
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
    if (layout_.tile_width > 0) {  // the tiles that are not normal, where they are and what they look like
        nlohmann::ordered_json tiles = nlohmann::ordered_json::array();
        for (const TileResult& t : r.tiles) {
            if (t.decision.verdict == Verdict::Normal) continue;
            tiles.push_back({{"x", t.area.x}, {"y", t.area.y}, {"width", t.area.width}, {"height", t.area.height},
                             {"class", classes[static_cast<std::size_t>(t.prediction.class_index)]},
                             {"p_defect", t.decision.defect_probability}, {"verdict", verdict_name(t.decision.verdict)}});
        }
        j["tiles_inspected"] = r.tiles.size();
        j["tiles"] = tiles;
    }
    j["latency_ms"] = r.latency_ms;
    return j;
}

}  // namespace edgeqc
