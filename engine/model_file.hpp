// The .eqc model file: one versioned, self-describing, checksummed file holding the architecture, class
// names, input format and normalisation, all weights and buffers, and optionally the training state for
// --resume. Loading validates every field and size before anything is trusted.
//
// Layout (little-endian): magic "EQCMODEL", u32 format version, u32 section count, then sections
// (u32 tag, u64 byte length, payload), then u32 CRC-32 of every byte before it. Sections:
//   META  architecture spec, class names, input C/H/W, mean and stddev per channel, writer version
//   TENS  named tensors: name, u8 element type (DataType: 0 f32, 1 s8, 2 s32, 3 u8), u8 rank, u32 dims, then for
//         any type but f32 (v3) u32 scale count and f32 scales (one per output channel), then the data
//   PREP  (v2) enhancement before normalisation: u8 denoise kind, u8 window, f32 CLAHE clip, u8 CLAHE tiles
//   TRNS  optional training state: progress, optimizer moments, recipe (key=value text), and (v2) the
//         callbacks' state (key=value text)
// Unknown section tags are skipped, so a later minor addition stays readable; a higher version is refused.
// v2 added PREP and is required for it: a v1 reader skipping PREP would silently preprocess differently.
// v1 files still load (no enhancement, no callback state). v3 added typed tensors; a file whose tensors are all
// f32 is still written as v2, so earlier builds keep reading float models.
#pragma once

#include "engine/output_file.hpp"  // write_file_atomically, check_output_writable: what save_model uses

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

inline constexpr std::uint32_t kModelFormatVersion = 4;  // the newest version this build reads

// What --resume needs to continue a run exactly where the checkpoint left it. The moments cover the trainable
// network's parameter arena (padding included); the training side checks their size against its network.
struct TrainingState {
    std::uint32_t epochs_done = 0;
    std::uint64_t optimizer_steps = 0;
    double best_metric = -1.0;
    std::uint32_t best_epoch = 0;
    AlignedFloats first_moment, second_moment;
    std::map<std::string, std::string> recipe;  // the training options, to check and restore on resume
    std::map<std::string, std::string> callbacks;  // early stopping / plateau counters and the lr scale
};

struct LoadedModel : Model {
    bool has_training_state = false;
    TrainingState training_state;
};

// Writes atomically (temporary file in the same folder, then rename); throws edgeqc::Error on any failure,
// leaving an existing file at `path` untouched. The model is written as given (validate_model checks it).
void save_model(const std::string& path, const Model& model, const TrainingState* training_state = nullptr);
// Every field, size and tensor is checked (validate_model included) before the model is returned.
LoadedModel load_model(const std::string& path);
// The same in two steps, for callers that also need the file's bytes (its digest, a copy): read_model_file checks
// the path and the size; load_model_bytes checks everything else, naming path in its messages.
std::vector<unsigned char> read_model_file(const std::string& path);
LoadedModel load_model_bytes(const std::vector<unsigned char>& bytes, const std::string& path);

}  // namespace edgeqc
