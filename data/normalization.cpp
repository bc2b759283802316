// The estimate of the normalisation constants. It runs serially so that its floating-point sums, and hence the
// model file, are reproducible.
#include "data/normalization.hpp"

#include <algorithm>
#include <cmath>

#include "data/image.hpp"
#include "data/preprocess.hpp"
#include "engine/error.hpp"

namespace edgeqc {

namespace {
constexpr float kMinStddev = 1e-3f;
}  // namespace

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
