// The input normalisation a model is trained with: per-channel mean and standard deviation measured on its
// training images after the model's preprocessing. Training-side: a deployed model reads them from its file.
#pragma once

#include <cstddef>
#include <vector>

#include "data/dataset.hpp"
#include "engine/input_format.hpp"

namespace edgeqc {

// Per-channel mean and standard deviation after convert + resize + enhancement, over at most max_images evenly
// spaced images; images that fail to decode are skipped, stddev is floored at 1e-3. Sets format.mean/stddev.
void estimate_normalization(const std::vector<LabelledImage>& images, InputFormat& format,
                            std::size_t max_images = 512);

}  // namespace edgeqc
