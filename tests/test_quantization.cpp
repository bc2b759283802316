// Quantized inference: the quantize pass, calibration, int8 plans against their float models and against the
// same arithmetic in floats, bit for bit the same on every kernel table and after a save and load, mixed
// precision, and the refusal of inconsistent quantized models.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <utility>

#include "engine/error.hpp"
#include "engine/inference_plan.hpp"
#include "engine/layer_s8.hpp"
#include "engine/kernels.hpp"
#include "engine/model_file.hpp"
#include "engine/model_passes.hpp"
#include "engine/pooling.hpp"
#include "optim/calibration.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

std::vector<float> random_images(const ModelDescription& d, int count, std::uint64_t seed) {
    std::vector<float> x(static_cast<std::size_t>(count) * d.input.channels * d.input.height * d.input.width);
    Rng rng(seed);
    for (float& v : x) v = rng.normal();
    return x;
}

// The conv and dense layers of a resolved architecture.
std::vector<int> weighted_layers(const ResolvedArchitecture& architecture) {
    std::vector<int> layers;
    for (std::size_t i = 0; i < architecture.layers.size(); ++i)
        if (!architecture.tensor_name(i, TensorRole::Weight).empty()) layers.push_back(static_cast<int>(i));
    return layers;
}

// The folded model quantized at `layers` (all weighted layers when empty), calibrated on `images` by `method`.
Model quantized(const Model& folded, const std::vector<float>& images, int count, CalibrationMethod method,
                std::vector<int> layers = {}) {
    InferencePlan plan(folded, 8);
    const std::vector<ActivationHistogram> statistics = collect_activation_statistics(plan, images.data(), count);
    if (layers.empty()) layers = weighted_layers(folded.description.resolve());
    std::vector<ActivationQuantization> inputs;
    for (const ActivationHistogram& h : statistics)
        if (std::find(layers.begin(), layers.end(), h.layer) != layers.end())
            inputs.push_back(calibrated_quantization(h, method));
    return quantize_model(folded, inputs);
}

std::vector<float> logits_of(const Model& model, const std::vector<float>& images, int count) {
    InferencePlan plan(model, count);
    const float* logits = plan.run(images.data(), count);
    return {logits, logits + static_cast<std::size_t>(count) * model.description.num_classes()};
}

int argmax(const float* values, int count) { return static_cast<int>(std::max_element(values, values + count) - values); }

}  // namespace

TEST_CASE("an int8 plan stays close to its float model and agrees on the top class") {
    const char* specs[] = {"c8bn-p-c16bn-p-c32bn-p-fc", "c6k5s2vbn-p3s2-c16-gap-fc16-drop0.5-fc", "c6-p-fc9-fc"};
    for (const char* spec : specs) {
        CAPTURE(spec);
        const ModelDescription d = model_description(spec, 3, 24, 30);
        const Model folded = fold_batch_norm(random_model(d, 5));
        const int count = 64;
        const std::vector<float> images = random_images(d, count, 6);
        for (CalibrationMethod method : kCalibrationMethods) {
            const std::string method_name = calibration_method_name(method);
            CAPTURE(method_name);
            const Model q = quantized(folded, images, count, method);
            const std::vector<float> expected = logits_of(folded, images, count), actual = logits_of(q, images, count);
            float largest = 0.0f;
            for (float v : expected) largest = std::max(largest, std::abs(v));
            double squared_error = 0.0, squared = 0.0;
            int agree = 0;
            for (int n = 0; n < count; ++n) {
                for (int c = 0; c < 4; ++c) {
                    const float e = expected[static_cast<std::size_t>(n) * 4 + c], a = actual[static_cast<std::size_t>(n) * 4 + c];
                    squared_error += (a - e) * (a - e);
                    squared += e * e;
                }
                agree += argmax(expected.data() + n * 4, 4) == argmax(actual.data() + n * 4, 4);
            }
            // 7-bit activations and 8-bit weights: a few percent of error, not more.
            CHECK(std::sqrt(squared_error / squared) < 0.08);
            CHECK(agree >= count * 85 / 100);
        }
    }
}

