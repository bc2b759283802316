// One inspected frame as the edge node reports it: decode, classify, decide, and the JSON object written to standard
// output and published on <prefix>/<node>/result (schema in the README, "edgeqc-edge output").
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/classifier.hpp"
#include "edge/decision.hpp"

namespace edgeqc {

struct Rect {
    int x = 0, y = 0, width = 0, height = 0;
};

// Where in a frame to look: a region of interest (none: the whole frame), cut into tiles of tile_width x
// tile_height pixels at stride pixels (tile_width 0: one tile, the whole region), so a large frame (a whole build
// plate) is classified piece by piece at the model's scale.
struct FrameLayout {
    std::optional<Rect> roi;
    int tile_width = 0, tile_height = 0, stride = 0;
    // A whole JPEG frame of 4x the model's input or more decodes at a DCT scale (see Inspector::decode_size); off:
    // always at full size, as `edgeqc predict` does.
    bool scaled_decode = true;
};

// "x,y,w,h" for --roi; "HxW" and the stride for --tile/--stride. Throw Error on a malformed or empty area.
Rect parse_roi(const std::string& text);
void parse_tiling(const std::string& tile, int stride, FrameLayout& layout);

// The tiles of a width x height frame, row by row. They cover the region: the last row and column are moved back
// to end at its edge (overlapping the one before). Throws Error when the region is not inside the frame or the tile
// is larger than the region.
std::vector<Rect> tile_areas(const FrameLayout& layout, int width, int height);

struct TileResult {
    Rect area;  // in frame pixels
    Prediction prediction;
    Decision decision;
};

struct InspectionResult {
    std::int64_t frame = 0;
    std::string source;  // the file, or "stdin" for a stream
    std::string time;    // UTC, when the frame was read
    std::chrono::steady_clock::time_point read_at = std::chrono::steady_clock::now();  // the same, for latency
    Prediction prediction;  // the frame's: that of its worst tile (the highest defect probability)
    Decision decision;
    std::vector<TileResult> tiles;  // every tile (one, the whole region, without tiling)
    double latency_ms = 0;  // frame read to verdict: decode, preprocessing, waiting, inference, decision
    std::string error;      // set instead of a prediction when the frame could not be decoded
};

// A model's classifiers and its decision rule: what the edge node swaps as a whole when the model changes. It has one
// classifier per lane, all on one set of packed weights, each with its own buffers, so that several frames can be
// classified at once, each on its own thread: on a small CPU, two one-thread inferences side by side get more frames through than one inference
// on two threads, which waits for the slower half of every layer (bench/RESULTS.md).
class Inspector {
public:
    // model_id: the SHA-256 of the model file; threads: per lane; max_batch: the most images (tiles) one inference
    // takes. Throws Error when the model cannot be planned or the rule does not fit its classes.
    Inspector(Model model, std::string model_id, const std::string& normal_class, VerdictThresholds thresholds,
              const std::map<std::string, VerdictThresholds>& class_thresholds, int threads, int max_batch = 1,
              FrameLayout layout = {}, int lanes = 1);

    // Classifies a JPEG/PNG/... held in memory, or a file; a frame that cannot be read or decoded gives a result
    // with its error set (it never throws for a bad frame).
    void inspect_encoded(const unsigned char* bytes, std::size_t size, InspectionResult& result);
    void inspect_file(const std::string& path, InspectionResult& result);

    // The same in two steps, for a pipeline that decodes on one thread and classifies batches on another.
    // prepare_*: decode, cut into tiles and preprocess each into input (input_size() floats per tile, result.tiles
    // gets their areas); false (with result.error set) for a bad frame. Thread-safe against inspect_prepared.
    std::size_t input_size() const { return lanes_.front()->input_size(); }
    bool prepare_encoded(const unsigned char* bytes, std::size_t size, InspectionResult& result,
                         std::vector<float>& input) const;
    bool prepare_file(const std::string& path, InspectionResult& result, std::vector<float>& input) const;
    // Classifies the prepared tiles of results (their inputs back to back, in order) on a lane and decides each
    // frame by rule (a snapshot of rule(): the thresholds in force when the frames' turn came, whatever changes while
    // they are classified). Different lanes may run at once, from different threads; one lane is one thread's at a time.
    void inspect_prepared(const float* inputs, const std::vector<InspectionResult*>& results, const DecisionRule& rule,
                          int lane = 0);
    int lanes() const { return static_cast<int>(lanes_.size()); }

    // The whole image through the model on lane 0, no tiles (the self-test of a new model).
    Prediction classify(const Image& image) { return lanes_.front()->classify(image); }

    nlohmann::ordered_json to_json(const InspectionResult& result, const std::string& node) const;

    const ModelDescription& description() const { return lanes_.front()->description(); }
    DecisionRule rule() const;
    void set_thresholds(VerdictThresholds thresholds);
    const std::string& model_id() const { return model_id_; }

private:
    template <class Decode>
    bool prepare(Decode decode, InspectionResult& result, std::vector<float>& input) const;
    DecodeSize decode_size() const;

    std::vector<std::unique_ptr<Classifier>> lanes_;
    FrameLayout layout_;
    int max_batch_;
    mutable std::mutex rule_mutex_;  // the thresholds change between frames while other lanes copy the rule
    DecisionRule rule_;
    std::string model_id_;
    std::vector<float> input_;  // inspect_encoded and inspect_file's one frame
};

}  // namespace edgeqc
