// Tests of training-time augmentation (data/augment), epoch orders and balancing (data/sampling), the
// loader applying both, and their command-line flags. Each geometric test uses an image whose augmented
// form is known from geometry alone (a mirror, a centred disc, a single bright pixel).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

#include "data/augment.hpp"
#include "data/dataset.hpp"
#include "data/image.hpp"
#include "data/loader.hpp"
#include "data/sampling.hpp"
#include "engine/error.hpp"
#include "engine/model_file.hpp"
#include "layers/network.hpp"
#include "optim/trainer.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

constexpr int kHeight = 24, kWidth = 32;
constexpr int kSeeds = 40;  // enough draws that every random branch (flip or not) is taken

InputFormat plain_format() {
    InputFormat format;
    format.height = kHeight;
    format.width = kWidth;
    return format;  // mean 0, stddev 1: the sample is the intensity itself
}

std::vector<float> ramp() {
    std::vector<float> pixels(kHeight * kWidth);
    for (int y = 0; y < kHeight; ++y)
        for (int x = 0; x < kWidth; ++x) pixels[static_cast<std::size_t>(y * kWidth + x)] = 0.01f * x + 0.02f * y;
    return pixels;
}

std::vector<float> disc(float radius) {
    std::vector<float> pixels(kHeight * kWidth);
    for (int y = 0; y < kHeight; ++y)
        for (int x = 0; x < kWidth; ++x) {
            const float dx = x + 0.5f - kWidth / 2.0f, dy = y + 0.5f - kHeight / 2.0f;
            pixels[static_cast<std::size_t>(y * kWidth + x)] = dx * dx + dy * dy <= radius * radius ? 1.0f : 0.0f;
        }
    return pixels;
}

std::vector<float> augmented(std::vector<float> pixels, const AugmentOptions& options, std::uint64_t seed,
                             const InputFormat& format = plain_format()) {
    Rng rng = augmentation_rng(seed, 1, 0);
    std::vector<float> scratch;
    augment_sample(pixels.data(), format, options, rng, scratch);
    return pixels;
}

std::vector<float> mirrored(const std::vector<float>& pixels) {
    std::vector<float> out(pixels.size());
    for (int y = 0; y < kHeight; ++y)
        for (int x = 0; x < kWidth; ++x)
            out[static_cast<std::size_t>(y * kWidth + x)] = pixels[static_cast<std::size_t>(y * kWidth + kWidth - 1 - x)];
    return out;
}

double bright_area(const std::vector<float>& pixels) {
    return static_cast<double>(std::count_if(pixels.begin(), pixels.end(), [](float v) { return v > 0.5f; }));
}

bool close(const std::vector<float>& a, const std::vector<float>& b, float tolerance = 1e-5f) {
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::fabs(a[i] - b[i]) > tolerance) return false;
    return a.size() == b.size();
}

}  // namespace

TEST_CASE("augment: a horizontal flip mirrors the image exactly, in about half of the draws") {
    AugmentOptions options;
    options.horizontal_flip = true;
    int flipped = 0, kept = 0;
    for (int seed = 0; seed < kSeeds; ++seed) {
        const std::vector<float> out = augmented(ramp(), options, static_cast<std::uint64_t>(seed));
        if (close(out, mirrored(ramp()))) ++flipped;
        else if (close(out, ramp())) ++kept;
    }
    CHECK(flipped + kept == kSeeds);
    CHECK(flipped >= kSeeds / 5);
    CHECK(kept >= kSeeds / 5);
}

TEST_CASE("augment: rotation turns a ramp but keeps a centred disc; zoom scales the disc's area") {
    AugmentOptions rotation;
    rotation.rotation_degrees = 30.0f;
    int changed = 0;
    for (int seed = 0; seed < kSeeds; ++seed) {
        CHECK(std::fabs(bright_area(augmented(disc(8.0f), rotation, static_cast<std::uint64_t>(seed))) - bright_area(disc(8.0f))) <= 8.0);
        changed += !close(augmented(ramp(), rotation, static_cast<std::uint64_t>(seed)), ramp(), 1e-3f);
    }
    CHECK(changed >= kSeeds - 2);  // an angle within 0.1 degrees of 0 is the only way to keep the ramp

    AugmentOptions zoom;
    zoom.zoom = 0.3f;
    double smallest = 1e9, largest = 0;
    const double area = bright_area(disc(7.0f));
    for (int seed = 0; seed < kSeeds; ++seed) {
        const double ratio = bright_area(augmented(disc(7.0f), zoom, static_cast<std::uint64_t>(seed))) / area;
        smallest = std::min(smallest, ratio);
        largest = std::max(largest, ratio);
    }
    // Scale in [0.7, 1.3], area in [0.49, 1.69] (pixel counting adds a little slack).
    CHECK(smallest >= 0.40);
    CHECK(largest <= 1.85);
    CHECK(smallest < 0.85);
    CHECK(largest > 1.15);
}

