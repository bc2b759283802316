// The .eqc model file: one versioned, self-describing, checksummed file holding the architecture, class
// names, input format and normalisation, all weights and buffers, and optionally the training state for
// --resume. Loading validates every field and size before anything is trusted.
//
// Layout (little-endian): magic "EQCMODEL", u32 format version, u32 section count, then sections
// (u32 tag, u64 byte length, payload), then u32 CRC-32 of every byte before it. Sections:
//   META  architecture spec, class names, input C/H/W, mean and stddev per channel, writer version
//   TENS  named tensors: name, u8 element type, u8 rank, u32 dims, data. Element type 0 = f32; type 1 is
//         reserved for int8 with per-output-channel f32 scales (quantization issue)
//   PREP  (v2) enhancement before normalisation: u8 denoise kind, u8 window, f32 CLAHE clip, u8 CLAHE tiles
//   TRNS  optional training state: progress, optimizer moments, recipe (key=value text), and (v2) the
//         callbacks' state (key=value text)
// Unknown section tags are skipped, so a later minor addition stays readable; a higher version is refused.
// v2 added PREP and is required for it: a v1 reader skipping PREP would silently preprocess differently.
// v1 files still load (no enhancement, no callback state).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "data/preprocess.hpp"
#include "engine/network.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

inline constexpr std::uint32_t kModelFormatVersion = 2;

struct ModelDescription {
    std::string architecture;
    std::vector<std::string> class_names;
    InputFormat input;
    std::string writer_version;  // the edgeqc version that wrote the file (filled on load; saving writes this build's)
};

// What --resume needs to continue a run exactly where the checkpoint left it.
struct TrainingState {
    std::uint32_t epochs_done = 0;
    std::uint64_t optimizer_steps = 0;
    double best_metric = -1.0;
    std::uint32_t best_epoch = 0;
    AlignedFloats first_moment, second_moment;
    std::map<std::string, std::string> recipe;  // the training options, to check and restore on resume
    std::map<std::string, std::string> callbacks;  // early stopping / plateau counters and the lr scale
};

struct LoadedModel {
    ModelDescription description;
    std::unique_ptr<Network> network;  // training form (batch norm not folded), weights loaded
    bool has_training_state = false;
    TrainingState training_state;
};

// Writes atomically (temporary file in the same folder, then rename); throws edgeqc::Error on any failure,
// leaving an existing file at `path` untouched.
void save_model(const std::string& path, const ModelDescription& description, const Network& network,
                const TrainingState* training_state = nullptr);
// trainable: keep a gradient arena (for --resume); inference does without.
LoadedModel load_model(const std::string& path, bool trainable = false);

// Builds the network a description names (C x H x W from the input format), without weights.
std::unique_ptr<Network> build_network(const ModelDescription& description, bool trainable = true);

// Writes bytes to path via a temporary file and rename, so a crash or full disk never leaves a partial file.
void write_file_atomically(const std::string& path, const std::vector<unsigned char>& bytes);

}  // namespace edgeqc
