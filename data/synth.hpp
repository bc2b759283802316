// A synthetic dataset of laser-powder-bed metal surfaces with five defect classes, for demos and tests.
// Deliberately a plausible look-alike, not a physical simulation: shapes and shading are hand-tuned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/image.hpp"
#include "engine/rng.hpp"

namespace edgeqc {

inline const std::vector<std::string> kSynthClasses = {"crack", "hole", "normal", "pinhole", "spatter"};

struct SynthOptions {
    int per_class = 200;
    int width = 120;
    int height = 80;  // both sides must be within 8..4096
    std::uint64_t seed = 1;
};

// One grey surface (1 channel) with the defect of kSynthClasses[class_index]; all randomness comes from rng.
Image render_synthetic_surface(int class_index, int width, int height, Rng& rng);

// Writes OUT/<class>/<class>_NNNN.png. Each image is seeded from (seed, its index), so the files are
// identical whatever the number of OpenMP threads. progress is called serially after each image.
void write_synthetic_dataset(const std::string& out_dir, const SynthOptions& options,
                             const std::function<void(std::size_t done, std::size_t total)>& progress = {});

}  // namespace edgeqc
