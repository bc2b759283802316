// Network-input preprocessing.
#include "data/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "data/image_filters.hpp"
#include "engine/error.hpp"

namespace edgeqc {

Image to_network_image(const Image& decoded, const InputFormat& format) {
    Image image = resize_image(convert_channels(decoded, format.channels), format.width, format.height);
    const Enhancement& e = format.enhancement;
    if (e.denoise == Denoise::Median) image = median_filter(image, e.denoise_size);
    if (e.denoise == Denoise::Gaussian) image = gaussian_blur(image, e.denoise_size);
    if (e.clahe_clip > 0.0f) image = clahe(image, e.clahe_clip, e.clahe_tiles);
    return image;
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

}  // namespace edgeqc
