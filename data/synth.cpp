// Procedural rendering of the synthetic powder-bed surfaces and the parallel writer of the dataset.
// Pixel centres sit at integer coordinates; all sizes are in pixels, so defects do not scale with the image.
// Rng draws never share an expression whose evaluation order C++ leaves open, so all compilers agree.
#include "data/synth.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <exception>
#include <filesystem>

#include "data/preprocess.hpp"
#include "engine/error.hpp"

namespace edgeqc {

namespace fs = std::filesystem;

namespace {

constexpr float kTwoPi = 6.28318530718f;
constexpr int kMinSynthSide = 8;
constexpr int kMaxSynthSide = kMaxInputSide;
constexpr int kMaxPerClass = 1000000;

// A single-channel image under construction plus a mask that defects are max-combined into, so
// overlapping strokes of one defect do not darken twice.
struct Canvas {
    int width, height;
    std::vector<float> value;
    std::vector<float> mask;

    Canvas(int w, int h)
        : width(w), height(h), value(static_cast<std::size_t>(w) * static_cast<std::size_t>(h), 0.0f),
          mask(value.size(), 0.0f) {}
    std::size_t index(int x, int y) const {
        return static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x);
    }
    void clear_mask() { std::fill(mask.begin(), mask.end(), 0.0f); }

    // Calls visit(x, y, pixel index) for the pixels within reach of (cx, cy), clipped to the image.
    template <class Visit>
    void near(float cx, float cy, float reach, Visit&& visit) {
        const int x0 = std::max(0, static_cast<int>(std::floor(cx - reach)));
        const int x1 = std::min(width - 1, static_cast<int>(std::ceil(cx + reach)));
        const int y0 = std::max(0, static_cast<int>(std::floor(cy - reach)));
        const int y1 = std::min(height - 1, static_cast<int>(std::ceil(cy + reach)));
        for (int y = y0; y <= y1; ++y)
            for (int x = x0; x <= x1; ++x) visit(static_cast<float>(x), static_cast<float>(y), index(x, y));
    }
};

// Anti-aliased coverage: 1 well inside, 0 beyond half a pixel outside the edge.
float coverage(float depth_inside) { return std::clamp(depth_inside + 0.5f, 0.0f, 1.0f); }

// An irregular ellipse: the outline radius wobbles with harmonics 2..5 of the polar angle.
struct Blob {
    float cx = 0.0f, cy = 0.0f, radius = 1.0f, aspect = 1.0f, angle = 0.0f;
    std::array<float, 4> wobble{}, phase{};