TEST_CASE("augment: translation moves a bright pixel by at most the given fraction of each side") {
    AugmentOptions options;
    options.translate = 0.1f;  // at most 3.2 pixels across, 2.4 down
    std::vector<float> dot(kHeight * kWidth, 0.0f);
    dot[static_cast<std::size_t>(12 * kWidth + 16)] = 1.0f;
    int moved = 0;
    for (int seed = 0; seed < kSeeds; ++seed) {
        const std::vector<float> out = augmented(dot, options, static_cast<std::uint64_t>(seed));
        const auto brightest = static_cast<int>(std::max_element(out.begin(), out.end()) - out.begin());
        const int x = brightest % kWidth, y = brightest / kWidth;
        CHECK(std::abs(x - 16) <= 4);
        CHECK(std::abs(y - 12) <= 3);
        moved += x != 16 || y != 12;
    }
    CHECK(moved > kSeeds / 2);
}

TEST_CASE("augment: brightness scales intensities, noise has the given stddev, both are clamped to [0, 1]") {
    InputFormat format = plain_format();
    format.mean = {0.4f};
    format.stddev = {0.2f};
    const float normalised_half = (0.5f - 0.4f) / 0.2f;
    AugmentOptions brightness;
    brightness.brightness = 0.2f;
    std::vector<float> factors;
    for (int seed = 0; seed < kSeeds; ++seed) {
        const std::vector<float> out =
            augmented(std::vector<float>(kHeight * kWidth, normalised_half), brightness, static_cast<std::uint64_t>(seed), format);
        const float intensity = out[0] * 0.2f + 0.4f;
        CHECK(std::all_of(out.begin(), out.end(), [&](float v) { return v == out[0]; }));
        factors.push_back(intensity / 0.5f);
    }
    CHECK(*std::min_element(factors.begin(), factors.end()) >= 0.8f - 1e-5f);
    CHECK(*std::max_element(factors.begin(), factors.end()) <= 1.2f + 1e-5f);
    CHECK(*std::max_element(factors.begin(), factors.end()) - *std::min_element(factors.begin(), factors.end()) > 0.2f);

    AugmentOptions noise;
    noise.noise = 0.05f;
    const std::vector<float> noisy = augmented(std::vector<float>(kHeight * kWidth, 0.5f), noise, 3);
    const double mean = std::accumulate(noisy.begin(), noisy.end(), 0.0) / static_cast<double>(noisy.size());
    double variance = 0.0;
    for (float v : noisy) variance += (v - mean) * (v - mean);
    CHECK(mean == doctest::Approx(0.5).epsilon(0.01));
    CHECK(std::sqrt(variance / static_cast<double>(noisy.size())) == doctest::Approx(0.05).epsilon(0.1));

    brightness.brightness = 1.0f;
    brightness.noise = 0.5f;
    for (int seed = 0; seed < 5; ++seed)
        for (float v : augmented(std::vector<float>(kHeight * kWidth, 1.0f), brightness, static_cast<std::uint64_t>(seed)))
            CHECK((v >= 0.0f && v <= 1.0f));
}

TEST_CASE("augment: the same (seed, epoch, position) gives the same sample, another position another one") {
    const AugmentOptions options = default_augmentation();
    std::vector<float> scratch, first = ramp(), again = ramp(), other = ramp();
    Rng a = augmentation_rng(7, 2, 5), b = augmentation_rng(7, 2, 5), c = augmentation_rng(7, 2, 6);
    augment_sample(first.data(), plain_format(), options, a, scratch);
    augment_sample(again.data(), plain_format(), options, b, scratch);
    augment_sample(other.data(), plain_format(), options, c, scratch);
    CHECK(first == again);
    CHECK(first != other);
}

