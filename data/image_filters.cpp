// Median, Gaussian and CLAHE filters on planar float images. They run once per image when the loader
// caches it (and once per image at inference), on network-sized images, so plain loops are fast enough.
#include "data/image_filters.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/error.hpp"

namespace edgeqc {

namespace {

constexpr int kHistogramBins = 256;

void require_filter_size(int size, const char* filter) {
    if (size < kMinFilterSize || size > kMaxFilterSize || size % 2 == 0)
        throw Error(std::string(filter) + " size must be an odd number from 3 to 9, not " + std::to_string(size));
}

int clamp_index(int i, int length) { return std::clamp(i, 0, length - 1); }

std::size_t histogram_bin(float value) {
    return static_cast<std::size_t>(std::lround(std::clamp(value, 0.0f, 1.0f) * (kHistogramBins - 1)));
}

// Convolves every row (horizontal) or column with taps centred on the pixel, replicating edges.
Image convolve_axis(const Image& image, const std::vector<float>& taps, bool horizontal) {
    Image out = image;
    const int radius = static_cast<int>(taps.size() / 2);
    const std::size_t plane = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
    for (int c = 0; c < image.channels; ++c) {
        const float* in = image.pixels.data() + c * plane;
        float* result = out.pixels.data() + c * plane;
        for (int y = 0; y < image.height; ++y)
            for (int x = 0; x < image.width; ++x) {
                float sum = 0.0f;
                for (int t = -radius; t <= radius; ++t) {
                    const int sx = horizontal ? clamp_index(x + t, image.width) : x;
                    const int sy = horizontal ? y : clamp_index(y + t, image.height);
                    sum += taps[static_cast<std::size_t>(t + radius)] * in[static_cast<std::size_t>(sy) * image.width + sx];
                }
                result[static_cast<std::size_t>(y) * image.width + x] = sum;
            }
    }
    return out;
}

// The cumulative, clipped histogram of one region as a lookup table from bin to [0, 1].
std::vector<float> region_mapping(const float* plane, int width, int x0, int x1, int y0, int y1, float clip_limit) {
    std::vector<float> histogram(kHistogramBins, 0.0f);
    for (int y = y0; y < y1; ++y)
        for (int x = x0; x < x1; ++x)
            histogram[histogram_bin(plane[static_cast<std::size_t>(y) * width + x])] += 1.0f;
    const float area = static_cast<float>((x1 - x0) * (y1 - y0));
    const float clip = std::max(1.0f, clip_limit * area / kHistogramBins);
    float excess = 0.0f;
    for (float& count : histogram) {
        excess += std::max(count - clip, 0.0f);
        count = std::min(count, clip);
    }
    std::vector<float> mapping(kHistogramBins);
    float cumulative = 0.0f;
    for (int b = 0; b < kHistogramBins; ++b) {
        cumulative += histogram[static_cast<std::size_t>(b)] + excess / kHistogramBins;
        mapping[static_cast<std::size_t>(b)] = std::min(cumulative / area, 1.0f);
    }
    return mapping;
}

}  // namespace

Image median_filter(const Image& image, int size) {
    require_filter_size(size, "the median filter");
    Image out = image;
    const int radius = size / 2;
    const std::size_t plane = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
    std::vector<float> window(static_cast<std::size_t>(size * size));
    for (int c = 0; c < image.channels; ++c) {
        const float* in = image.pixels.data() + c * plane;
        float* result = out.pixels.data() + c * plane;
        for (int y = 0; y < image.height; ++y)
            for (int x = 0; x < image.width; ++x) {
                std::size_t n = 0;
                for (int dy = -radius; dy <= radius; ++dy)
                    for (int dx = -radius; dx <= radius; ++dx)
                        window[n++] = in[static_cast<std::size_t>(clamp_index(y + dy, image.height)) * image.width +
                                         clamp_index(x + dx, image.width)];
                const auto middle = window.begin() + static_cast<std::ptrdiff_t>(n / 2);
                std::nth_element(window.begin(), middle, window.end());
                result[static_cast<std::size_t>(y) * image.width + x] = *middle;
            }
    }
    return out;
}

Image gaussian_blur(const Image& image, int size) {
    require_filter_size(size, "the Gaussian filter");
    const double sigma = 0.3 * ((size - 1) * 0.5 - 1.0) + 0.8;
    std::vector<double> weights(static_cast<std::size_t>(size));
    double total = 0.0;
    for (int t = 0; t < size; ++t) {
        const double d = t - size / 2;
        weights[static_cast<std::size_t>(t)] = std::exp(-d * d / (2.0 * sigma * sigma));
        total += weights[static_cast<std::size_t>(t)];
    }
    std::vector<float> taps(weights.size());
    for (std::size_t t = 0; t < taps.size(); ++t) taps[t] = static_cast<float>(weights[t] / total);
    return convolve_axis(convolve_axis(image, taps, true), taps, false);
}

Image clahe(const Image& image, float clip_limit, int tiles) {
    if (!(clip_limit >= 1.0f && clip_limit <= kMaxClaheClip))
        throw Error("the CLAHE clip limit must be a number from 1 to 1000");
    if (tiles < 1 || tiles > kMaxClaheTiles) throw Error("the CLAHE tile grid must be 1 to 64 tiles per side, not " + std::to_string(tiles));
    // A region needs at least one pixel, so a tiny image gets fewer, one-pixel regions.
    const int tiles_x = std::min(tiles, image.width), tiles_y = std::min(tiles, image.height);
    const float tile_width = static_cast<float>(image.width) / tiles_x;
    const float tile_height = static_cast<float>(image.height) / tiles_y;
    auto boundary = [](int tile, int count, int length) { return tile * length / count; };

    Image out = image;
    const std::size_t plane = static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
    std::vector<std::vector<float>> mappings(static_cast<std::size_t>(tiles_x * tiles_y));
    for (int c = 0; c < image.channels; ++c) {
        const float* in = image.pixels.data() + c * plane;
        float* result = out.pixels.data() + c * plane;
        for (int ty = 0; ty < tiles_y; ++ty)
            for (int tx = 0; tx < tiles_x; ++tx)
                mappings[static_cast<std::size_t>(ty * tiles_x + tx)] =
                    region_mapping(in, image.width, boundary(tx, tiles_x, image.width), boundary(tx + 1, tiles_x, image.width),
                                   boundary(ty, tiles_y, image.height), boundary(ty + 1, tiles_y, image.height), clip_limit);
        for (int y = 0; y < image.height; ++y) {
            // Position between region centres: weight of the lower region is 1 - fraction.
            const float fy = (static_cast<float>(y) + 0.5f) / tile_height - 0.5f;
            const int y_low = static_cast<int>(std::floor(fy));
            const float wy = fy - static_cast<float>(y_low);
            const int row0 = clamp_index(y_low, tiles_y), row1 = clamp_index(y_low + 1, tiles_y);
            for (int x = 0; x < image.width; ++x) {
                const float fx = (static_cast<float>(x) + 0.5f) / tile_width - 0.5f;
                const int x_low = static_cast<int>(std::floor(fx));
                const float wx = fx - static_cast<float>(x_low);
                const int col0 = clamp_index(x_low, tiles_x), col1 = clamp_index(x_low + 1, tiles_x);
                const std::size_t bin = histogram_bin(in[static_cast<std::size_t>(y) * image.width + x]);
                auto mapped = [&](int row, int col) { return mappings[static_cast<std::size_t>(row * tiles_x + col)][bin]; };
                result[static_cast<std::size_t>(y) * image.width + x] =
                    (1.0f - wy) * ((1.0f - wx) * mapped(row0, col0) + wx * mapped(row0, col1)) +
                    wy * ((1.0f - wx) * mapped(row1, col0) + wx * mapped(row1, col1));
            }
        }
    }
    return out;
}

}  // namespace edgeqc
