// The inference runtime: the plan against the trainable network it was made from (every kernel table, several
// architectures, batches of 1 and 5), its memory accounting, its refusals, plans running at once on two threads,
// and the classifier on an image in memory against the same image read from a file.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <thread>

#include "data/classifier.hpp"
#include "data/image.hpp"
#include "engine/error.hpp"
#include "engine/inference_plan.hpp"
#include "engine/kernels.hpp"
#include "layers/network.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

// Plan and network sum in different orders (packed GEMM, Winograd): mixed tolerance on logits of order 1-10.
constexpr double kAbsoluteTolerance = 1e-4, kRelativeTolerance = 1e-4;

Tensor random_inputs(const ModelDescription& d, int batch, std::uint64_t seed) {
    Tensor x({batch, d.input.channels, d.input.height, d.input.width});
    Rng rng(seed);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.normal();
    return x;
}

void check_close(const float* actual, const float* expected, std::size_t count) {
    int mismatches = 0;
    for (std::size_t i = 0; i < count; ++i)
        if (!(std::abs(actual[i] - expected[i]) <= kAbsoluteTolerance + kRelativeTolerance * std::abs(expected[i])) &&
            mismatches++ < 5)
            FAIL_CHECK("logit " << i << " = " << actual[i] << ", network " << expected[i]);
    CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("the plan computes what the trainable network computes in inference mode, on every kernel table") {
    // Winograd layers (16+ inputs), GEMM layers, strides, valid padding, odd pools, gap, hidden dense + dropout.
    const char* specs[] = {"c4bn-p-c16bn-c17-p-fc", "c8k5s2vbn-p3s2-c16-gap-fc16-drop0.5-fc", "c6-p-fc9-fc"};
    const std::string original = kernels().name;
    for (const char* spec : specs) {
        CAPTURE(spec);
        const ModelDescription d = model_description(spec, 3, 23, 29);
        const Model model = random_model(d, 11);
        const auto network = Network::from_model(model, false);
        for (const int batch : {1, 5}) {
            CAPTURE(batch);
            const Tensor x = random_inputs(d, batch, 12);
            const Tensor expected = network->forward(x, Mode::Infer);
            for (const KernelTable* table : available_kernel_tables()) {
                CAPTURE(table->name);
                select_kernels(table->name);
                InferencePlan plan(model, 5);
                check_close(plan.run(x.data(), batch), expected.data(), expected.size());
                // The probabilities are the softmax of those logits.
                const float* p = plan.probabilities(x.data(), batch);
                for (int n = 0; n < batch; ++n)
                    CHECK(std::accumulate(p + n * 4, p + n * 4 + 4, 0.0) == doctest::Approx(1.0).epsilon(1e-6));
            }
            select_kernels(original);
        }
    }
}

TEST_CASE("the plan reports its memory, and the reference network's batch-1 plan fits the edge budget") {
    const ModelDescription d = model_description(kDefaultArchitecture, 1, 80, 120);
    InferencePlan plan(random_model(d, 3), 1, 2);
    const PlanMemory memory = plan.memory();
    // 3.76 M parameters (folded) of 4 bytes; Winograd-transformed 3x3 weights take 16/9 (2x2 tiles: conv4, conv5)
    // or 4 (4x4 tiles: conv2, conv3) times their size.
    CHECK(memory.weights > std::size_t{14} << 20);
    CHECK(memory.weights < std::size_t{40} << 20);
    // The largest activation is 32 x 80 x 120 floats (1.2 MB), twice.
    CHECK(memory.activations == 2 * aligned_floats(32 * 80 * 120) * sizeof(float));
    CHECK(memory.workspace > 0);
    CHECK(memory.total() < std::size_t{64} << 20);
    CHECK(memory.total() == memory.weights + memory.activations + memory.workspace);
}

TEST_CASE("the plan refuses batches it was not built for and invalid models") {
    const ModelDescription d = model_description("c4-p-fc", 1, 8, 8);
    const Model model = random_model(d, 1);
    InferencePlan plan(model, 2);
    const Tensor x = random_inputs(d, 3, 1);
    CHECK_THROWS_WITH_AS(plan.run(x.data(), 3), doctest::Contains("1 to 2 images"), Error);
    CHECK_THROWS_AS(plan.run(x.data(), 0), Error);
    CHECK_THROWS_AS(InferencePlan(model, 0), Error);

    Model quantized = model;
    TypedTensor weight(DataType::S8, quantized.tensor("0.weight").shape());
    weight.scales.assign(4, 0.1f);
    quantized.tensor("0.weight") = weight;
    CHECK_THROWS_WITH_AS(InferencePlan(quantized, 1), doctest::Contains("activation scale"), Error);

    Model broken = model;
    broken.tensors.pop_back();
    CHECK_THROWS_AS(InferencePlan(broken, 1), Error);
}

TEST_CASE("a plan runs with the kernels and the thread count it was built for") {
    const ModelDescription d = model_description("c4bn-p-c16bn-c17-p-fc9-fc", 1, 14, 18);
    const Model model = random_model(d, 21);
    const Tensor x = random_inputs(d, 2, 22);
    const std::string original = kernels().name;
    InferencePlan plan(model, 2, 1);
    const float* first = plan.run(x.data(), 2);
    const std::vector<float> expected(first, first + 8);
    // Another table's packing differs (scalar packs m x k, AVX2 pads rows to its tile): the plan must not mix them.
    for (const KernelTable* table : available_kernel_tables()) {
        CAPTURE(table->name);
        select_kernels(table->name);
        const float* again = plan.run(x.data(), 2);
        CHECK(std::equal(expected.begin(), expected.end(), again));
    }
    select_kernels(original);
    const int caller_threads = omp_get_max_threads();
    plan.run(x.data(), 2);
    CHECK(omp_get_max_threads() == caller_threads);  // the plan's own count (1) was only set for its run
}

TEST_CASE("plans run at once on two threads, each giving what it gives alone") {
    const ModelDescription d = model_description("c8bn-p-c16bn-p-c32-p-fc", 1, 32, 40);
    const Model model = random_model(d, 5);
    const Tensor x = random_inputs(d, 1, 6);
    InferencePlan alone(model, 1);
    const float* logits = alone.run(x.data(), 1);
    const std::vector<float> expected(logits, logits + 4);
    std::vector<float> results[2];
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t)
        threads.emplace_back([&, t] {
            InferencePlan plan(model, 1, 1);
            for (int repeat = 0; repeat < 20; ++repeat) {
                const float* out = plan.run(x.data(), 1);
                if (repeat == 0) results[t].assign(out, out + 4);
                else if (!results[t].empty() && !std::equal(out, out + 4, results[t].begin()))
                    results[t].clear();  // must never change
            }
        });
    for (std::thread& thread : threads) thread.join();
    for (const std::vector<float>& result : results) {
        REQUIRE(result.size() == 4);
        check_close(result.data(), expected.data(), 4);
    }
}

