// Checks and descriptions of the input format.
#include "engine/input_format.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "engine/error.hpp"

namespace edgeqc {

namespace {

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

void parse_input_size(const std::string& text, int& height, int& width) {
    const std::size_t x = text.find('x');
    try {
        std::size_t used_h = 0, used_w = 0;
        height = std::stoi(text.substr(0, x), &used_h);
        width = std::stoi(text.substr(x + 1), &used_w);
        if (x == std::string::npos || used_h != x || used_w != text.size() - x - 1) throw std::invalid_argument(text);
    } catch (const std::exception&) {
        throw Error("--size must look like 80x120 (height x width), got '" + text + "'");
    }
    if (height < 8 || width < 8 || height > kMaxInputSide || width > kMaxInputSide)
        throw Error("--size sides must be between 8 and " + std::to_string(kMaxInputSide) + " pixels, got '" + text + "'");
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
    // Training floors the stddev at 1e-3; far below, (x - mean) / stddev overflows to infinity for some pixels.
    constexpr float kMinStddev = 1e-6f;
    for (std::size_t c = 0; c < format.stddev.size(); ++c) {
        if (!(format.stddev[c] >= kMinStddev) || !std::isfinite(format.stddev[c]) || !std::isfinite(format.mean[c])) {
            throw Error("the input normalisation of channel " + std::to_string(c) +
                        " is invalid (stddev must be at least 1e-6, both values finite).");
        }
    }
    validate_enhancement(format.enhancement);
}

}  // namespace edgeqc