TEST_CASE("augment: out-of-range values are refused naming the flag") {
    auto message = [](AugmentOptions options) {
        try {
            validate_augment_options(options);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string();
    };
    AugmentOptions options;
    options.rotation_degrees = 400.0f;
    CHECK(message(options).find("--rotation must be between 0 and 180") != std::string::npos);
    options = {};
    options.zoom = -0.1f;
    CHECK(message(options).find("--zoom") != std::string::npos);
    options = {};
    options.noise = NAN;
    CHECK(message(options).find("--noise") != std::string::npos);
    options = {};
    options.translate = 0.6f;
    CHECK(message(options).find("--translate") != std::string::npos);
    CHECK(message(default_augmentation()).empty());
    CHECK(describe_augmentation(AugmentOptions{}) == "none");
}

TEST_CASE("sampling: epoch orders are permutations, or balanced with every image visited") {
    const std::vector<int> labels = {0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 2, 2};  // 8, 2, 3
    std::vector<std::size_t> plain = epoch_order(labels, true, false, 5, 1);
    std::vector<std::size_t> sorted = plain;
    std::sort(sorted.begin(), sorted.end());
    std::vector<std::size_t> identity(labels.size());
    std::iota(identity.begin(), identity.end(), std::size_t{0});
    CHECK(sorted == identity);
    CHECK(epoch_order(labels, false, false, 5, 1) == identity);
    CHECK(epoch_order(labels, true, false, 5, 1) == plain);
    CHECK(epoch_order(labels, true, false, 5, 2) != plain);

    const std::vector<std::size_t> balanced = epoch_order(labels, true, true, 5, 1);
    CHECK(balanced.size() == 24);
    std::map<int, int> per_class;
    std::vector<int> visits(labels.size(), 0);
    for (std::size_t index : balanced) {
        ++per_class[labels[index]];
        ++visits[index];
    }
    CHECK(per_class[0] == 8);
    CHECK(per_class[1] == 8);
    CHECK(per_class[2] == 8);
    for (std::size_t i = 0; i < labels.size(); ++i) {
        CAPTURE(i);
        CHECK(visits[i] >= 1);
        // Copies are drawn without repetition, so a class's images are visited equally often, give or take one:
        // class 1 (2 images) 4 times each, class 2 (3 images) 2 or 3 times.
        if (labels[i] == 1) CHECK(visits[i] == 4);
        if (labels[i] == 2) CHECK((visits[i] == 2 || visits[i] == 3));
    }
    CHECK(epoch_order(labels, true, true, 5, 1) == balanced);
}

TEST_CASE("sampling: inverse-frequency weights equalise the classes and average to 1 over the images") {
    const std::vector<float> weights = inverse_frequency_weights({6, 2, 0, 4});
    // n = 12 over the 3 classes with images: 12 / (3 * 6), 12 / (3 * 2), 0, 12 / (3 * 4).
    CHECK(weights[0] == doctest::Approx(2.0f / 3.0f));
    CHECK(weights[1] == doctest::Approx(2.0f));
    CHECK(weights[2] == 0.0f);
    CHECK(weights[3] == doctest::Approx(1.0f));
    CHECK_THROWS_AS(parse_balance("smote"), Error);
}

TEST_CASE("loader: augmented batches are the cached samples augmented by (seed, epoch, position)") {
    TempFolder folder;
    write_tiny_dataset(folder.str(), 3);
    fs::remove(scan_labelled_folder(folder.str()).images.front().path);  // 2, 3, 3, 3, 3: oversampling has work
    const FolderScan scan = scan_labelled_folder(folder.str());
    InputFormat format;
    format.height = 16;
    format.width = 20;
    const LoaderOptions options{.batch_size = 4, .shuffle = true, .seed = 9, .oversample = true, .augment = default_augmentation()};
    BatchLoader loader(scan.images, format, options);
    const std::vector<int> labels = [&] {
        std::vector<int> l;
        for (const LabelledImage& image : scan.images) l.push_back(image.label);
        return l;
    }();
    const std::vector<std::size_t> order = epoch_order(labels, true, true, 9, 2);
    CHECK(order.size() == 15);
    CHECK(loader.epoch_length() == order.size());

    loader.start_epoch(2);
    Batch batch;
    std::size_t position = 0;
    std::vector<float> expected(input_floats(format)), scratch;
    while (loader.next(batch)) {
        for (std::size_t n = 0; n < batch.labels.size(); ++n, ++position) {
            CAPTURE(position);
            REQUIRE(batch.indices[n] == order[position]);
            preprocess_into(decode_image_file(scan.images[order[position]].path), format, expected.data());
            Rng rng = augmentation_rng(9, 2, position);
            augment_sample(expected.data(), format, options.augment, rng, scratch);
            CHECK(std::equal(expected.begin(), expected.end(), batch.images.data() + n * expected.size()));
        }
    }
    CHECK(position == order.size());
}

TEST_CASE("training with augmentation re-estimates batch norm on the unaugmented training images") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6);
    TrainOptions o = tiny_train_options(folder.file("data"), folder.file("m.eqc"));
    o.augment.noise = 0.5f;  // heavy noise: running statistics tracked on these batches would be far off
    train(o);
    const LoadedModel model = load_model(folder.file("m.eqc"));
    const std::unique_ptr<Network> loaded = Network::from_model(model);
    Network& network = *loaded;
    const std::vector<float> saved(network.buffers().values(), network.buffers().values() + network.buffers().size());

    // Averaging the statistics over one pass of the clean training split must leave the saved ones unchanged.
    const FolderScan scan = scan_labelled_folder(folder.file("data"));
    const Split split = stratified_split(scan.images, static_cast<int>(scan.class_names.size()), o.validation_split);
    BatchLoader clean(split.train, model.description.input, LoaderOptions{.batch_size = o.batch_size, .shuffle = false, .augment = {}});
    CHECK(split.train.size() == 25);  // a pass of 4 batches of 8, the last one partial
    reestimate_batch_norm(network, clean, 1);
    for (std::size_t i = 0; i < saved.size(); ++i) {
        CAPTURE(i);
        CHECK(network.buffers().values()[i] == doctest::Approx(saved[i]).epsilon(1e-4));
    }
}

