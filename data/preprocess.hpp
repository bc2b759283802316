// The fixed preprocessing between a decoded image and the network input, shared by training and inference.
// Deliberately no augmentation: this must be exactly what a deployed model sees.
#pragma once

#include "data/image.hpp"
#include "engine/input_format.hpp"

namespace edgeqc {

// Everything before normalisation: convert_channels -> resize_image -> denoise -> CLAHE.
Image to_network_image(const Image& decoded, const InputFormat& format);

// to_network_image, then (x - mean[c]) / stddev[c]; writes input_floats(format) floats.
void preprocess_into(const Image& decoded, const InputFormat& format, float* out_chw);

}  // namespace edgeqc
