// Decoded images as planar float arrays, plus the decode, channel conversion, resize and PNG write steps.
// Deliberately no colour management, EXIF orientation or 16-bit precision: all is reduced to 8 bits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace edgeqc {

// Larger sides, and more pixels than max_image_pixels(), are rejected from the header before decoding, so a hostile
// header cannot ask for gigabytes.
inline constexpr int kMaxImageSide = 16384;
inline constexpr std::int64_t kDefaultMaxImagePixels = 50'000'000;  // a 50-megapixel camera; 600 MB as 3 float planes
// The limit of every decode in this process (--max-pixels); throws Error unless positive.
void set_max_image_pixels(std::int64_t pixels);
std::int64_t max_image_pixels();

struct Image {
    int width = 0, height = 0, channels = 0;
    std::vector<float> pixels;  // planar C x H x W, values in [0, 1]
};

// Whether a file name ends in an extension decode_image_file reads (.png, .jpg, .jpeg, .bmp, .pgm, .ppm, .pnm; any case).
bool has_image_extension(const std::string& path);

// How large a decoded image must be at least. A JPEG twice that size or more decodes at the smallest of libjpeg-turbo's
// DCT scales from 1/2 down to 1/8 (in eighths) that keeps it so: the inverse transform skips the detail a shrink to
// that size would average away, several times faster. Other formats, and the default, decode at full size.
struct DecodeSize {
    int min_width = 0, min_height = 0;
};

// JPEG (libjpeg-turbo), PNG (libpng), uncompressed BMP and binary PGM/PPM, recognised by their content; strict:
// corrupt or truncated data is an error, never pixels made up. Throws Error naming the file on any failure.
Image decode_image_file(const std::string& path, DecodeSize size = {});
Image decode_image_memory(const unsigned char* bytes, std::size_t size, const std::string& name_for_errors,
                          DecodeSize decode_size = {});

// To 1 or 3 channels: colour -> grey by luminance 0.299R + 0.587G + 0.114B, grey -> colour by
// replication; alpha is dropped.
Image convert_channels(const Image& image, int channels);

// The width x height region at (x, y); throws Error unless it lies inside the image.
Image crop_image(const Image& image, int x, int y, int width, int height);

// Separable resample, width first then height, each axis on its own: area averaging when shrinking,
// bilinear with half-pixel centres (edge-clamped) when enlarging, identity when the length is kept.
// Tools that re-implement it (the Python reference) must follow the weights in image.cpp exactly.
Image resize_image(const Image& image, int width, int height);

// 8-bit PNG of a 1- or 3-channel image, written atomically (write_file_atomically), so readers never see
// a half-written file.
void write_png(const std::string& path, const Image& image);
// The same PNG bytes in memory (for reports that embed images); errors name `what`.
std::vector<unsigned char> encode_png(const Image& image, const std::string& what);
// Baseline JPEG of a 1- or 3-channel image at quality 1..100 (camera frames for tests and benchmarks).
std::vector<unsigned char> encode_jpeg(const Image& image, int quality, const std::string& what);

}  // namespace edgeqc