    Blob(float x, float y, float r, float irregularity, Rng& rng) : cx(x), cy(y), radius(r) {
        aspect = rng.uniform(1.0f - irregularity, 1.0f);
        angle = rng.uniform(0.0f, kTwoPi);
        for (std::size_t k = 0; k < wobble.size(); ++k) {
            wobble[k] = rng.uniform(0.0f, irregularity) / static_cast<float>(k + 1);
            phase[k] = rng.uniform(0.0f, kTwoPi);
        }
    }
    float reach() const { return radius * 1.5f + 3.0f; }
    // Positive inside, in pixels (approximately, along the major axis).
    float depth(float x, float y) const { return outline(x, y) - distance(x, y); }
    float distance(float x, float y) const {
        const auto [u, v] = local(x, y);
        return std::hypot(u, v);
    }
    float outline(float x, float y) const {
        const auto [u, v] = local(x, y);
        const float theta = std::atan2(v, u);
        float r = 1.0f;
        for (std::size_t k = 0; k < wobble.size(); ++k) {
            r += wobble[k] * std::sin(static_cast<float>(k + 2) * theta + phase[k]);
        }
        return radius * r;
    }

private:
    std::array<float, 2> local(float x, float y) const {
        const float dx = x - cx, dy = y - cy;
        const float c = std::cos(angle), s = std::sin(angle);
        return {dx * c + dy * s, (-dx * s + dy * c) / aspect};
    }
};

void stamp_disc(Canvas& canvas, float cx, float cy, float radius, float strength) {
    canvas.near(cx, cy, radius + 1.0f, [&](float x, float y, std::size_t i) {
        const float cover = coverage(radius - std::hypot(x - cx, y - cy)) * strength;
        canvas.mask[i] = std::max(canvas.mask[i], cover);
    });
}

// Darkens the surface by the mask: value *= 1 - strength * mask.
void apply_dark_mask(Canvas& canvas, float strength) {
    for (std::size_t i = 0; i < canvas.value.size(); ++i) canvas.value[i] *= 1.0f - strength * canvas.mask[i];
    canvas.clear_mask();
}

// Low-contrast defects are what keep the task from being trivial.
float defect_strength(Rng& rng) {
    return rng.uniform() < 0.25f ? rng.uniform(0.18f, 0.4f) : rng.uniform(0.4f, 0.85f);
}

// A random point at least margin pixels from every edge (or the centre, on a very small canvas).
std::array<float, 2> random_point(const Canvas& canvas, float margin, Rng& rng) {
    const auto pick = [&](int side) {
        const float lo = std::min(margin, side * 0.5f), hi = std::max(side - 1 - margin, side * 0.5f);
        return rng.uniform(lo, hi);
    };
    const float x = pick(canvas.width);
    return {x, pick(canvas.height)};
}

void paint_scan_tracks(Canvas& canvas, Rng& rng) {
    const float base = rng.uniform(0.38f, 0.58f);
    const float diagonal = std::hypot(static_cast<float>(canvas.width), static_cast<float>(canvas.height));
    struct Tracks {
        float cos_a, sin_a, pitch, chirp, amplitude, sharpness, wobble, wobble_period, wobble_phase, shine,
            shine_period, shine_phase;
    };
    const auto random_tracks = [&](float angle, float amplitude) {
        return Tracks{std::cos(angle),
                      std::sin(angle),
                      rng.uniform(3.5f, 7.5f),
                      rng.uniform(-0.15f, 0.15f),
                      amplitude,
                      rng.uniform(1.0f, 3.0f),
                      rng.uniform(0.03f, 0.12f),
                      rng.uniform(15.0f, 50.0f),
                      rng.uniform(0.0f, kTwoPi),
                      rng.uniform(0.1f, 0.35f),
                      rng.uniform(20.0f, 80.0f),
                      rng.uniform(0.0f, kTwoPi)};
    };
    // The current layer's tracks, and the previous layer's rotated ones faintly showing through.
    const float angle = rng.uniform(0.0f, kTwoPi / 2.0f);
    const float amplitude = rng.uniform(0.04f, 0.11f);
    const float previous_angle = angle + rng.uniform(0.6f, 1.4f);
    const float previous_amplitude = amplitude * rng.uniform(0.0f, 0.35f);
    const std::array<Tracks, 2> layers = {random_tracks(angle, amplitude),
                                          random_tracks(previous_angle, previous_amplitude)};
    // Neighbouring tracks differ slightly in brightness, as with real melt tracks.
    std::vector<float> track_offset(static_cast<std::size_t>(diagonal / 3.0f) + 8);
    for (float& offset : track_offset) offset = 0.015f * rng.normal();
    const auto track_count = static_cast<float>(track_offset.size());

    for (int y = 0; y < canvas.height; ++y) {
        for (int x = 0; x < canvas.width; ++x) {
            const float px = x - canvas.width * 0.5f, py = y - canvas.height * 0.5f;
            float value = base;
            for (std::size_t l = 0; l < layers.size(); ++l) {
                const Tracks& t = layers[l];
                const float across = px * t.cos_a + py * t.sin_a;
                const float along = -px * t.sin_a + py * t.cos_a;
                const float cycles = across / t.pitch * (1.0f + t.chirp * across / diagonal) +
                                     t.wobble * std::sin(kTwoPi * along / t.wobble_period + t.wobble_phase);
                const float ridge = std::pow(0.5f + 0.5f * std::cos(kTwoPi * cycles), t.sharpness);
                const float shine = 1.0f + t.shine * std::sin(kTwoPi * along / t.shine_period + t.shine_phase);
                value += t.amplitude * shine * (ridge - 0.4f);
                if (l == 0) {
                    const float slot = std::clamp(std::floor(cycles) + track_count * 0.5f, 0.0f, track_count - 1);
                    value += track_offset[static_cast<std::size_t>(slot)];
                }
            }
            canvas.value[canvas.index(x, y)] = value;
        }
    }
}

// A jagged random walk: the heading jitters every pixel but is pulled back to the main direction.
void walk_crack(Canvas& canvas, float x, float y, float heading, float length, float radius, Rng& rng,
                std::vector<std::array<float, 3>>* path) {
    float direction = heading;
    for (float walked = 0.0f; walked < length; walked += 1.0f) {
        direction += 0.35f * rng.normal() + 0.2f * (heading - direction);
        x += std::cos(direction);
        y += std::sin(direction);
        stamp_disc(canvas, x, y, radius * rng.uniform(0.7f, 1.2f), 1.0f);
        if (path) path->push_back({x, y, direction});
    }
}

void paint_crack(Canvas& canvas, Rng& rng) {
    const float length = rng.uniform(0.15f, 0.6f) * static_cast<float>(std::max(canvas.width, canvas.height));
    const float heading = rng.uniform(0.0f, kTwoPi);
    const auto [mid_x, mid_y] = random_point(canvas, 0.2f * std::min(canvas.width, canvas.height), rng);
    const float radius = rng.uniform(0.5f, 1.0f);  // 1-2 px wide
    std::vector<std::array<float, 3>> path;
    walk_crack(canvas, mid_x - std::cos(heading) * length * 0.5f, mid_y - std::sin(heading) * length * 0.5f,
               heading, length, radius, rng, &path);
    const auto branches = rng.uniform() < 0.45f ? 1 + rng.below(2) : 0;
    for (std::uint64_t b = 0; b < branches && !path.empty(); ++b) {
        const auto& [bx, by, direction] = path[rng.below(path.size())];
        const float side = rng.uniform() < 0.5f ? -1.0f : 1.0f;
        const float turn = side * rng.uniform(0.35f, 1.0f);
        walk_crack(canvas, bx, by, direction + turn, length * rng.uniform(0.2f, 0.5f), radius * 0.7f, rng, nullptr);
    }
    apply_dark_mask(canvas, std::max(defect_strength(rng), 0.3f));
}

void paint_pinholes(Canvas& canvas, Rng& rng) {
    const float strength = std::max(defect_strength(rng), 0.35f);  // fainter 1-px dots vanish in the grain
    const auto count = 1 + rng.below(4);
    for (std::uint64_t p = 0; p < count; ++p) {
        const auto [x, y] = random_point(canvas, 4.0f, rng);
        const float radius = rng.uniform(1.0f, 3.0f);
        stamp_disc(canvas, x, y, radius, rng.uniform(0.8f, 1.0f));
    }
    apply_dark_mask(canvas, strength);
}

void paint_hole(Canvas& canvas, Rng& rng) {
    const float radius = rng.uniform(5.0f, 12.0f);
    const auto [x, y] = random_point(canvas, radius + 2.0f, rng);
    const Blob hole(x, y, radius, 0.3f, rng);
    const float darkness = defect_strength(rng);
    const float rim = rng.uniform(0.03f, 0.12f);
    canvas.near(x, y, hole.reach(), [&](float px, float py, std::size_t i) {
        const float outline = hole.outline(px, py), distance = hole.distance(px, py);
        // Deepest (darkest) in the middle; a faint bright lip just outside the edge.
        const float depth_shading = 0.75f + 0.25f * std::max(0.0f, 1.0f - distance / outline);
        const float lip = distance - outline - 1.2f;
        canvas.value[i] *= 1.0f - darkness * depth_shading * coverage(outline - distance);
        canvas.value[i] += rim * std::exp(-lip * lip);
    });
}

void paint_spatter(Canvas& canvas, Rng& rng) {
    const float light = rng.uniform(0.0f, kTwoPi);  // shared by all droplets: shadows fall the same way
    const float brightness = defect_strength(rng);
    const auto count = 2 + rng.below(5);
    for (std::uint64_t d = 0; d < count; ++d) {
        const float radius = rng.uniform(1.5f, 5.0f);
        const auto [x, y] = random_point(canvas, radius + 2.0f, rng);
        const Blob droplet(x, y, radius, 0.25f, rng);
        const float shadow_x = -std::cos(light) * radius * 0.7f, shadow_y = -std::sin(light) * radius * 0.7f;
        const float highlight_x = x + std::cos(light) * radius * 0.35f;
        const float highlight_y = y + std::sin(light) * radius * 0.35f;
        const float shadow = rng.uniform(0.25f, 0.5f);
        canvas.near(x, y, droplet.reach() + radius, [&](float px, float py, std::size_t i) {
            const float body = coverage(droplet.depth(px, py));
            const float shade = coverage(droplet.depth(px - shadow_x, py - shadow_y)) * (1.0f - body);
            const float glint = std::exp(-(std::pow(px - highlight_x, 2.0f) + std::pow(py - highlight_y, 2.0f)) /
                                         (0.3f * radius * radius));
            float& v = canvas.value[i];
            v *= 1.0f - shadow * shade;
            v += body * brightness * (1.0f - v) + 0.15f * glint * body;
        });
    }
}

void paint_no_defect(Canvas&, Rng&) {}

// In the order of kSynthClasses.
constexpr std::array<void (*)(Canvas&, Rng&), 5> kDefectPainters = {paint_crack, paint_hole, paint_no_defect,
                                                                    paint_pinholes, paint_spatter};

// Lighting gradient, vignette, exposure, then sensor/grain noise; the order matches a camera.
void apply_lighting_and_noise(Canvas& canvas, Rng& rng) {
    const float w = static_cast<float>(canvas.width), h = static_cast<float>(canvas.height);
    const float half_diagonal = 0.5f * std::hypot(w, h);
    const float gradient_angle = rng.uniform(0.0f, kTwoPi), gradient = rng.uniform(0.0f, 0.25f);
    const float vignette = rng.uniform(0.0f, 0.3f);
    const float centre_x = w * rng.uniform(0.3f, 0.7f), centre_y = h * rng.uniform(0.3f, 0.7f);
    const float contrast = rng.uniform(0.75f, 1.25f), brightness = rng.uniform(-0.08f, 0.08f);
    const float fine_noise = rng.uniform(0.012f, 0.035f), coarse_noise = rng.uniform(0.01f, 0.03f);

    // Grain: 3x3 box-blurred noise, scaled back up by 3 to keep its standard deviation.
    std::vector<float> grain(canvas.value.size());
    for (float& g : grain) g = rng.normal();
    const auto grain_at = [&](int x, int y) {
        return grain[canvas.index(std::clamp(x, 0, canvas.width - 1), std::clamp(y, 0, canvas.height - 1))];
    };
    for (int y = 0; y < canvas.height; ++y) {
        for (int x = 0; x < canvas.width; ++x) {
            float blurred = 0.0f;
            for (int dy = -1; dy <= 1; ++dy)
                for (int dx = -1; dx <= 1; ++dx) blurred += grain_at(x + dx, y + dy);
            const float px = x - centre_x, py = y - centre_y;
            const float along_gradient =
                (px * std::cos(gradient_angle) + py * std::sin(gradient_angle)) / half_diagonal;
            const float radial = std::hypot(px, py) / half_diagonal;
            const float light = 1.0f + gradient * 0.5f * along_gradient - vignette * radial * radial;
            float& v = canvas.value[canvas.index(x, y)];
            v = (v * light - 0.5f) * contrast + 0.5f + brightness;
            v += coarse_noise * blurred / 3.0f + fine_noise * rng.normal();
            v = std::clamp(v, 0.0f, 1.0f);
        }
    }
}

void check_side(int side, const char* name) {
    if (side < kMinSynthSide || side > kMaxSynthSide) {
        throw Error("the synthetic image " + std::string(name) + " must be between " + std::to_string(kMinSynthSide) +
                    " and " + std::to_string(kMaxSynthSide) + " pixels, but is " + std::to_string(side) + ".");
    }
}

// Bijective in index for a fixed seed, and unrelated across seeds.
std::uint64_t image_seed(std::uint64_t seed, std::size_t index) {
    return Rng(seed).next_u64() + 0xD1B54A32D192ED03ull * static_cast<std::uint64_t>(index);
}

std::string numbered_name(const std::string& class_name, int number, int per_class) {
    const std::size_t digits = std::max<std::size_t>(4, std::to_string(per_class - 1).size());
    std::string text = std::to_string(number);
    text.insert(0, digits - std::min(digits, text.size()), '0');
    return class_name + "_" + text + ".png";
}

}  // namespace

