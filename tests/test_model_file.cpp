// Model file round trip and validation: truncated, bit-flipped, foreign and future-version files must each
// fail with one clear message, never crash or load garbage; batch-norm folding must not change outputs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/classifier.hpp"
#include "engine/byte_io.hpp"
#include "engine/error.hpp"
#include "engine/model_file.hpp"
#include "engine/inference_plan.hpp"
#include "engine/model_passes.hpp"
#include "layers/network.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

ModelDescription small_description() {
    ModelDescription d;
    d.architecture = "c4bn-p-c6-gap-fc5-drop0.25-fc";
    d.class_names = {"crack", "hole", "normal"};
    d.input.channels = 1;
    d.input.height = 12;
    d.input.width = 10;
    d.input.mean = {0.5f};
    d.input.stddev = {0.25f};
    d.input.enhancement = {Denoise::Median, 5, 2.5f, 4};
    return d;
}

// Writes a model whose batch-norm statistics are not the defaults, so folding has work to do.
std::unique_ptr<Network> write_small_model(const std::string& path) {
    const ModelDescription d = small_description();
    auto network = build_network(d);
    network->initialize(InitScheme::He, 3);
    Rng rng(4);
    for (std::size_t i = 0; i < network->buffers().slots().size(); ++i) {
        const TensorView v = network->buffers().value(i);
        for (std::size_t k = 0; k < v.size(); ++k) v[k] = 0.5f + rng.uniform();
    }
    save_model(path, network->to_model(d));
    return network;
}