TEST_CASE("an int8 plan computes what the same arithmetic does in floats (quantized first layer)") {
    // Only the first conv in int8, its float output going on in float: the int8 layer's output must equal the
    // float conv of the dequantized weights on the quantized-then-dequantized input, padding included (the
    // input has negative values, so its zero point is not 0 and the padding must use it).
    const ModelDescription d = model_description("c8-p-fc", 3, 9, 11);
    const Model model = random_model(d, 9);
    const int count = 5;
    const std::vector<float> images = random_images(d, count, 10);
    const Model q = quantized(model, images, count, CalibrationMethod::MinMax, {0});
    const ActivationQuantization& input = q.activations.at(0);
    CHECK(input.zero_point > 0);
    Model simulated = model;
    const TypedTensor& weight = q.tensor("0.weight");
    const TypedTensor& bias = q.tensor("0.bias");
    float* w = simulated.tensor("0.weight").data<float>();
    const std::size_t per_output = weight.elements() / 8;
    for (std::size_t i = 0; i < weight.elements(); ++i) w[i] = weight.data<std::int8_t>()[i] * weight.scales[i / per_output];
    for (std::size_t c = 0; c < 8; ++c)
        simulated.tensor("0.bias").data<float>()[c] = static_cast<float>(bias.data<std::int32_t>()[c]) * bias.scales[c];
    std::vector<float> fake = images;
    for (float& v : fake) {
        const float steps = std::clamp(std::nearbyint(v / input.scale), static_cast<float>(-input.zero_point),
                                       static_cast<float>(kActivationMax - input.zero_point));
        v = steps * input.scale;
    }
    const std::vector<float> expected = logits_of(simulated, fake, count), actual = logits_of(q, images, count);
    for (std::size_t i = 0; i < expected.size(); ++i) CHECK(actual[i] == doctest::Approx(expected[i]).epsilon(1e-4).scale(1.0));
}

TEST_CASE("int8 plans give the same logits bit for bit on every kernel table, and after a save and load") {
    const ModelDescription d = model_description("c8bn-p-c16bn-c17-p-fc12-fc", 3, 19, 23);
    const Model folded = fold_batch_norm(random_model(d, 11));
    const int count = 33;
    const std::vector<float> images = random_images(d, count, 12);
    const Model q = quantized(folded, images, count, CalibrationMethod::Entropy);
    const std::string original = kernels().name;
    select_kernels("scalar");
    const std::vector<float> expected = logits_of(q, images, count);
    for (const KernelTable* table : available_kernel_tables()) {
        CAPTURE(table->name);
        select_kernels(table->name);
        const std::vector<float> actual = logits_of(q, images, count);
        CHECK(std::memcmp(actual.data(), expected.data(), expected.size() * sizeof(float)) == 0);
        // Batch 1 and a batch of 33 compute each image alike.
        InferencePlan single(q, 1);
        const float* one = single.run(images.data() + 5 * images.size() / count, 1);
        CHECK(std::memcmp(one, expected.data() + 5 * 4, 4 * sizeof(float)) == 0);
    }
    select_kernels(original);
    TempFolder folder;
    const std::string path = folder.file("int8.eqc");
    save_model(path, q);
    const LoadedModel loaded = load_model(path);
    CHECK(loaded.activations == q.activations);
    const std::vector<float> reloaded = logits_of(loaded, images, count);
    CHECK(std::memcmp(reloaded.data(), expected.data(), expected.size() * sizeof(float)) == 0);
    // An int8 file is about a quarter of the float one.
    save_model(folder.file("f32.eqc"), folded);
    CHECK(std::filesystem::file_size(path) < std::filesystem::file_size(folder.file("f32.eqc")) * 27 / 100 + 4096);
}

TEST_CASE("mixed precision: any subset of layers in int8 runs, and the more layers stay float the closer it gets") {
    const ModelDescription d = model_description("c8bn-p-c16bn-p-fc10-fc", 3, 16, 16);
    const Model folded = fold_batch_norm(random_model(d, 13));
    const int count = 40;
    const std::vector<float> images = random_images(d, count, 14);
    const std::vector<int> layers = weighted_layers(folded.description.resolve());
    REQUIRE(layers.size() == 4);
    const std::vector<float> expected = logits_of(folded, images, count);
    for (int mask = 1; mask < 16; ++mask) {
        CAPTURE(mask);
        std::vector<int> chosen;
        for (int l = 0; l < 4; ++l)
            if (mask & (1 << l)) chosen.push_back(layers[static_cast<std::size_t>(l)]);
        const Model q = quantized(folded, images, count, CalibrationMethod::MinMax, chosen);
        CHECK(q.activations.size() == chosen.size());
        const std::vector<float> actual = logits_of(q, images, count);
        double error = 0.0, norm = 0.0;
        for (std::size_t i = 0; i < expected.size(); ++i) {
            error += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            norm += expected[i] * expected[i];
        }
        CHECK(std::sqrt(error / norm) < 0.08);
    }
}

