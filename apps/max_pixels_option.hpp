// The --max-pixels option of every tool that decodes images: the largest image it decodes, checked from the header
// before any pixel memory is allocated (a decompression bomb is one refused image, not an out-of-memory end).
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>

#include "data/image.hpp"

namespace edgeqc {

inline void add_max_pixels_option(CLI::App& app, std::int64_t& pixels) {
    pixels = kDefaultMaxImagePixels;
    app.add_option("--max-pixels", pixels,
                   "Largest image to decode, in pixels (width x height); larger ones are refused from their header")
        ->capture_default_str();
}

}  // namespace edgeqc