std::string load_error(const std::string& path) {
    try {
        load_model(path);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

void patch_crc(std::vector<unsigned char>& bytes) {
    const std::uint32_t crc = crc32(bytes.data(), bytes.size() - 4);
    std::memcpy(bytes.data() + bytes.size() - 4, &crc, 4);
}

// The file with the section whose four-letter tag is given cut out, version and section count set, CRC
// patched: how an older writer's file or a damaged newer one looks.
std::vector<unsigned char> without_section(std::vector<unsigned char> bytes, const char (&tag)[5], std::uint32_t version) {
    constexpr std::size_t kHeaderBytes = 16;
    std::uint32_t sections = 0;
    std::memcpy(&sections, bytes.data() + 12, 4);
    std::size_t at = kHeaderBytes;
    for (std::uint32_t s = 0; s < sections; ++s) {
        std::uint64_t length = 0;
        std::memcpy(&length, bytes.data() + at + 4, 8);
        const std::size_t end = at + 12 + static_cast<std::size_t>(length);
        if (std::memcmp(bytes.data() + at, tag, 4) == 0) {
            bytes.erase(bytes.begin() + static_cast<long>(at), bytes.begin() + static_cast<long>(end));
            --sections;
            break;
        }
        at = end;
    }
    std::memcpy(bytes.data() + 8, &version, 4);
    std::memcpy(bytes.data() + 12, &sections, 4);
    patch_crc(bytes);
    return bytes;
}

}  // namespace

TEST_CASE("a saved model loads back with the same description, weights and buffers") {
    TempFolder folder;
    const std::string path = folder.file("m.eqc");
    const auto original = write_small_model(path);
    const LoadedModel loaded = load_model(path);
    const ModelDescription d = small_description();
    CHECK(loaded.description.architecture == d.architecture);
    CHECK(loaded.description.class_names == d.class_names);
    CHECK(loaded.description.input.height == 12);
    CHECK(loaded.description.input.mean == d.input.mean);
    CHECK(loaded.description.input.stddev == d.input.stddev);
    CHECK(loaded.description.input.enhancement == d.input.enhancement);
    CHECK_FALSE(loaded.has_training_state);
    const std::unique_ptr<Network> network = Network::from_model(loaded);
    for (auto arenas : {std::pair{&original->parameters(), &network->parameters()},
                        std::pair{&original->buffers(), &network->buffers()}}) {
        REQUIRE(arenas.first->size() == arenas.second->size());
        CHECK(std::memcmp(arenas.first->values(), arenas.second->values(), arenas.first->size() * sizeof(float)) == 0);
    }
    CHECK_FALSE(fs::exists(path + ".tmp" + std::to_string(::getpid())));  // the temporary file was renamed away
}

TEST_CASE("training state survives a round trip") {
    TempFolder folder;
    const ModelDescription d = small_description();
    auto network = build_network(d);
    TrainingState state;
    state.epochs_done = 4;
    state.optimizer_steps = 123;
    state.best_metric = 0.75;
    state.best_epoch = 3;
    state.first_moment.assign(network->parameters().size(), 0.5f);
    state.second_moment.assign(network->parameters().size(), 0.25f);
    state.recipe = {{"lr", "0.001"}, {"architecture", d.architecture}};
    state.callbacks = {{"plateau_scale", "0.25"}, {"plateau_wait", "2"}};
    save_model(folder.file("c.eqc"), network->to_model(d), &state);
    const LoadedModel loaded = load_model(folder.file("c.eqc"));
    REQUIRE(loaded.has_training_state);
    CHECK(loaded.training_state.epochs_done == 4);
    CHECK(loaded.training_state.optimizer_steps == 123);
    CHECK(loaded.training_state.best_metric == 0.75);
    CHECK(loaded.training_state.second_moment[7] == 0.25f);
    CHECK(loaded.training_state.recipe == state.recipe);
    CHECK(loaded.training_state.callbacks == state.callbacks);
}

TEST_CASE("a v1 model file (before preprocessing was stored) loads without enhancement; v2 needs PREP") {
    TempFolder folder;
    const std::string path = folder.file("m.eqc");
    const auto original = write_small_model(path);
    write_bytes(folder.file("v1.eqc"), without_section(read_bytes(path), "PREP", 1));
    const LoadedModel v1 = load_model(folder.file("v1.eqc"));
    CHECK(v1.description.input.enhancement == Enhancement{});
    CHECK(v1.description.input.mean == small_description().input.mean);
    CHECK(std::memcmp(Network::from_model(v1)->parameters().values(), original->parameters().values(),
                      original->parameters().size() * sizeof(float)) == 0);

    write_bytes(folder.file("v2.eqc"), without_section(read_bytes(path), "PREP", 2));
    CHECK(load_error(folder.file("v2.eqc")).find("PREP section is missing") != std::string::npos);
}

TEST_CASE("out-of-range preprocessing settings in a model file are refused") {
    TempFolder folder;
    auto network = build_network(small_description());
    for (const Enhancement& bad : {Enhancement{static_cast<Denoise>(7), 3, 0.0f, 8}, Enhancement{Denoise::Median, 4, 0.0f, 8},
                                   Enhancement{Denoise::None, 3, 0.5f, 8}, Enhancement{Denoise::None, 3, 2.0f, 0}}) {
        ModelDescription d = small_description();
        d.input.enhancement = bad;
        save_model(folder.file("bad.eqc"), network->to_model(d));
        const std::string message = load_error(folder.file("bad.eqc"));
        CAPTURE(message);
        CHECK((message.find("denois") != std::string::npos || message.find("CLAHE") != std::string::npos));
    }
}

TEST_CASE("every truncation of a model file is refused with a clear message") {
    TempFolder folder;
    const std::string path = folder.file("m.eqc");
    write_small_model(path);
    const std::vector<unsigned char> bytes = read_bytes(path);
    const std::string cut = folder.file("cut.eqc");
    for (std::size_t length = 0; length < bytes.size(); length += 1 + length / 7) {
        CAPTURE(length);
        write_bytes(cut, std::vector<unsigned char>(bytes.begin(), bytes.begin() + static_cast<long>(length)));
        const std::string message = load_error(cut);
        CHECK(!message.empty());
        CHECK((message.find("truncated") != std::string::npos || message.find("not an edgeqc model") != std::string::npos ||
               message.find("corrupt") != std::string::npos));
    }
}

TEST_CASE("a flipped bit anywhere in a model file is detected") {
    TempFolder folder;
    const std::string path = folder.file("m.eqc");
    write_small_model(path);
    const std::vector<unsigned char> bytes = read_bytes(path);
    const std::string flipped = folder.file("flipped.eqc");
    for (std::size_t position = 0; position < bytes.size(); position += 1 + position / 5) {
        CAPTURE(position);
        std::vector<unsigned char> damaged = bytes;
        damaged[position] ^= 0x10;
        write_bytes(flipped, damaged);
        CHECK(!load_error(flipped).empty());
    }
}

TEST_CASE("foreign files, folders, missing files and newer format versions are refused by name") {
    TempFolder folder;
    write_bytes(folder.file("image.png"), {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'});
    CHECK(load_error(folder.file("image.png")).find("not an edgeqc model file") != std::string::npos);
    CHECK(load_error(folder.file("missing.eqc")).find("does not exist") != std::string::npos);
    CHECK(load_error(folder.str()).find("is a folder") != std::string::npos);

    const std::string path = folder.file("m.eqc");
    write_small_model(path);
    std::vector<unsigned char> bytes = read_bytes(path);
    const std::uint32_t future = kModelFormatVersion + 1;
    std::memcpy(bytes.data() + 8, &future, 4);
    patch_crc(bytes);
    write_bytes(folder.file("future.eqc"), bytes);
    CHECK(load_error(folder.file("future.eqc")).find("newer than this edgeqc") != std::string::npos);
}

TEST_CASE("a model whose tensors do not fit its architecture is refused even with a valid checksum") {
    TempFolder folder;
    ModelDescription d = small_description();
    auto network = build_network(d);
    d.architecture = "c3bn-p-c6-gap-fc5-drop0.25-fc";  // claims 3 filters, stores 4
    save_model(folder.file("m.eqc"), network->to_model(d));
    CHECK(load_error(folder.file("m.eqc")).find("does not have the shape") != std::string::npos);
}

TEST_CASE("well-formed files with hostile contents are refused before any large allocation") {
    TempFolder folder;
    const ModelDescription d = small_description();
    auto network = build_network(d);
    network->initialize(InitScheme::He, 1);

    ModelDescription huge = d;
    huge.architecture = "c8192-c8192-c8192-fc";  // gigabytes of weights claimed by a file of a few kilobytes
    save_model(folder.file("huge.eqc"), network->to_model(huge));
    CHECK(load_error(folder.file("huge.eqc")).find("smaller than its architecture needs") != std::string::npos);

    ModelDescription channels = d;
    channels.input.channels = 2;
    channels.input.mean = {0.5f, 0.5f};
    channels.input.stddev = {1.0f, 1.0f};
    save_model(folder.file("channels.eqc"), network->to_model(channels));
    CHECK(load_error(folder.file("channels.eqc")).find("channel") != std::string::npos);

    network->parameters().value(0)[3] = std::numeric_limits<float>::quiet_NaN();
    save_model(folder.file("nan.eqc"), network->to_model(d));
    CHECK(load_error(folder.file("nan.eqc")).find("NaN") != std::string::npos);
    network->parameters().value(0)[3] = 0.0f;

    ModelDescription overflowing = d;  // (x - mean) / 1e-45 is infinite for most pixels
    overflowing.input.mean.assign(static_cast<std::size_t>(d.input.channels), 0.5f);
    overflowing.input.stddev.assign(static_cast<std::size_t>(d.input.channels), 1e-45f);
    save_model(folder.file("stddev.eqc"), network->to_model(overflowing));
    CHECK(load_error(folder.file("stddev.eqc")).find("stddev must be at least 1e-6") != std::string::npos);

    network->buffers().value(1)[0] = -1.0f;  // 0.running_var
    save_model(folder.file("variance.eqc"), network->to_model(d));
    CHECK(load_error(folder.file("variance.eqc")).find("negative variance") != std::string::npos);
}

TEST_CASE("a flipped bit in the version field reads as damage, not as a newer format") {
    TempFolder folder;
    const std::string path = folder.file("m.eqc");
    write_small_model(path);
    std::vector<unsigned char> bytes = read_bytes(path);
    bytes[8] ^= 0x04;  // version 2 -> 6, checksum left as it was
    write_bytes(path, bytes);
    CHECK(load_error(path).find("corrupted") != std::string::npos);
}

TEST_CASE("outputs replace only regular files, clean up after dead writers and may not name the same file twice") {
    TempFolder folder;
    const std::vector<unsigned char> bytes{1, 2, 3};
    const std::string fifo = folder.file("pipe.eqc");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH_AS(write_file_atomically(fifo, bytes), doctest::Contains("it is a FIFO"), Error);
    CHECK_THROWS_WITH_AS(check_output_writable(fifo), doctest::Contains("it is a FIFO"), Error);
    const std::string target = folder.file("target.eqc"), link = folder.file("link.eqc");
    write_bytes(target, {9});
    fs::create_symlink(target, link);
    CHECK_THROWS_WITH_AS(write_file_atomically(link, bytes), doctest::Contains("symbolic link"), Error);
    CHECK(read_bytes(target) == std::vector<unsigned char>{9});  // neither the link nor its target replaced
    CHECK(fs::is_symlink(link));
    CHECK_THROWS_WITH_AS(check_output_writable(folder.str()), doctest::Contains("it is a folder"), Error);

    // A kill -9 during a write leaves path.tmp<PID>: the next write to path removes those of processes gone.
    const std::string path = folder.file("m.eqc");
    pid_t gone = 4000000;  // above Linux's largest PID: never a running process
    REQUIRE(::kill(gone, 0) != 0);
    write_bytes(path + ".tmp" + std::to_string(gone), {7});
    write_bytes(path + ".tmp1", {7});  // PID 1 runs: a write in progress elsewhere, left alone
    write_file_atomically(path, bytes);
    CHECK(read_bytes(path) == bytes);
    CHECK_FALSE(fs::exists(path + ".tmp" + std::to_string(gone)));
    CHECK(fs::exists(path + ".tmp1"));

    check_distinct_outputs({{"--out", path}, {"--report", folder.file("r.html")}, {"--log", ""}});
    CHECK_THROWS_WITH_AS(check_distinct_outputs({{"--out", path}, {"--report", folder.str() + "/./m.eqc"}}),
                         doctest::Contains("--report and --out name the same file"), Error);
}

TEST_CASE("saving into a missing folder fails cleanly and leaves an existing model untouched") {
    TempFolder folder;
    const ModelDescription d = small_description();
    auto network = build_network(d);
    CHECK_THROWS_AS(save_model(folder.str() + "/no/such/folder/m.eqc", network->to_model(d)), Error);
    const std::string path = folder.file("m.eqc");
    write_small_model(path);
    const std::vector<unsigned char> before = read_bytes(path);
    fs::create_directories(path + ".tmp" + std::to_string(::getpid()));  // the temporary name is blocked
    CHECK_THROWS_AS(save_model(path, network->to_model(d)), Error);
    CHECK(read_bytes(path) == before);
}

TEST_CASE("folding batch norm into the convolutions keeps inference outputs, through the inference plan") {
    TempFolder folder;
    const auto network = write_small_model(folder.file("m.eqc"));
    Tensor x({3, 1, 12, 10});
    Rng rng(5);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.normal();
    const Tensor expected = network->forward(x, Mode::Infer);
    const Model folded_model = fold_batch_norm(network->to_model(small_description()));
    CHECK(folded_model.description.architecture == "c4-p-c6-gap-fc5-drop0.25-fc");
    InferencePlan plan(network->to_model(small_description()), 3);
    const float* actual = plan.run(x.data(), 3);
    for (std::size_t i = 0; i < expected.size(); ++i) CHECK(actual[i] == doctest::Approx(expected[i]).epsilon(1e-4));
}

TEST_CASE("architecture specs: grammar, layer counts and clear errors") {
    const Network network("c8k5s2vbn-p3s2-c4-gap-fc16-drop0.5-fc", Shape{3, 31, 29}, 4);
    CHECK(network.layer_specs().front().kind == LayerKind::Conv);
    CHECK(network.layer_specs().front().kernel == 5);
    CHECK(network.layer_specs().front().padding == 0);
    CHECK_FALSE(network.layer_specs().front().bias);
    CHECK(network.layer_specs().back().units == 4);
    const Network paper(kPaperArchitecture, Shape{1, 80, 120}, 4);
    CHECK(paper.flops_per_image() == doctest::Approx(1.24e9).epsilon(0.01));  // the figure the kernels issue quotes
    for (const char* bad : {"c32-p", "c-fc", "c32x-fc", "q-fc", "fc-c3-fc", "c32--fc", "drop1.5-fc", "p0-fc"}) {
        CAPTURE(bad);
        CHECK_THROWS_AS(parse_architecture(bad), Error);
    }
    CHECK_THROWS_WITH_AS(Network("c4-p-p-p-p-fc", Shape{1, 8, 8}, 2), doctest::Contains("smaller than"), Error);
}

TEST_CASE("a model file written by an earlier build (38e0dc1, before the runtime split) predicts as it did there") {
    // golden/model_by_38e0dc1.eqc: `edgeqc train` of commit 38e0dc1 on `edgeqc synth data --per-class 3 --size 16x20
    // --seed 7` (the images write_tiny_dataset makes), and that build's `edgeqc predict` output for ten of them,
    // which prints probabilities to 4 decimals.
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 3);
    const std::string golden = std::string(EDGEQC_SOURCE_DIR) + "/tests/golden/";
    Classifier classifier(load_model(golden + "model_by_38e0dc1.eqc"));
    const std::vector<std::string>& classes = classifier.description().class_names;
    std::ifstream expected(golden + "model_by_38e0dc1_predictions.txt");
    std::string line;
    int images = 0;
    while (std::getline(expected, line)) {
        CAPTURE(line);
        const std::string image = line.substr(0, line.find(':'));
        const Prediction p = classifier.classify_file(folder.file("data/" + image));
        CHECK(line.find(": " + classes[static_cast<std::size_t>(p.class_index)] + " (") != std::string::npos);
        for (std::size_t k = 0; k < classes.size(); ++k) {
            const std::size_t at = line.find(classes[k] + " ", line.find('['));
            REQUIRE(at != std::string::npos);
            const double printed = std::stod(line.substr(at + classes[k].size() + 1));
            CHECK(std::abs(p.probabilities[k] - printed) <= 5.01e-5);  // printed to 4 decimals
        }
        ++images;
    }
    CHECK(images == 10);
}