TEST_CASE("quantized models that are inconsistent are refused, naming what is wrong") {
    const ModelDescription d = model_description("c8-p-fc", 1, 8, 8);
    const Model model = random_model(d, 15);
    const std::vector<float> images = random_images(d, 8, 16);
    const Model q = quantized(model, images, 8, CalibrationMethod::MinMax);
    CHECK_NOTHROW(validate_model(q));
    const auto refused = [](Model m, const std::string& words) {
        CAPTURE(words);
        try {
            validate_model(m);
            FAIL("accepted");
        } catch (const Error& e) {
            CHECK(std::string(e.what()).find(words) != std::string::npos);
        }
    };
    Model m = q;
    m.tensor("0.weight").data<std::int8_t>()[3] = -128;
    refused(m, "-128");
    for (float bad : {0.0f, -1.0f, std::nanf(""), INFINITY}) {
        m = q;
        m.tensor("0.weight").scales[1] = bad;
        refused(m, std::isfinite(bad) ? "weight scale" : "NaN or infinite");
        m = q;
        m.activations[0].scale = bad;
        refused(m, "activation scale");
    }
    m = q;
    m.activations[0].zero_point = 128;
    refused(m, "zero point");
    m = q;
    m.activations.pop_back();
    refused(m, "no input activation scale");
    m = q;
    m.tensor("0.bias").scales[0] *= 2.0f;
    refused(m, "bias scale");
    m = q;
    m.tensor("0.bias").data<std::int32_t>()[0] = (1 << 30) + 1;
    refused(m, "2^30");
    CHECK_THROWS_WITH_AS(quantize_model(q, q.activations), "the model is already quantized", Error);
    CHECK_THROWS_AS(quantize_model(random_model(model_description("c8bn-p-fc", 1, 8, 8), 1), {}), Error);
}

TEST_CASE("calibration methods: thresholds on known distributions") {
    ActivationHistogram h;
    h.layer = 2;
    h.high = 100.0f;
    h.bins.assign(kHistogramBins, 0.0);
    // A million values spread evenly over (0, 10], a million more decaying exponentially (as a ReLU's outputs do),
    // and one outlier at 100.
    double decaying = 0.0;
    for (int b = 0; b < kHistogramBins / 10; ++b) h.bins[static_cast<std::size_t>(b)] = 1e6 / (kHistogramBins / 10);
    for (int b = 0; b < kHistogramBins; ++b) {
        const double count = std::floor(1e6 * (1.0 - std::exp(-h.high / kHistogramBins / 1.5)) * std::exp(-b * 100.0 / kHistogramBins / 1.5));
        h.bins[static_cast<std::size_t>(b)] += count;
        decaying += count;
    }
    h.bins.back() += 1;
    h.zeros = 5e5;
    h.total = 1.5e6 + decaying + 1;
    CHECK(calibration_threshold(h, CalibrationMethod::MinMax) == 100.0f);
    const float percentile = calibration_threshold(h, CalibrationMethod::Percentile);
    CHECK(percentile > 10.0f);  // the 99.99th percentile lies in the exponential's tail, far below the outlier
    CHECK(percentile < 20.0f);
    CHECK(clipped_fraction(h, percentile) <= 1.0 - kCalibrationPercentile + 1e-9);
    // KL and MSE both clip the lone outlier and keep the bulk.
    for (CalibrationMethod method : {CalibrationMethod::Entropy, CalibrationMethod::Mse}) {
        const std::string method_name = calibration_method_name(method);
        CAPTURE(method_name);
        const float threshold = calibration_threshold(h, method);
        CHECK(threshold >= 9.0f);
        CHECK(threshold < 30.0f);
        CHECK(clipped_fraction(h, threshold) < 1e-4);
    }
    CHECK(clipped_fraction(h, 100.0f) == 0.0);
    const ActivationQuantization q = calibrated_quantization(h, CalibrationMethod::MinMax);
    CHECK(q.layer == 2);
    CHECK(q.zero_point == 0);
    CHECK(q.scale == doctest::Approx(100.0 / 127));
    h.low = -50.0f;  // negative values: the full range, asymmetric
    const ActivationQuantization signed_range = calibrated_quantization(h, CalibrationMethod::Entropy);
    CHECK(signed_range.scale == doctest::Approx(150.0 / 127));
    CHECK(signed_range.zero_point == 42);
    CHECK(parse_calibration_method("kl") == CalibrationMethod::Entropy);
    CHECK_THROWS_AS(parse_calibration_method("kld"), Error);
}

