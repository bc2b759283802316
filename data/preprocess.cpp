// Network-input preprocessing and the estimate of its normalisation constants.
// The estimate runs serially so that its floating-point sums, and hence the model file, are reproducible.
#include "data/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/image_filters.hpp"
#include "engine/error.hpp"

namespace edgeqc {

namespace {

constexpr float kMinStddev = 1e-3f;

// Everything before normalisation.
Image to_network_image(const Image& decoded, const InputFormat& format) {
    Image image = resize_image(convert_channels(decoded, format.channels), format.width, format.height);
    const Enhancement& e = format.enhancement;
    if (e.denoise == Denoise::Median) image = median_filter(image, e.denoise_size);
    if (e.denoise == Denoise::Gaussian) image = gaussian_blur(image, e.denoise_size);
    if (e.clahe_clip > 0.0f) image = clahe(image, e.clahe_clip, e.clahe_tiles);
    return image;
}

void validate_enhancement(const Enhancement& e) {
    if (e.denoise != Denoise::None && e.denoise != Denoise::Median && e.denoise != Denoise::Gaussian)
        throw Error("the input format names an unknown denoising filter.");
    if (e.denoise != Denoise::None &&
        (e.denoise_size < kMinFilterSize || e.denoise_size > kMaxFilterSize || e.denoise_size % 2 == 0))
        throw Error("the denoising window must be an odd size from 3 to 9, not " + std::to_string(e.denoise_size) + ".");
    if (e.clahe_clip != 0.0f && !(e.clahe_clip >= 1.0f && e.clahe_clip <= kMaxClaheClip))
        throw Error("the CLAHE clip limit must be 0 (off) or from 1 to 1000.");
    if (e.clahe_tiles < 1 || e.clahe_tiles > kMaxClaheTiles)
        throw Error("the CLAHE grid must have 1 to 64 tiles per side, not " + std::to_string(e.clahe_tiles) + ".");
}

}  // namespace

Denoise parse_denoise(const std::string& name) {
    if (name == "none") return Denoise::None;
    if (name == "median") return Denoise::Median;
    if (name == "gaussian") return Denoise::Gaussian;
    throw Error("unknown denoising filter '" + name + "' (use none, median or gaussian)");
}

const char* denoise_name(Denoise denoise) {
    switch (denoise) {
        case Denoise::Median: return "median";
        case Denoise::Gaussian: return "gaussian";
        default: return "none";
    }
}

std::string describe_input_format(const InputFormat& format) {
    char text[256];
    std::snprintf(text, sizeof text, "%dx%dx%d (CxHxW)", format.channels, format.height, format.width);
    std::string description = text;
    for (std::size_t c = 0; c < format.mean.size(); ++c) {
        std::snprintf(text, sizeof text, "%s mean %.4g stddev %.4g", c ? ";" : ",", format.mean[c], format.stddev[c]);
        description += text;
    }
    const Enhancement& e = format.enhancement;
    if (e.denoise != Denoise::None) {
        std::snprintf(text, sizeof text, ", %s %dx%d", denoise_name(e.denoise), e.denoise_size, e.denoise_size);
        description += text;
    }
    if (e.clahe_clip > 0.0f) {
        std::snprintf(text, sizeof text, ", CLAHE clip %g on %dx%d tiles", e.clahe_clip, e.clahe_tiles, e.clahe_tiles);
        description += text;
    }
    return description;
}

void validate_input_format(const InputFormat& format) {
    if (format.channels != 1 && format.channels != 3) {
        throw Error("the input format needs 1 or 3 channels, not " + std::to_string(format.channels) + ".");
    }
    if (format.width < 1 || format.height < 1 || format.width > kMaxInputSide || format.height > kMaxInputSide) {
        throw Error("the input size " + std::to_string(format.height) + "x" + std::to_string(format.width) +
                    " (height x width) is invalid; each side must be between 1 and " + std::to_string(kMaxInputSide) + ".");
    }
    const auto channels = static_cast<std::size_t>(format.channels);
    const bool identity = format.mean.empty() && format.stddev.empty();
    if (!identity && (format.mean.size() != channels || format.stddev.size() != channels)) {
        throw Error("the input normalisation needs one mean and one stddev per channel (" + std::to_string(channels) +
                    "), but has " + std::to_string(format.mean.size()) + " and " +
                    std::to_string(format.stddev.size()) + ".");
    }
    for (std::size_t c = 0; c < format.stddev.size(); ++c) {
        if (!(format.stddev[c] > 0.0f) || !std::isfinite(format.stddev[c]) || !std::isfinite(format.mean[c])) {
            throw Error("the input normalisation of channel " + std::to_string(c) +
                        " is invalid (stddev must be positive, both values finite).");
        }
    }
    validate_enhancement(format.enhancement);
}

void preprocess_into(const Image& decoded, const InputFormat& format, float* out_chw) {
    validate_input_format(format);
    const Image input = to_network_image(decoded, format);
    const std::size_t plane = static_cast<std::size_t>(format.width) * static_cast<std::size_t>(format.height);
    for (std::size_t c = 0; c < static_cast<std::size_t>(format.channels); ++c) {
        const float mean = format.mean.empty() ? 0.0f : format.mean[c];
        const float stddev = format.stddev.empty() ? 1.0f : format.stddev[c];
        const float* in = input.pixels.data() + c * plane;
        float* out = out_chw + c * plane;
        for (std::size_t p = 0; p < plane; ++p) out[p] = (in[p] - mean) / stddev;
    }
}

void estimate_normalization(const std::vector<LabelledImage>& images, InputFormat& format, std::size_t max_images) {
    InputFormat geometry = format;  // format is only changed once the estimate succeeded
    geometry.mean.clear();
    geometry.stddev.clear();
    validate_input_format(geometry);
    if (images.empty()) throw Error("cannot estimate the input normalisation from an empty image list.");
    if (max_images == 0) throw Error("cannot estimate the input normalisation from 0 images.");

    const std::size_t sampled = std::min(images.size(), max_images);
    const auto channels = static_cast<std::size_t>(geometry.channels);
    std::vector<double> sum(channels, 0.0), sum_of_squares(channels, 0.0);
    std::size_t decoded_count = 0;
    std::string first_failure;
    for (std::size_t k = 0; k < sampled; ++k) {
        const LabelledImage& item = images[k * images.size() / sampled];
        Image input;
        try {
            input = to_network_image(decode_image_file(item.path), geometry);
        } catch (const Error& error) {
            if (first_failure.empty()) first_failure = error.what();
            continue;
        }
        ++decoded_count;
        const std::size_t plane = input.pixels.size() / channels;
        for (std::size_t c = 0; c < channels; ++c) {
            const float* values = input.pixels.data() + c * plane;
            for (std::size_t p = 0; p < plane; ++p) {
                sum[c] += values[p];
                sum_of_squares[c] += static_cast<double>(values[p]) * values[p];
            }
        }
    }
    if (decoded_count == 0) {
        throw Error("none of the " + std::to_string(sampled) +
                    " images sampled to estimate the input normalisation could be decoded; the first failure was: " +
                    first_failure);
    }

    const double count = static_cast<double>(decoded_count) * geometry.width * geometry.height;
    for (std::size_t c = 0; c < channels; ++c) {
        const double mean = sum[c] / count;
        const double variance = std::max(sum_of_squares[c] / count - mean * mean, 0.0);
        geometry.mean.push_back(static_cast<float>(mean));
        geometry.stddev.push_back(std::max(static_cast<float>(std::sqrt(variance)), kMinStddev));
    }
    format = std::move(geometry);
}

}  // namespace edgeqc
