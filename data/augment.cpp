// Sample augmentation: one inverse-mapped affine warp for all geometric changes (one resampling, so
// rotating and zooming blur the image once, not twice), then a per-pixel intensity change.
#include "data/augment.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "engine/error.hpp"

namespace edgeqc {

namespace {

void require_range(float value, float low, float high, const char* flag, const char* unit = "") {
    if (!(value >= low && value <= high) || !std::isfinite(value)) {
        char message[160];
        std::snprintf(message, sizeof message, "%s must be between %g and %g%s, got %g", flag, low, high, unit, value);
        throw Error(message);
    }
}

struct Warp {
    bool flip_x = false, flip_y = false;
    float cos_angle = 1.0f, sin_angle = 0.0f, inverse_scale = 1.0f, shift_x = 0.0f, shift_y = 0.0f;
    bool identity() const {
        return !flip_x && !flip_y && cos_angle == 1.0f && sin_angle == 0.0f && inverse_scale == 1.0f && shift_x == 0.0f &&
               shift_y == 0.0f;
    }
};

// Bilinear sample of one plane at (x, y) in pixel-centre coordinates, edges replicated.
float sample_bilinear(const float* plane, int width, int height, float x, float y) {
    x = std::clamp(x, 0.0f, static_cast<float>(width - 1));
    y = std::clamp(y, 0.0f, static_cast<float>(height - 1));
    const int x0 = static_cast<int>(x), y0 = static_cast<int>(y);
    const int x1 = std::min(x0 + 1, width - 1), y1 = std::min(y0 + 1, height - 1);
    const float fx = x - static_cast<float>(x0), fy = y - static_cast<float>(y0);
    auto at = [&](int px, int py) { return plane[static_cast<std::size_t>(py) * static_cast<std::size_t>(width) + px]; };
    return (1.0f - fy) * ((1.0f - fx) * at(x0, y0) + fx * at(x1, y0)) + fy * ((1.0f - fx) * at(x0, y1) + fx * at(x1, y1));
}

// Output pixel -> source pixel: undo the shift, rotation and zoom about the centre, then the flips.
void apply_warp(float* sample, const InputFormat& format, const Warp& warp, std::vector<float>& scratch) {
    const std::size_t plane = static_cast<std::size_t>(format.width) * static_cast<std::size_t>(format.height);
    scratch.assign(sample, sample + plane * static_cast<std::size_t>(format.channels));
    const float centre_x = 0.5f * static_cast<float>(format.width), centre_y = 0.5f * static_cast<float>(format.height);
    for (int y = 0; y < format.height; ++y)
        for (int x = 0; x < format.width; ++x) {
            const float u = static_cast<float>(x) + 0.5f - centre_x - warp.shift_x;
            const float v = static_cast<float>(y) + 0.5f - centre_y - warp.shift_y;
            float source_x = (warp.cos_angle * u + warp.sin_angle * v) * warp.inverse_scale + centre_x - 0.5f;
            float source_y = (-warp.sin_angle * u + warp.cos_angle * v) * warp.inverse_scale + centre_y - 0.5f;
            if (warp.flip_x) source_x = static_cast<float>(format.width - 1) - source_x;
            if (warp.flip_y) source_y = static_cast<float>(format.height - 1) - source_y;
            for (int c = 0; c < format.channels; ++c)
                sample[static_cast<std::size_t>(c) * plane + static_cast<std::size_t>(y) * format.width + x] =
                    sample_bilinear(scratch.data() + static_cast<std::size_t>(c) * plane, format.width, format.height,
                                    source_x, source_y);
        }
}

}  // namespace

bool AugmentOptions::enabled() const { return !(*this == AugmentOptions{}); }

AugmentOptions default_augmentation() {
    AugmentOptions options;
    options.horizontal_flip = true;
    options.vertical_flip = true;
    options.rotation_degrees = 20.0f;
    options.zoom = 0.1f;
    options.translate = 0.05f;
    options.brightness = 0.2f;
    options.noise = 0.02f;
    return options;
}

void validate_augment_options(const AugmentOptions& options) {
    require_range(options.rotation_degrees, 0.0f, 180.0f, "--rotation", " degrees");
    require_range(options.zoom, 0.0f, 0.9f, "--zoom");
    require_range(options.translate, 0.0f, 0.5f, "--translate");
    require_range(options.brightness, 0.0f, 1.0f, "--brightness");
    require_range(options.noise, 0.0f, 1.0f, "--noise");
}

std::string describe_augmentation(const AugmentOptions& options) {
    if (!options.enabled()) return "none";
    std::string text;
    auto add = [&](const std::string& part) { text += (text.empty() ? "" : " ") + part; };
    auto number = [](float value) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%g", value);
        return std::string(buffer);
    };
    if (options.horizontal_flip) add("hflip");
    if (options.vertical_flip) add("vflip");
    if (options.rotation_degrees > 0) add("rotation=" + number(options.rotation_degrees));
    if (options.zoom > 0) add("zoom=" + number(options.zoom));
    if (options.translate > 0) add("translate=" + number(options.translate));
    if (options.brightness > 0) add("brightness=" + number(options.brightness));
    if (options.noise > 0) add("noise=" + number(options.noise));
    return text;
}

