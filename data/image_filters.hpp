// Image enhancement filters of the papers' preprocessing: median and Gaussian denoising and CLAHE
// (contrast-limited adaptive histogram equalisation). Each works per channel on [0, 1] floats.
// Deliberately no colour-space handling: CLAHE on RGB equalises each channel on its own.
#pragma once

#include "data/image.hpp"
#include "engine/input_format.hpp"

namespace edgeqc {

// Median of each size x size window (size odd, 3..9), edges replicated.
Image median_filter(const Image& image, int size);

// Separable Gaussian of size x size taps (size odd, 3..9) with the sigma OpenCV derives from a size,
// 0.3 * ((size - 1) / 2 - 1) + 0.8 (0.8 for 3 taps), taps normalised to sum 1; edges replicated.
Image gaussian_blur(const Image& image, int size);

// CLAHE as in Zuiderveld (1994) and OpenCV: the image is cut into tiles x tiles regions, each gets a
// 256-bin histogram clipped at clip_limit times the mean bin count (excess spread over all bins),
// and each pixel is mapped by bilinear interpolation between the four nearest regions' CDFs.
// clip_limit in [1, 1000]: 1 flattens every histogram to its mean count, which leaves the image nearly as it
// was; the larger the limit, the closer to plain histogram equalisation (OpenCV's default is 2). tiles 1..64.
Image clahe(const Image& image, float clip_limit, int tiles);

}  // namespace edgeqc
