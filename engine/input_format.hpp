// What a model expects at its input: size, channels, enhancement and normalisation. Part of the model
// description, so inference repeats the training-time preprocessing exactly; data/preprocess.hpp applies it.
// Deliberately only the settings and their checks: no pixels are touched here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace edgeqc {

// The largest network input side: a 3 x 4096 x 4096 input is already 200 MB per image, so a model file (or
// option) asking for more is refused before anything is allocated. Decoded images may be larger (kMaxImageSide).
inline constexpr int kMaxInputSide = 4096;

// The ranges every enhancement filter accepts (the model file's preprocessing is checked against the same ones).
inline constexpr int kMinFilterSize = 3, kMaxFilterSize = 9;
inline constexpr float kMaxClaheClip = 1000.0f;
inline constexpr int kMaxClaheTiles = 64;

enum class Denoise : std::uint8_t { None = 0, Median = 1, Gaussian = 2 };
Denoise parse_denoise(const std::string& name);  // "none" | "median" | "gaussian"; throws edgeqc::Error
const char* denoise_name(Denoise denoise);

// Enhancement after resizing, before normalisation: on network-sized images it costs the same for every
// source resolution, and a denoiser before an area-averaging shrink would have little left to remove.
struct Enhancement {
    Denoise denoise = Denoise::None;
    int denoise_size = 3;     // odd window side, 3..9
    float clahe_clip = 0.0f;  // 0 = no CLAHE, else the clip limit (>= 1; OpenCV's default is 2)
    int clahe_tiles = 8;      // regions per side
    bool operator==(const Enhancement&) const = default;
};

struct InputFormat {
    int height = 80, width = 120, channels = 1;  // channels 1 = converted to grayscale
    std::vector<float> mean, stddev;  // per channel; both empty means mean 0, stddev 1
    Enhancement enhancement;
    bool operator==(const InputFormat&) const = default;
};

// "80x120" (height x width, each 8 to kMaxInputSide) into height and width; throws Error naming --size otherwise.
void parse_input_size(const std::string& text, int& height, int& width);

// Throws Error unless channels is 1 or 3, the sides are within the image limits, mean/stddev
// are empty or hold one positive stddev per channel, and the enhancement settings are in range.
void validate_input_format(const InputFormat& format);

inline std::size_t input_floats(const InputFormat& format) {
    return static_cast<std::size_t>(format.channels) * static_cast<std::size_t>(format.height) *
           static_cast<std::size_t>(format.width);
}

// "1x80x120 (CxHxW), mean 0.362 stddev 0.136, median 3x3, CLAHE clip 2 on 8x8 tiles" for logs and reports.
std::string describe_input_format(const InputFormat& format);

}  // namespace edgeqc