namespace {

// A 3x3 int8 conv layer's s8 weights (random in [-127, 127], or the extremes -127 and 127 alternating) with scale
// 0.01, and its int32 bias (random in [-10000, 10000]) of scale 0.01 x 0.05, the input scale the tests use.
std::pair<TypedTensor, TypedTensor> conv_weights_s8(int outputs, int channels, bool extreme, Rng& rng) {
    TypedTensor weights(DataType::S8, Shape{outputs, channels, 3, 3});
    for (std::size_t i = 0; i < weights.elements(); ++i)
        weights.data<std::int8_t>()[i] = extreme ? static_cast<std::int8_t>(i % 2 ? 127 : -127)
                                                 : static_cast<std::int8_t>(static_cast<int>(rng.below(255)) - 127);
    weights.scales.assign(static_cast<std::size_t>(outputs), 0.01f);
    TypedTensor bias(DataType::S32, Shape{outputs});
    for (int o = 0; o < outputs; ++o) {
        bias.data<std::int32_t>()[o] = static_cast<std::int32_t>(rng.below(20001)) - 10000;
        bias.scales.push_back(0.01f * 0.05f);
    }
    return {std::move(weights), std::move(bias)};
}

}  // namespace

TEST_CASE("the int8 conv layer's ways (Winograd, im2col in either order) give the same outputs, on every table") {
    Rng rng(31);
    // Odd sizes (partial tiles), valid and same padding, 16 and 33 input channels, zero points 0 and 70, the
    // extreme weights and activations, requantized and dequantized outputs.
    struct Case {
        int channels, height, width, padding, outputs, zero_point;
        bool extreme, requantize;
    };
    const Case cases[] = {{16, 7, 9, 1, 5, 0, false, true}, {33, 6, 11, 0, 13, 70, false, false},
                          {16, 5, 5, 1, 8, 0, true, true},  {17, 9, 4, 1, 3, 127, true, false},
                          {16, 2, 3, 1, 4, 3, false, true}};
    for (const Case& c : cases) {
        CAPTURE(c.channels);
        CAPTURE(c.height);
        CAPTURE(c.width);
        CAPTURE(c.padding);
        const int out_height = c.height + 2 * c.padding - 2, out_width = c.width + 2 * c.padding - 2;
        const ConvGeometry g{c.channels, c.height, c.width, 3, 1, c.padding, out_height, out_width};
        const auto [weights, bias] = conv_weights_s8(c.outputs, c.channels, c.extreme, rng);
        const ActivationQuantization input{0, 0.05f, c.zero_point};
        std::optional<ActivationQuantization> output;
        if (c.requantize) output = ActivationQuantization{1, 10.0f, 0};
        const int batch = 2;
        std::vector<std::uint8_t> x(static_cast<std::size_t>(batch) * c.channels * c.height * c.width);
        for (std::uint8_t& v : x) v = c.extreme ? kActivationMax * (rng.below(2)) : static_cast<std::uint8_t>(rng.below(kActivationMax + 1));
        const std::size_t out_bytes = static_cast<std::size_t>(batch) * c.outputs * out_height * out_width * (c.requantize ? 1 : 4);
        for (const KernelTable* table : available_kernel_tables()) {
            CAPTURE(table->name);
            std::vector<std::vector<unsigned char>> results;
            for (const ConvAlgorithm algorithm :
                 {ConvAlgorithm::Im2col, ConvAlgorithm::Im2colByPositions, ConvAlgorithm::Winograd}) {
                const PackedLayerS8 layer(*table, &g, c.outputs, 0, weights, &bias, input, output, true, 2, algorithm);
                CHECK(layer.uses_winograd() == (algorithm == ConvAlgorithm::Winograd));
                std::vector<unsigned char, AlignedAllocator<unsigned char>> workspace(layer.workspace_bytes(batch, 2));
                std::vector<unsigned char> y(out_bytes, 0xEE);
                layer.run(x.data(), batch, y.data(), workspace.data(), 2);
                results.push_back(y);
            }
            CHECK(results[0] == results[1]);
            CHECK(results[0] == results[2]);
        }
    }
}