Image render_synthetic_surface(int class_index, int width, int height, Rng& rng) {
    if (class_index < 0 || class_index >= static_cast<int>(kDefectPainters.size())) {
        throw Error("synthetic class index " + std::to_string(class_index) + " is outside 0.." +
                    std::to_string(kDefectPainters.size() - 1) + ".");
    }
    check_side(width, "width");
    check_side(height, "height");
    Canvas canvas(width, height);
    paint_scan_tracks(canvas, rng);
    kDefectPainters[static_cast<std::size_t>(class_index)](canvas, rng);
    apply_lighting_and_noise(canvas, rng);
    return Image{width, height, 1, std::move(canvas.value)};
}

void write_synthetic_dataset(const std::string& out_dir, const SynthOptions& options,
                             const std::function<void(std::size_t done, std::size_t total)>& progress) {
    if (options.per_class < 1 || options.per_class > kMaxPerClass) {
        throw Error("the number of synthetic images per class must be between 1 and " + std::to_string(kMaxPerClass) +
                    ", but is " + std::to_string(options.per_class) + ".");
    }
    check_side(options.width, "width");
    check_side(options.height, "height");
    for (const std::string& name : kSynthClasses) {
        const fs::path folder = fs::path(out_dir) / name;
        std::error_code error;
        fs::create_directories(folder, error);
        if (error || !fs::is_directory(folder)) {
            throw Error("cannot create the synthetic dataset folder '" + folder.string() + "': " +
                        (error ? error.message() : "a file of that name is in the way") + ".");
        }
    }

    const auto per_class = static_cast<std::size_t>(options.per_class);
    const std::size_t total = kSynthClasses.size() * per_class;
    std::size_t done = 0;
    std::atomic<bool> failed{false};
    std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 4)
    for (std::size_t index = 0; index < total; ++index) {
        if (failed) continue;  // an OpenMP loop cannot break; the remaining images are skipped cheaply
        try {
            const std::size_t class_index = index / per_class;
            const std::string& name = kSynthClasses[class_index];
            Rng rng(image_seed(options.seed, index));
            const Image image =
                render_synthetic_surface(static_cast<int>(class_index), options.width, options.height, rng);
            const int number = static_cast<int>(index % per_class);
            write_png((fs::path(out_dir) / name / numbered_name(name, number, options.per_class)).string(), image);
            if (progress) {
                // Exceptions must not leave a critical section, so a throwing callback is rethrown after it.
                std::exception_ptr progress_failure;
#pragma omp critical(edgeqc_synth_progress)
                try {
                    progress(++done, total);
                } catch (...) {
                    progress_failure = std::current_exception();
                }
                if (progress_failure) std::rethrow_exception(progress_failure);
            }
        } catch (...) {
#pragma omp critical(edgeqc_synth_failure)
            if (!failure) failure = std::current_exception();
            failed = true;
        }
    }
    if (failure) std::rethrow_exception(failure);
}

}  // namespace edgeqc
