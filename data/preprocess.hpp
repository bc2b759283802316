// The fixed preprocessing between a decoded image and the network input, shared by training and inference.
// Deliberately no augmentation: this must be exactly what a deployed model sees.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/image.hpp"
#include "engine/input_format.hpp"

namespace edgeqc {

// convert_channels -> resize_image -> denoise -> CLAHE -> (x - mean[c]) / stddev[c]; writes
// input_floats(format) floats.
void preprocess_into(const Image& decoded, const InputFormat& format, float* out_chw);

// Per-channel mean and standard deviation after convert + resize + enhancement, over at most max_images evenly
// spaced images; images that fail to decode are skipped, stddev is floored at 1e-3.
void estimate_normalization(const std::vector<LabelledImage>& images, InputFormat& format,
                            std::size_t max_images = 512);

}  // namespace edgeqc
