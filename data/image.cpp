// Image operations (channel conversion, crop, the reference resampler) and encoding through stb_image_write; decoding
// is in image_decode.cpp.
#include "data/image.hpp"

#include <stb/stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <iterator>

#include "engine/error.hpp"
#include "engine/output_file.hpp"

namespace edgeqc {

namespace fs = std::filesystem;

namespace {

void check_image(const Image& image, const std::string& operation) {
    const bool sides_ok = image.width >= 1 && image.height >= 1 && image.width <= kMaxImageSide &&
                          image.height <= kMaxImageSide;
    const bool channels_ok = image.channels >= 1 && image.channels <= 4;
    if (!sides_ok || !channels_ok) {
        throw Error("cannot " + operation + " an image of " + std::to_string(image.width) + "x" +
                    std::to_string(image.height) + " pixels with " + std::to_string(image.channels) +
                    " channels.");
    }
    const std::size_t expected = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height) *
                                 static_cast<std::size_t>(image.channels);
    if (image.pixels.size() != expected) {
        throw Error("cannot " + operation + " an image whose pixel buffer holds " +
                    std::to_string(image.pixels.size()) + " values instead of " + std::to_string(expected) + ".");
    }
}

// One output sample is the weighted sum of input samples first .. first + weights.size() - 1.
struct AxisTap {
    int first = 0;
    std::vector<float> weights;
};

std::vector<AxisTap> axis_taps(int in, int out) {
    std::vector<AxisTap> taps(static_cast<std::size_t>(out));
    for (int i = 0; i < out; ++i) {
        AxisTap& tap = taps[static_cast<std::size_t>(i)];
        if (out == in) {
            tap = {i, {1.0f}};
        } else if (out < in) {
            const double lo = static_cast<double>(i) * in / out;
            const double hi = static_cast<double>(i + 1) * in / out;
            const double span = static_cast<double>(in) / out;
            const int first = static_cast<int>(std::floor(lo));
            const int last = std::min(static_cast<int>(std::ceil(hi)), in) - 1;
            tap.first = first;
            for (int j = first; j <= last; ++j) {
                const double overlap = std::min<double>(j + 1, hi) - std::max<double>(j, lo);
                tap.weights.push_back(static_cast<float>(overlap / span));
            }
        } else {
            const double src = std::clamp((i + 0.5) * in / out - 0.5, 0.0, static_cast<double>(in - 1));
            const int j0 = static_cast<int>(std::floor(src));
            const double t = src - j0;
            tap.first = j0;
            tap.weights = {static_cast<float>(1.0 - t)};
            if (j0 + 1 < in) tap.weights.push_back(static_cast<float>(t));
        }
    }
    return taps;
}

std::uint8_t to_byte(float value) {
    if (!(value > 0.0f)) return 0;  // also maps NaN to black
    if (value >= 1.0f) return 255;
    return static_cast<std::uint8_t>(value * 255.0f + 0.5f);
}

}  // namespace

bool has_image_extension(const std::string& path) {
    std::string extension = fs::path(path).extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    static const char* const kImageExtensions[] = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pnm"};
    return std::find(std::begin(kImageExtensions), std::end(kImageExtensions), extension) !=
           std::end(kImageExtensions);
}

Image crop_image(const Image& image, int x, int y, int width, int height) {
    check_image(image, "crop");
    if (x < 0 || y < 0 || width < 1 || height < 1 || x + width > image.width || y + height > image.height) {
        throw Error("cannot crop " + std::to_string(width) + "x" + std::to_string(height) + " at " + std::to_string(x) +
                    "," + std::to_string(y) + " from a " + std::to_string(image.width) + "x" +
                    std::to_string(image.height) + " image.");
    }
    Image result{width, height, image.channels, {}};
    result.pixels.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) *
                         static_cast<std::size_t>(image.channels));
    float* out = result.pixels.data();
    for (int c = 0; c < image.channels; ++c) {
        for (int row = 0; row < height; ++row) {
            const float* in = image.pixels.data() +
                              (static_cast<std::size_t>(c) * static_cast<std::size_t>(image.height) +
                               static_cast<std::size_t>(y + row)) * static_cast<std::size_t>(image.width) +
                              static_cast<std::size_t>(x);
            out = std::copy(in, in + width, out);
        }
    }
    return result;
}

Image convert_channels(const Image& image, int channels) {
    check_image(image, "convert");
    if (channels != 1 && channels != 3) {
        throw Error("cannot convert an image to " + std::to_string(channels) +
                    " channels; only 1 and 3 are supported.");
    }
    const std::size_t plane = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
    const float* source = image.pixels.data();
    Image result{image.width, image.height, channels, {}};
    result.pixels.resize(plane * static_cast<std::size_t>(channels));
    float* out = result.pixels.data();
    const bool has_colour = image.channels >= 3;
    if (channels == 1 && has_colour) {
        const float* red = source;
        const float* green = source + plane;
        const float* blue = source + 2 * plane;
        for (std::size_t p = 0; p < plane; ++p) out[p] = 0.299f * red[p] + 0.587f * green[p] + 0.114f * blue[p];
    } else {
        // Grey (or grey + alpha) is replicated; colour keeps its first three planes, dropping alpha.
        for (int c = 0; c < channels; ++c) {
            const float* plane_in = source + (has_colour ? static_cast<std::size_t>(c) * plane : 0);
            std::copy(plane_in, plane_in + plane, out + static_cast<std::size_t>(c) * plane);
        }
    }
    return result;
}