TEST_CASE("the classifier gives the same answer for an image in memory and the same image in a file") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 1);
    ModelDescription d = model_description("c4bn-p-c6-p-fc", 1, 16, 20);
    d.input.mean = {0.4f};
    d.input.stddev = {0.2f};
    d.input.enhancement.clahe_clip = 2.0f;
    Classifier classifier(random_model(d, 8));
    const std::string path = folder.file("data/crack/crack_0000.png");
    const Prediction from_file = classifier.classify_file(path);
    const Prediction from_memory = classifier.classify(decode_image_file(path));
    CHECK(from_file.class_index == from_memory.class_index);
    CHECK(from_file.probabilities == from_memory.probabilities);
    CHECK(from_file.probabilities.size() == 4);
    CHECK(from_file.class_index == std::max_element(from_file.probabilities.begin(), from_file.probabilities.end()) -
                                       from_file.probabilities.begin());
    CHECK_THROWS_WITH_AS(classifier.classify_file(folder.file("missing.png")), doctest::Contains("missing.png"), Error);
}

TEST_CASE("a model whose output overflows gives an error for the image, never a probability that is not a number") {
    const ModelDescription d = model_description("c8-p-fc", 1, 8, 10);
    Model model = random_model(d, 3);
    float* weights = model.tensor("0.weight").data<float>();
    weights[0] = weights[1] = 3e38f;  // finite, as a loaded model's must be, but their sum is not
    Classifier classifier(std::move(model));
    const Image bright{10, 8, 1, std::vector<float>(80, 1.0f)};
    CHECK_THROWS_WITH_AS(classifier.classify(bright), doctest::Contains("not a number"), Error);
}
