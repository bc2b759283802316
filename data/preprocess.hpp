// The fixed preprocessing between a decoded image and the network input, shared by training and inference.
// Deliberately no augmentation: this must be exactly what a deployed model sees.
#pragma once

#include <cstddef>
#include <vector>

#include "data/dataset.hpp"
#include "data/image.hpp"

namespace edgeqc {

// The largest network input side: a 3 x 4096 x 4096 input is already 200 MB per image, so a model file (or
// option) asking for more is refused before anything is allocated. Decoded images may be larger (kMaxImageSide).
inline constexpr int kMaxInputSide = 4096;

// Stored in the model file, so inference repeats the training-time preprocessing.
struct InputFormat {
    int height = 80, width = 120, channels = 1;
    std::vector<float> mean, stddev;  // per channel; both empty means mean 0, stddev 1
};

// Throws Error unless channels is 1 or 3, the sides are within the image limits and mean/stddev
// are empty or hold one positive stddev per channel.
void validate_input_format(const InputFormat& format);

inline std::size_t input_floats(const InputFormat& format) {
    return static_cast<std::size_t>(format.channels) * static_cast<std::size_t>(format.height) *
           static_cast<std::size_t>(format.width);
}

// convert_channels -> resize_image -> (x - mean[c]) / stddev[c]; writes input_floats(format) floats.
void preprocess_into(const Image& decoded, const InputFormat& format, float* out_chw);

// Per-channel mean and standard deviation after convert + resize, over at most max_images evenly
// spaced images; images that fail to decode are skipped, stddev is floored at 1e-3.
void estimate_normalization(const std::vector<LabelledImage>& images, InputFormat& format,
                            std::size_t max_images = 512);

}  // namespace edgeqc