Image resize_image(const Image& image, int width, int height) {
    check_image(image, "resize");
    if (width < 1 || height < 1 || width > kMaxImageSide || height > kMaxImageSide) {
        throw Error("cannot resize an image to " + std::to_string(width) + "x" + std::to_string(height) +
                    " pixels; each side must be between 1 and " + std::to_string(kMaxImageSide) + ".");
    }
    const std::vector<AxisTap> column_taps = axis_taps(image.width, width);
    const std::vector<AxisTap> row_taps = axis_taps(image.height, height);
    const auto in_width = static_cast<std::size_t>(image.width);
    const auto out_width = static_cast<std::size_t>(width);

    // Width pass: C x H_in x W_out.
    std::vector<float> narrowed(static_cast<std::size_t>(image.channels) * static_cast<std::size_t>(image.height) *
                                out_width);
    const std::size_t rows_in = static_cast<std::size_t>(image.channels) * static_cast<std::size_t>(image.height);
    for (std::size_t row = 0; row < rows_in; ++row) {
        const float* in = image.pixels.data() + row * in_width;
        float* out = narrowed.data() + row * out_width;
        for (std::size_t x = 0; x < out_width; ++x) {
            const AxisTap& tap = column_taps[x];
            const float* window = in + tap.first;
            float sum = 0.0f;
            for (std::size_t k = 0; k < tap.weights.size(); ++k) sum += tap.weights[k] * window[k];
            out[x] = sum;
        }
    }

    // Height pass: whole rows at a time, so the inner loop runs along contiguous memory.
    Image result{width, height, image.channels, {}};
    result.pixels.assign(static_cast<std::size_t>(image.channels) * static_cast<std::size_t>(height) * out_width, 0.0f);
    for (std::size_t c = 0; c < static_cast<std::size_t>(image.channels); ++c) {
        const float* channel_in = narrowed.data() + c * static_cast<std::size_t>(image.height) * out_width;
        float* channel_out = result.pixels.data() + c * static_cast<std::size_t>(height) * out_width;
        for (std::size_t y = 0; y < static_cast<std::size_t>(height); ++y) {
            const AxisTap& tap = row_taps[y];
            float* out = channel_out + y * out_width;
            for (std::size_t k = 0; k < tap.weights.size(); ++k) {
                const float* in = channel_in + (static_cast<std::size_t>(tap.first) + k) * out_width;
                const float weight = tap.weights[k];
                for (std::size_t x = 0; x < out_width; ++x) out[x] += weight * in[x];
            }
        }
    }
    return result;
}

namespace {

// The 8-bit interleaved pixels stb_image_write takes, for a 1- or 3-channel image.
std::vector<std::uint8_t> interleaved_bytes(const Image& image, const std::string& what, const char* format) {
    check_image(image, "write " + what + " from");
    if (image.channels != 1 && image.channels != 3) {
        throw Error("cannot write " + what + ": " + format + " output supports 1 or 3 channels, not " +
                    std::to_string(image.channels) + ".");
    }
    const std::size_t plane = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
    const auto channels = static_cast<std::size_t>(image.channels);
    std::vector<std::uint8_t> interleaved(plane * channels);
    for (std::size_t c = 0; c < channels; ++c) {
        for (std::size_t p = 0; p < plane; ++p) interleaved[p * channels + c] = to_byte(image.pixels[c * plane + p]);
    }
    return interleaved;
}

void append_to_vector(void* context, void* data, int size) {
    auto& sink = *static_cast<std::vector<unsigned char>*>(context);
    const auto* bytes = static_cast<const unsigned char*>(data);
    sink.insert(sink.end(), bytes, bytes + size);
}

}  // namespace

std::vector<unsigned char> encode_png(const Image& image, const std::string& what) {
    const std::vector<std::uint8_t> interleaved = interleaved_bytes(image, what, "PNG");
    std::vector<unsigned char> encoded;
    if (!stbi_write_png_to_func(append_to_vector, &encoded, image.width, image.height, image.channels,
                                interleaved.data(), image.width * image.channels)) {
        throw Error("cannot write " + what + ": PNG encoding failed.");
    }
    return encoded;
}

std::vector<unsigned char> encode_jpeg(const Image& image, int quality, const std::string& what) {
    if (quality < 1 || quality > 100) throw Error("cannot write " + what + ": JPEG quality must be 1 to 100");
    const std::vector<std::uint8_t> interleaved = interleaved_bytes(image, what, "JPEG");
    std::vector<unsigned char> encoded;
    if (!stbi_write_jpg_to_func(append_to_vector, &encoded, image.width, image.height, image.channels,
                                interleaved.data(), quality)) {
        throw Error("cannot write " + what + ": JPEG encoding failed.");
    }
    return encoded;
}

void write_png(const std::string& path, const Image& image) {
    write_file_atomically(path, encode_png(image, "'" + path + "'"));
}

}  // namespace edgeqc