Rng augmentation_rng(std::uint64_t seed, int epoch, std::size_t position) {
    // Distinct odd multipliers keep (epoch, position) pairs apart; Rng's seeding scrambles the sum.
    return Rng(seed ^ (0xA0761D6478BD642Full * (static_cast<std::uint64_t>(epoch) + 1)) ^
               (0xE7037ED1A0B428DBull * (static_cast<std::uint64_t>(position) + 1)));
}

void augment_sample(float* sample_chw, const InputFormat& format, const AugmentOptions& options, Rng& rng,
                    std::vector<float>& scratch) {
    Warp warp;
    if (options.horizontal_flip) warp.flip_x = rng.uniform() < 0.5f;
    if (options.vertical_flip) warp.flip_y = rng.uniform() < 0.5f;
    if (options.rotation_degrees > 0) {
        const float angle = rng.uniform(-options.rotation_degrees, options.rotation_degrees) * std::numbers::pi_v<float> / 180.0f;
        warp.cos_angle = std::cos(angle);
        warp.sin_angle = std::sin(angle);
    }
    if (options.zoom > 0) warp.inverse_scale = 1.0f / rng.uniform(1.0f - options.zoom, 1.0f + options.zoom);
    if (options.translate > 0) {
        warp.shift_x = rng.uniform(-options.translate, options.translate) * static_cast<float>(format.width);
        warp.shift_y = rng.uniform(-options.translate, options.translate) * static_cast<float>(format.height);
    }
    if (!warp.identity()) apply_warp(sample_chw, format, warp, scratch);

    if (options.brightness <= 0 && options.noise <= 0) return;
    const float factor = options.brightness > 0 ? rng.uniform(1.0f - options.brightness, 1.0f + options.brightness) : 1.0f;
    const std::size_t plane = static_cast<std::size_t>(format.width) * static_cast<std::size_t>(format.height);
    for (int c = 0; c < format.channels; ++c) {
        const float mean = format.mean.empty() ? 0.0f : format.mean[static_cast<std::size_t>(c)];
        const float stddev = format.stddev.empty() ? 1.0f : format.stddev[static_cast<std::size_t>(c)];
        float* values = sample_chw + static_cast<std::size_t>(c) * plane;
        for (std::size_t p = 0; p < plane; ++p) {
            float intensity = (values[p] * stddev + mean) * factor;
            if (options.noise > 0) intensity += options.noise * rng.normal();
            values[p] = (std::clamp(intensity, 0.0f, 1.0f) - mean) / stddev;
        }
    }
}

Image augmentation_grid(const std::vector<std::string>& image_paths, InputFormat format, const AugmentOptions& options,
                        int variants, std::uint64_t seed) {
    if (image_paths.empty()) throw Error("no images to preview");
    if (variants < 1 || variants > 64) throw Error("the preview needs 1 to 64 augmented versions per image");
    validate_augment_options(options);
    format.mean.clear();
    format.stddev.clear();
    constexpr int kGap = 2;
    const int columns = variants + 1, rows = static_cast<int>(image_paths.size());
    Image grid{columns * (format.width + kGap) - kGap, rows * (format.height + kGap) - kGap, format.channels, {}};
    const std::size_t grid_plane = static_cast<std::size_t>(grid.width) * static_cast<std::size_t>(grid.height);
    grid.pixels.assign(grid_plane * static_cast<std::size_t>(grid.channels), 1.0f);
    std::vector<float> original(input_floats(format)), cell, scratch;
    const std::size_t plane = static_cast<std::size_t>(format.width) * static_cast<std::size_t>(format.height);
    for (int row = 0; row < rows; ++row) {
        preprocess_into(decode_image_file(image_paths[static_cast<std::size_t>(row)]), format, original.data());
        for (int column = 0; column < columns; ++column) {
            cell = original;
            if (column > 0) {
                Rng rng = augmentation_rng(seed, row, static_cast<std::size_t>(column));
                augment_sample(cell.data(), format, options, rng, scratch);
            }
            const int left = column * (format.width + kGap), top = row * (format.height + kGap);
            for (int c = 0; c < format.channels; ++c)
                for (int y = 0; y < format.height; ++y)
                    for (int x = 0; x < format.width; ++x)
                        grid.pixels[static_cast<std::size_t>(c) * grid_plane + static_cast<std::size_t>(top + y) * grid.width + left + x] =
                            std::clamp(cell[static_cast<std::size_t>(c) * plane + static_cast<std::size_t>(y) * format.width + x], 0.0f, 1.0f);
        }
    }
    return grid;
}

}  // namespace edgeqc