TEST_CASE("int8 conv layer that takes over its 2x2 max pool: the pool of its own output, bit for bit, either order") {
    Rng rng(31);
    // Odd and even sizes, one channel (a path of its own with AVX-512 VNNI, packed elsewhere) and several, requantized
    // and dequantized outputs, ReLU or not.
    struct Case {
        int channels, height, width, outputs;
        bool requantize, relu;
    };
    const Case cases[] = {{1, 9, 13, 7, true, true},   {16, 8, 10, 33, true, false}, {6, 5, 7, 40, false, true},
                          {33, 11, 30, 12, false, false}, {1, 7, 19, 10, false, true}};
    const int batch = 3;
    for (const Case& c : cases) {
        CAPTURE(c.channels);
        CAPTURE(c.height);
        CAPTURE(c.width);
        const ConvGeometry g{c.channels, c.height, c.width, 3, 1, 1, c.height, c.width};
        const std::pair<TypedTensor, TypedTensor> tensors = conv_weights_s8(c.outputs, c.channels, false, rng);
        const TypedTensor &weights = tensors.first, &bias = tensors.second;
        const ActivationQuantization input{0, 0.05f, 9};
        std::optional<ActivationQuantization> output;
        if (c.requantize) output = ActivationQuantization{1, 3.0f, 5};
        const std::size_t value_bytes = c.requantize ? 1 : sizeof(float);
        std::vector<std::uint8_t> x(static_cast<std::size_t>(batch) * c.channels * c.height * c.width);
        for (std::uint8_t& v : x) v = static_cast<std::uint8_t>(rng.below(kActivationMax + 1));
        const int pooled_height = c.height / 2, pooled_width = c.width / 2;
        for (const KernelTable* table : available_kernel_tables()) {
            CAPTURE(table->name);
            const auto run = [&](bool pool, ConvAlgorithm algorithm) {
                const PackedLayerS8 layer(*table, &g, c.outputs, 0, weights, &bias, input, output, c.relu, 2,
                                          algorithm, pool);
                CHECK(layer.pools() == pool);
                const std::size_t positions = pool ? pooled_height * pooled_width : c.height * c.width;
                std::vector<unsigned char, AlignedAllocator<unsigned char>> workspace(layer.workspace_bytes(batch, 2));
                std::vector<unsigned char> y(batch * c.outputs * positions * value_bytes, 0xEE);
                layer.run(x.data(), batch, y.data(), workspace.data(), 2);
                return y;
            };
            const std::vector<unsigned char> full = run(false, ConvAlgorithm::Im2col);
            // The 2x2 windows of the unpooled output, their largest value (compared as bytes or as floats).
            std::vector<unsigned char> expected;
            for (int plane = 0; plane < batch * c.outputs; ++plane)
                for (int py = 0; py < pooled_height; ++py)
                    for (int px = 0; px < pooled_width; ++px) {
                        std::size_t best = 0;
                        float best_value = -1e30f;
                        for (int corner = 0; corner < 4; ++corner) {
                            const std::size_t at = (static_cast<std::size_t>(plane) * c.height + 2 * py + corner / 2) *
                                                       c.width + 2 * px + corner % 2;
                            float value;
                            if (c.requantize) value = full[at];
                            else std::memcpy(&value, &full[at * sizeof(float)], sizeof value);
                            if (value > best_value) best_value = value, best = at;
                        }
                        expected.insert(expected.end(), full.begin() + best * value_bytes,
                                        full.begin() + (best + 1) * value_bytes);
                    }
            for (const ConvAlgorithm algorithm : {ConvAlgorithm::Im2col, ConvAlgorithm::Im2colByPositions}) {
                CAPTURE(static_cast<int>(algorithm));
                CHECK(run(true, algorithm) == expected);
            }
        }
    }
}

TEST_CASE("int8 conv layer timed with a pool after it that it cannot take over (valid padding): the im2col bits") {
    // Winograd and im2col are both possible, the pool on the sums is not (the output is smaller than the input): the
    // timing must neither pool nor pass over buffers of the input's size (the sanitizer leg caught a read past them).
    Rng rng(41);
    const ConvGeometry g{16, 9, 11, 3, 1, 0, 7, 9};
    const auto [weights, bias] = conv_weights_s8(8, g.channels, false, rng);
    const ActivationQuantization input{0, 0.05f, 4};
    const std::optional<ActivationQuantization> output = ActivationQuantization{1, 3.0f, 2};
    std::vector<std::uint8_t> x(static_cast<std::size_t>(g.channels) * g.height * g.width);
    for (std::uint8_t& v : x) v = static_cast<std::uint8_t>(rng.below(kActivationMax + 1));
    std::vector<std::vector<unsigned char>> results;
    for (const ConvAlgorithm algorithm : {ConvAlgorithm::Fastest, ConvAlgorithm::Im2col}) {
        const PackedLayerS8 layer(kernels(), &g, 8, 0, weights, &bias, input, output, true, 2, algorithm, true);
        CHECK_FALSE(layer.pools());
        std::vector<unsigned char, AlignedAllocator<unsigned char>> workspace(layer.workspace_bytes(1, 2));
        std::vector<unsigned char> y(static_cast<std::size_t>(8) * g.positions(), 0xEE);
        layer.run(x.data(), 1, y.data(), workspace.data(), 2);
        results.push_back(y);
    }
    CHECK(results[0] == results[1]);
}