TEST_CASE("cli: augmentation and balancing flags train, report and reject bad values") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 3);
    const std::string data = "'" + folder.file("data") + "'";
    const std::string tiny = " --arch c4bn-p-c6-p-fc --size 16x20 --epochs 1 --batch 8 --threads 2";
    const CommandResult trained = run_edgeqc("train " + data + " --out '" + folder.file("m.eqc") + "'" + tiny +
                                             " --augment --rotation 10 --balance weights --clahe 2 --denoise gaussian");
    INFO(trained.output);
    CHECK(trained.exit_code == 0);
    CHECK(trained.output.find("augmentation: hflip vflip rotation=10 zoom=0.1") != std::string::npos);
    CHECK(trained.output.find("balance: class weights") != std::string::npos);

    const CommandResult oversampled = run_edgeqc("train " + data + " --out '" + folder.file("o.eqc") + "'" + tiny + " --balance oversample");
    CHECK(oversampled.exit_code == 0);
    CHECK(oversampled.output.find("balance: oversample") != std::string::npos);

    for (const char* bad : {" --rotation 400", " --zoom -1", " --balance smote", " --denoise bilateral", " --clahe 0.5",
                            " --denoise median --denoise-size 4"}) {
        CAPTURE(bad);
        const CommandResult refused = run_edgeqc("train " + data + " --out '" + folder.file("x.eqc") + "'" + tiny + bad);
        CHECK(refused.exit_code != 0);
        CHECK(refused.output.find("error") != std::string::npos);
        CHECK(refused.output.find("epoch") == std::string::npos);  // refused before training
    }
    const CommandResult resumed = run_edgeqc("train " + data + " --out '" + folder.file("m.eqc") + "' --resume --augment --epochs 3");
    CHECK(resumed.exit_code != 0);
    CHECK(resumed.output.find("drop --augment") != std::string::npos);
}

TEST_CASE("cli: augment-preview writes a grid of one row per image and one column per version") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 2);
    const std::string out = folder.file("grid.png");
    const CommandResult preview = run_edgeqc("augment-preview '" + folder.file("data") + "' '" + out +
                                             "' --images 3 --variants 4 --size 16x20 --rotation 15 --seed 3 --augment --no-hflip");
    INFO(preview.output);
    REQUIRE(preview.exit_code == 0);
    const Image grid = decode_image_file(out);
    CHECK(grid.width == 5 * (20 + 2) - 2);
    CHECK(grid.height == 3 * (16 + 2) - 2);
    CHECK(run_edgeqc("augment-preview '" + folder.file("missing") + "' '" + out + "'").exit_code != 0);
    CHECK(run_edgeqc("augment-preview '" + folder.file("data") + "' '" + out + "' --noise 2").exit_code != 0);
}
