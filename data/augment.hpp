// Training-time augmentation of one preprocessed sample: flips, rotation, zoom, translation (one affine
// warp, bilinear, edges replicated), brightness and Gaussian noise. Deliberately not part of preprocessing:
// it never runs at inference, and the loader's cache keeps the unaugmented sample.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image.hpp"
#include "data/preprocess.hpp"
#include "engine/rng.hpp"

namespace edgeqc {

struct AugmentOptions {
    bool horizontal_flip = false;  // each with probability 1/2
    bool vertical_flip = false;
    float rotation_degrees = 0.0f;  // angle uniform in [-r, r]
    float zoom = 0.0f;              // scale uniform in [1 - z, 1 + z]
    float translate = 0.0f;         // shift uniform in [-t, t] times each side
    float brightness = 0.0f;        // intensity factor uniform in [1 - b, 1 + b]
    float noise = 0.0f;             // Gaussian noise stddev, in [0, 1] intensity units

    bool enabled() const;
    bool operator==(const AugmentOptions&) const = default;
};

// The set `--augment` turns on: flips, +-20 degrees, +-10 % zoom, +-5 % shifts, brightness 0.8-1.2, noise 0.02.
AugmentOptions default_augmentation();

// Throws Error naming the command-line flag of the first value out of range (e.g. --rotation 400).
void validate_augment_options(const AugmentOptions& options);

// "hflip vflip rotation=20 ..." for logs and the training report; "none" when nothing is enabled.
std::string describe_augmentation(const AugmentOptions& options);

// The generator of one sample's augmentation: a function of the run's seed, the epoch and the sample's
// position in the epoch, so results do not depend on threads or on which worker produced the sample.
Rng augmentation_rng(std::uint64_t seed, int epoch, std::size_t position);

// Augments one normalised C x H x W sample in place; format gives the size and the normalisation, so
// brightness and noise act on intensities (clamped to [0, 1]) as they would on the image itself.
// scratch is resized as needed and may be reused across calls.
void augment_sample(float* sample_chw, const InputFormat& format, const AugmentOptions& options, Rng& rng,
                    std::vector<float>& scratch);

// A contact sheet for `edgeqc augment-preview`: one row per image, the preprocessed image first, then
// `variants` augmented versions, 2-pixel gaps; format's normalisation is ignored (intensities shown as is).
// Images that fail to decode throw Error naming the file.
Image augmentation_grid(const std::vector<std::string>& image_paths, InputFormat format, const AugmentOptions& options,
                        int variants, std::uint64_t seed);

}  // namespace edgeqc