TEST_CASE("plans sharing one set of weights run at once on two threads, each bit for bit what the first gives alone") {
    const ModelDescription d = model_description("c8bn-p-c16bn-p-c32bn-p-fc", 1, 24, 30);
    const Model folded = fold_batch_norm(random_model(d, 7));
    const int count = 6;
    const std::vector<float> images = random_images(d, count, 8);
    const Model int8 = quantized(folded, images, count, CalibrationMethod::MinMax);
    for (const Model* model : {&folded, &int8}) {
        InferencePlan first(*model, count, 1);
        const float* logits = first.run(images.data(), count);
        const std::vector<float> expected(logits, logits + count * 4);
        InferencePlan second = first.sharing_weights();
        CHECK(second.memory().weights == first.memory().weights);
        std::vector<float> results[2];
        std::vector<std::thread> threads;
        for (int t = 0; t < 2; ++t)
            threads.emplace_back([&, t] {
                InferencePlan& plan = t == 0 ? first : second;
                for (int repeat = 0; repeat < 20; ++repeat) {
                    const float* out = plan.run(images.data(), count);
                    if (repeat == 0) results[t].assign(out, out + count * 4);
                    else if (!results[t].empty() && !std::equal(out, out + count * 4, results[t].begin()))
                        results[t].clear();  // never changes
                }
            });
        for (std::thread& thread : threads) thread.join();
        for (const std::vector<float>& result : results) CHECK(result == expected);
    }
}

TEST_CASE("int8 2x2 max pool: every table gives the maximum of each window, on even, odd and one-wide sizes, "
          "chunk edges and extremes") {
    Rng rng(31);
    // Output rows of 1 to 65: every chunk width (2 to 32) alone, with an overlapping last chunk, and several of them;
    // the last size is large enough to share out among threads.
    const int sizes[][3] = {{1, 1, 1},  {2, 2, 2},  {3, 5, 7},   {4, 40, 60}, {2, 10, 15}, {5, 5, 7},
                            {1, 3, 2},  {2, 2, 67}, {2, 4, 1},   {1, 2, 33},  {3, 4, 9},   {2, 4, 130},
                            {1, 2, 64}, {3, 3, 97}, {2, 6, 63},  {1, 2, 17},  {64, 20, 30}};
    for (const KernelTable* table : available_kernel_tables()) {
        for (const auto& size : sizes) {
            const std::string table_name = table->name;
            CAPTURE(table_name);
            const int planes = size[0], height = size[1], width = size[2];
            const int out_height = height / 2, out_width = width / 2;
            CAPTURE(height);
            CAPTURE(width);
            std::vector<std::uint8_t> x(static_cast<std::size_t>(planes) * height * width);
            for (std::uint8_t& v : x)
                v = static_cast<std::uint8_t>(rng.below(4) == 0 ? kActivationMax : rng.below(kActivationMax + 1));
            std::vector<std::uint8_t> y(static_cast<std::size_t>(planes) * out_height * out_width + 1, 0xEE);
            max_pool_u8(*table, x.data(), planes, height, width, 2, 2, y.data());
            for (int p = 0; p < planes; ++p)
                for (int oy = 0; oy < out_height; ++oy)
                    for (int ox = 0; ox < out_width; ++ox) {
                        const auto at = [&](int dy, int dx) {
                            return x[(static_cast<std::size_t>(p) * height + 2 * oy + dy) * width + 2 * ox + dx];
                        };
                        const std::uint8_t expected = std::max({at(0, 0), at(0, 1), at(1, 0), at(1, 1)});
                        CHECK(y[(static_cast<std::size_t>(p) * out_height + oy) * out_width + ox] == expected);
                    }
            CHECK(y.back() == 0xEE);  // nothing past the output
        }
    }
}
