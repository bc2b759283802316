// Tests of the preprocessing filters (median, Gaussian, CLAHE) and of their place in preprocess_into.
// Expected values are worked out by hand in the comments, never taken from the code under test.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "data/image_filters.hpp"
#include "data/preprocess.hpp"
#include "engine/error.hpp"

using namespace edgeqc;

namespace {

constexpr float kFloatTolerance = 1e-5f;

Image image_of(int width, int height, std::vector<float> pixels) { return Image{width, height, 1, std::move(pixels)}; }

Image impulse(int side) {
    Image image = image_of(side, side, std::vector<float>(static_cast<std::size_t>(side * side), 0.0f));
    image.pixels[static_cast<std::size_t>(side / 2 * side + side / 2)] = 1.0f;
    return image;
}

float at(const Image& image, int x, int y) { return image.pixels[static_cast<std::size_t>(y * image.width + x)]; }

}  // namespace

TEST_CASE("the median filter removes an isolated spike and keeps a step edge") {
    const Image spike = median_filter(impulse(5), 3);
    CHECK(*std::max_element(spike.pixels.begin(), spike.pixels.end()) == 0.0f);

    // Left half 0, right half 1: every 3x3 window holds more of its own side, so nothing moves.
    std::vector<float> step;
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 6; ++x) step.push_back(x < 3 ? 0.0f : 1.0f);
    CHECK(median_filter(image_of(6, 4, step), 3).pixels == step);
    CHECK(median_filter(image_of(6, 4, step), 5).pixels == step);
}

TEST_CASE("the Gaussian filter spreads an impulse with normalised taps of OpenCV's sigma") {
    // 3 taps, sigma 0.8: exp(-1 / 1.28) = 0.457833; taps 0.457833 : 1 : 0.457833 over 1.915666 =
    // 0.238994, 0.522012, 0.238994. The 2-D response is the outer product.
    const Image blurred = gaussian_blur(impulse(7), 3);
    CHECK(at(blurred, 3, 3) == doctest::Approx(0.522012f * 0.522012f).epsilon(kFloatTolerance));
    CHECK(at(blurred, 4, 3) == doctest::Approx(0.522012f * 0.238994f).epsilon(kFloatTolerance));
    CHECK(at(blurred, 4, 4) == doctest::Approx(0.238994f * 0.238994f).epsilon(kFloatTolerance));
    CHECK(at(blurred, 5, 3) == 0.0f);
    double total = 0.0;
    for (float v : blurred.pixels) total += v;
    CHECK(total == doctest::Approx(1.0).epsilon(kFloatTolerance));

    const Image flat = gaussian_blur(image_of(5, 3, std::vector<float>(15, 0.3f)), 9);  // edges replicated
    for (float v : flat.pixels) CHECK(v == doctest::Approx(0.3f).epsilon(kFloatTolerance));
}

TEST_CASE("CLAHE without clipping equalises the histogram; with clipping it leaves a flat image nearly alone") {
    // Half 0.45 (bin 115), half 0.55 (bin 140), one region, clip far above any count: the CDF is 0.5
    // after bin 115 and 1 after bin 140, so the contrast grows from 0.1 to 0.5.
    std::vector<float> halves;
    for (int i = 0; i < 50; ++i) halves.push_back(i < 25 ? 0.45f : 0.55f);
    const Image equalised = clahe(image_of(10, 5, halves), 1000.0f, 1);
    CHECK(at(equalised, 0, 0) == doctest::Approx(0.5f).epsilon(kFloatTolerance));
    CHECK(at(equalised, 9, 4) == doctest::Approx(1.0f).epsilon(kFloatTolerance));

    // A 10 x 10 constant 0.5 (bin 128), clip 2: limit max(1, 2 * 100 / 256) = 1, so 99 counts are spread
    // over 256 bins; CDF(128) = 129 * 99 / 256 + 1 = 50.887 of 100.
    const Image flat = clahe(image_of(10, 10, std::vector<float>(100, 0.5f)), 2.0f, 1);
    for (float v : flat.pixels) CHECK(v == doctest::Approx(0.50887f).epsilon(1e-4));
    // Four identical 5 x 5 regions interpolate to their common mapping: limit 1, 24 counts spread,
    // CDF(128) = 129 * 24 / 256 + 1 = 13.094 of 25.
    const Image tiled = clahe(image_of(10, 10, std::vector<float>(100, 0.5f)), 2.0f, 2);
    for (float v : tiled.pixels) CHECK(v == doctest::Approx(0.52375f).epsilon(1e-4));
}

TEST_CASE("CLAHE adapts to regions: the same grey maps brighter in a dark region than in a bright one") {
    // Left half dark (0.1) with a 0.5 pixel, right half bright (0.9) with a 0.5 pixel.
    std::vector<float> pixels(16 * 8);
    for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 16; ++x) pixels[static_cast<std::size_t>(y * 16 + x)] = x < 8 ? 0.1f : 0.9f;
    pixels[3 * 16 + 1] = 0.5f;
    pixels[3 * 16 + 14] = 0.5f;
    const Image out = clahe(image_of(16, 8, pixels), 1000.0f, 2);
    CHECK(at(out, 1, 3) > 0.9f);  // above every dark pixel of its region
    CHECK(at(out, 14, 3) < 0.1f);  // below every bright pixel of its region
}

TEST_CASE("filters reject sizes and limits out of range") {
    const Image image = impulse(5);
    CHECK_THROWS_AS(median_filter(image, 4), Error);
    CHECK_THROWS_AS(median_filter(image, 11), Error);
    CHECK_THROWS_AS(gaussian_blur(image, 1), Error);
    CHECK_THROWS_AS(clahe(image, 0.5f, 8), Error);
    CHECK_THROWS_AS(clahe(image, 2.0f, 0), Error);
    CHECK_THROWS_AS(parse_denoise("bilateral"), Error);
    CHECK(parse_denoise("median") == Denoise::Median);
}

TEST_CASE("preprocess_into applies the enhancement before normalisation, and validates it") {
    InputFormat format;
    format.height = 5;
    format.width = 5;
    format.mean = {0.5f};
    format.stddev = {0.5f};
    format.enhancement.denoise = Denoise::Median;
    std::vector<float> out(25);
    preprocess_into(impulse(5), format, out.data());
    for (float v : out) CHECK(v == doctest::Approx(-1.0f).epsilon(kFloatTolerance));  // spike removed: (0 - 0.5) / 0.5

    format.enhancement.denoise_size = 6;
    CHECK_THROWS_AS(preprocess_into(impulse(5), format, out.data()), Error);
    format.enhancement = {};
    format.enhancement.clahe_clip = 0.5f;
    CHECK_THROWS_AS(preprocess_into(impulse(5), format, out.data()), Error);
}
