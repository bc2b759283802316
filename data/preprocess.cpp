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

}  // namespace

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
