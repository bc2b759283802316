// `edgeqc quantize`: post-training static quantization of a trained model, end to end. Calibration images are
// read and preprocessed as the model says, the float model's activations are calibrated (optim/calibration.hpp),
// the chosen layers are quantized (engine/model_passes.hpp), and the result is checked against the float model on
// held-out images; `auto` keeps the most sensitive layers in float until the agreement target is met.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "optim/calibration.hpp"
#include "optim/progress_observer.hpp"

namespace edgeqc {

struct QuantizeOptions {
    std::string calibration_dir;  // a labelled folder or a plain folder of images, at any depth
    CalibrationMethod method = CalibrationMethod::Mse;  // the best of the four on the real sets (README)
    int images = 500;                    // at most this many, drawn at random with `seed`
    bool images_requested = false;       // the user asked for `images`: say so when the folder has fewer
    // Layer names ("conv1", "fc2"; "first" for the first conv or dense layer) to keep in float. By default the
    // first: its input, the image, loses half its 256 levels to 7-bit activations, and it has one or three input
    // channels, where int8 gains no speed.
    std::vector<std::string> keep_fp32 = {"first"};
    bool auto_keep = false;              // keep_fp32, then the most sensitive layers, until the agreement target
    double agreement_target = 0.995;     // auto: top-1 agreement with the float model on held-out images
    std::uint64_t seed = 1;
    int batch = 16;
};

// The name a user gives layer `layer` of a resolved architecture: its conv or dense layers counted from 1
// ("conv1", "conv2", ..., "fc1", ...), the same before and after batch norm is folded. Empty for other layers.
std::string weighted_layer_name(const ResolvedArchitecture& architecture, std::size_t layer);

struct LayerQuantization {
    std::string name;  // "conv3"
    int layer = 0;     // in the folded architecture
    bool quantized = false;
    ActivationQuantization input;  // as calibrated (also for a layer kept in float)
    float threshold = 0.0f;        // the top of the calibrated range
    double clipped = 0.0;          // fraction of calibration inputs above the threshold
    float weight_scale_min = 0.0f, weight_scale_max = 0.0f;  // of a quantized layer
    // auto: the top-1 disagreement with the float model when this layer alone is int8, and the relative RMS
    // error of the logits then (-1 when not measured).
    double sensitivity = -1.0, logit_error = -1.0;
};

struct QuantizeResult {
    Model model;  // the quantized model (batch norm folded)
    std::vector<LayerQuantization> layers;
    std::size_t calibration_images = 0, held_out_images = 0, skipped_images = 0, requested_images = 0;
    double agreement = 1.0;  // top-1 agreement with the float model on the held-out images
    bool target_met = true;  // auto: whether the agreement target was reached
};

// Throws edgeqc::Error for an already quantized model, an unknown layer name, or a calibration folder without a
// decodable image; corrupt images are skipped, counted and reported to the observer.
QuantizeResult quantize(const Model& model, const QuantizeOptions& options, ProgressObserver& observer);

}  // namespace edgeqc
