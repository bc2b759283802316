// Gradient checks for every layer and the loss head, on odd shapes, on every kernel path.
//
// How to add a new layer to these checks: build it in a CHECK_LAYER_GRADIENTS-style test case below with an
// odd input shape (13 channels, prime widths, batch 1 and 3), pick inputs away from its non-smooth points
// (ReLU at 0, max-pool ties), and call check_layer_gradients(); it compares backward() against central
// differences of L = sum(y * r) for a fixed random r, for the input and for every parameter.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <numeric>

#include "engine/conv2d_f32.hpp"
#include "engine/kernels.hpp"
#include "engine/rng.hpp"
#include "layers/batch_norm.hpp"
#include "layers/conv2d.hpp"
#include "layers/dense.hpp"
#include "layers/dropout.hpp"
#include "layers/flatten.hpp"
#include "layers/global_avg_pool.hpp"
#include "layers/max_pool.hpp"
#include "layers/relu.hpp"
#include "layers/softmax_cross_entropy.hpp"
#include "optim/training_kernels.hpp"
#include "test_support.hpp"

using namespace edgeqc;

namespace {

// Central-difference step and the mixed tolerance |analytic - numeric| <= kAbsolute + kRelative * |numeric|.
// float32 forward passes leave about 1e-4 of noise in a difference quotient with this step.
constexpr float kStep = 1e-2f;
constexpr double kAbsoluteTolerance = 2e-3;
constexpr double kRelativeTolerance = 2e-2;
constexpr int kSampledIndices = 40;

void fill_normal(float* data, std::size_t n, Rng& rng, float scale = 1.0f) {
    for (std::size_t i = 0; i < n; ++i) data[i] = scale * rng.normal();
}

// Distinct values at least 0.05 apart and 0.025 away from 0, shuffled: no max-pool ties or ReLU kinks within kStep.
void fill_spaced(Tensor& t, Rng& rng) {
    std::vector<float> values(t.size());
    for (std::size_t i = 0; i < values.size(); ++i)
        values[i] = (static_cast<float>(i) - static_cast<float>(values.size()) / 2.0f) * 0.05f + 0.025f;
    rng.shuffle(values);
    std::copy(values.begin(), values.end(), t.data());
}

double weighted_sum(const Tensor& y, const Tensor& r) {
    double sum = 0.0;
    for (std::size_t i = 0; i < y.size(); ++i) sum += static_cast<double>(y[i]) * r[i];
    return sum;
}

void check_close(double analytic, double numeric, const char* what, std::size_t index) {
    INFO(what << "[" << index << "] analytic " << analytic << " numeric " << numeric);
    CHECK(std::abs(analytic - numeric) <= kAbsoluteTolerance + kRelativeTolerance * std::abs(numeric));
}

// Checks dx and every parameter gradient of `layer` at input x (already filled), in `mode`. A layer that draws
// random numbers in forward (dropout) passes before_each_forward to restart its stream, so that every probe sees
// the same draws as the pass that is differentiated.
void check_layer_gradients(Layer& layer, ParameterArena& parameters, Tensor& x, Mode mode = Mode::Train,
                           const std::function<void()>& before_each_forward = [] {}) {
    Rng rng(99);
    Tensor y, dx;
    before_each_forward();
    layer.forward(x, y, mode);
    Tensor r(y.shape());
    fill_normal(r.data(), r.size(), rng);
    if (parameters.size()) parameters.zero_gradients();
    layer.backward(x, y, r, &dx);
    REQUIRE(dx.shape() == x.shape());

    auto numeric_derivative = [&](float& value) {
        const float saved = value;
        Tensor y_probe;
        value = saved + kStep;
        before_each_forward();
        layer.forward(x, y_probe, mode);
        const double plus = weighted_sum(y_probe, r);
        value = saved - kStep;
        before_each_forward();
        layer.forward(x, y_probe, mode);
        const double minus = weighted_sum(y_probe, r);
        value = saved;
        return (plus - minus) / (2.0 * kStep);
    };
    for (int s = 0; s < kSampledIndices; ++s) {
        const auto i = static_cast<std::size_t>(rng.below(x.size()));
        check_close(dx[i], numeric_derivative(x[i]), "dx", i);
    }
    for (std::size_t slot = 0; slot < parameters.slots().size(); ++slot) {
        const TensorView value = parameters.value(slot), gradient = parameters.gradient(slot);
        for (int s = 0; s < kSampledIndices; ++s) {
            const auto i = static_cast<std::size_t>(rng.below(value.size()));
            check_close(gradient[i], numeric_derivative(value[i]), parameters.slots()[slot].name.c_str(), i);
        }
    }
}

// Runs body once per kernel table (optimised and scalar reference), restoring the default afterwards.
template <class Body>
void on_every_kernel_path(Body body) {
    const std::string original = kernels().name;
    for (const KernelTable* table : available_kernel_tables()) {
        CAPTURE(table->name);
        select_kernels(table->name);
        body();
    }
    select_kernels(original);
}

// The arenas a layer under test declares its parameters and buffers in, as a Network would provide them.
struct Arenas {
    ParameterArena parameters{true};
    ParameterArena buffers{false};

    explicit Arenas(Layer* layer = nullptr) {
        if (layer) layer->declare(parameters, buffers, "0.");
        parameters.allocate();
        buffers.allocate();
    }
};

void check_conv_gradients(const Conv2dConfig& config, const Shape& input) {
    Conv2d conv(config);
    Arenas a(&conv);
    Rng rng(1);
    conv.initialize(InitScheme::Torch, rng);
    Tensor x(input);
    fill_normal(x.data(), x.size(), rng);
    check_layer_gradients(conv, a.parameters, x);
}

}  // namespace

TEST_CASE("conv2d gradients: same padding, 13 channels, prime width, batch 3") {
    on_every_kernel_path([] { check_conv_gradients({13, 5, 3, 1, 1, true}, {3, 13, 7, 11}); });
}

TEST_CASE("conv2d gradients through Winograd (16+ channels): same and valid padding, odd sizes, batch 1 and 3") {
    // Small inputs: Winograd forced on (it normally waits for 1024 output tiles per batch).
    const auto winograd = [](Conv2dConfig config) {
        config.winograd_training_min_tiles = 0;
        return config;
    };
    on_every_kernel_path([&] {
        check_conv_gradients(winograd({17, 16, 3, 1, 1, true}), {3, 17, 7, 11});  // forward and input gradient
        check_conv_gradients(winograd({16, 19, 3, 1, 0, false}), {1, 16, 6, 9});  // both, padding 0 (dx pads 2)
        check_conv_gradients(winograd({16, 5, 3, 1, 1, true}), {3, 16, 5, 7});     // forward; dx via GEMM
        check_conv_gradients(winograd({16, 16, 3, 1, 2, true}), {1, 16, 5, 6});    // padding 2: dx pads 0
        check_conv_gradients(winograd({8, 16, 3, 1, 1, true}), {2, 8, 6, 7});      // GEMM forward; dx Winograd
    });
}

TEST_CASE("conv2d gradients: 5x5 stride 2, batch 1, no bias; 3x3 valid stride 2; few weights and more") {
    // Up to 4096 weights the weight gradient goes image by image, above it as one GEMM over the batch.
    on_every_kernel_path([] {
        check_conv_gradients({2, 3, 5, 2, 2, false}, {1, 2, 13, 17});
        check_conv_gradients({3, 4, 3, 2, 0, true}, {3, 3, 13, 17});
        check_conv_gradients({12, 16, 5, 2, 2, false}, {3, 12, 9, 11});
    });
}

TEST_CASE("conv2d gradients when the batch is processed in several chunks, few weights and more") {
    on_every_kernel_path([] {
        for (const int out_channels : {4, 160}) {  // 108 weights, 4320 weights
            CAPTURE(out_channels);
            Conv2dConfig config{3, out_channels, 3, 1, 1, true};
            config.column_budget_floats = 2 * 27 * 7 * 5;  // two images of 3x7x5 per chunk, batch 5 -> chunks 2, 2, 1
            check_conv_gradients(config, {5, 3, 7, 5});
        }
    });
}

TEST_CASE("conv2d forward matches a direct convolution") {
    const Conv2dConfig config{3, 2, 3, 2, 1, true};
    Conv2d conv(config);
    Arenas a(&conv);
    Rng rng(3);
    conv.initialize(InitScheme::Torch, rng);
    Tensor x({2, 3, 6, 5}), y;
    fill_normal(x.data(), x.size(), rng);
    conv.forward(x, y, Mode::Infer);
    REQUIRE(y.shape() == Shape{2, 2, 3, 3});
    const TensorView w = conv.weight(), b = conv.bias();
    for (int n = 0; n < 2; ++n)
        for (int co = 0; co < 2; ++co)
            for (int oy = 0; oy < 3; ++oy)
                for (int ox = 0; ox < 3; ++ox) {
                    double sum = b[static_cast<std::size_t>(co)];
                    for (int ci = 0; ci < 3; ++ci)
                        for (int ky = 0; ky < 3; ++ky)
                            for (int kx = 0; kx < 3; ++kx) {
                                const int iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
                                if (iy < 0 || iy >= 6 || ix < 0 || ix >= 5) continue;
                                sum += w[static_cast<std::size_t>(((co * 3 + ci) * 3 + ky) * 3 + kx)] *
                                       x[static_cast<std::size_t>(((n * 3 + ci) * 6 + iy) * 5 + ix)];
                            }
                    CHECK(y[static_cast<std::size_t>(((n * 2 + co) * 3 + oy) * 3 + ox)] ==
                          doctest::Approx(sum).epsilon(1e-5));
                }
}

TEST_CASE("the packed inference conv (Winograd 2x2 or 4x4 tiles, or GEMM; fused ReLU) equals training's then ReLU") {
    // Winograd (16+ inputs, 3x3 stride 1, padding 1 and 0), and im2col + GEMM (stride 2; too few inputs).
    Conv2dConfig winograd_same{17, 7, 3, 1, 1, true}, winograd_valid{16, 9, 3, 1, 0, false};
    Conv2dConfig gemm_strided{5, 19, 3, 2, 0, false}, gemm_narrow{13, 7, 3, 1, 1, true};
    for (const Conv2dConfig config : {winograd_same, winograd_valid, gemm_strided, gemm_narrow}) {
        CAPTURE(config.in_channels);
        CAPTURE(config.stride);
        CAPTURE(config.padding);
        Conv2d trained(config);
        Arenas arenas(&trained);
        Rng rng(8);
        trained.initialize(InitScheme::Torch, rng);
        const int batch = 3, threads = 2;
        Tensor x({batch, config.in_channels, 11, 17}), expected;  // odd output sizes: partial Winograd tiles
        fill_normal(x.data(), x.size(), rng);
        trained.forward(x, expected, Mode::Infer);
        const Shape out = trained.output_shape(x.shape());
        const ConvGeometry geometry{config.in_channels, 11, 17, config.kernel, config.stride, config.padding, out[2], out[3]};
        const bool winograd = config.in_channels >= kWinogradMinInputChannels && config.stride == 1;
        for (const ConvAlgorithmF32 algorithm :
             {ConvAlgorithmF32::Auto, ConvAlgorithmF32::WinogradF2x2, ConvAlgorithmF32::WinogradF4x4}) {
            CAPTURE(static_cast<int>(algorithm));
            on_every_kernel_path([&] {
                const PackedConv2dF32 packed(kernels(), geometry, config.out_channels, trained.weight().data,
                                             config.bias ? trained.bias().data : nullptr, true, batch, threads,
                                             algorithm);
                CHECK(packed.uses_winograd() == winograd);
                const bool large_tiles =
                    algorithm == ConvAlgorithmF32::WinogradF4x4 ||
                    (algorithm == ConvAlgorithmF32::Auto &&
                     winograd_tile_for(kernels(), config.in_channels, config.out_channels, 11, 17, config.padding,
                                       batch, WinogradWeights::PreparedOnce) == WinogradTile::F4x4);
                CHECK(packed.algorithm() == (!winograd      ? ConvAlgorithmF32::Im2col
                                             : large_tiles ? ConvAlgorithmF32::WinogradF4x4
                                                           : ConvAlgorithmF32::WinogradF2x2));
                // Exactly the workspace it asks for, then a guard band it must not touch.
                const std::size_t workspace_floats = packed.workspace_floats(batch, threads);
                AlignedFloats workspace(workspace_floats + 64, -7.0f);
                std::vector<float> actual(out.elements());
                packed.run(x.data(), batch, actual.data(), workspace.data(), threads);
                CHECK(std::all_of(workspace.begin() + static_cast<std::ptrdiff_t>(workspace_floats), workspace.end(),
                                  [](float v) { return v == -7.0f; }));
                // Winograd sums in another order (and transforms); outputs here are of order 1.
                constexpr double kAbsolute = 2e-5, kRelative = 1e-4;
                int mismatches = 0;
                for (std::size_t i = 0; i < actual.size(); ++i) {
                    const double want = std::max(expected[i], 0.0f);
                    if (!(std::abs(actual[i] - want) <= kAbsolute + kRelative * std::abs(want)) && mismatches++ < 5)
                        FAIL_CHECK("y[" << i << "] = " << actual[i] << ", training path " << want);
                }
                CHECK(mismatches == 0);
            });
        }
    }
}

TEST_CASE("Winograd tiles: 4x4 where they save enough products, fill a vector of columns and stream few weights") {
    const WinogradWeights once = WinogradWeights::PreparedOnce;
    // The reference network's layers (padding 1): 32 -> 64 at 40x60 and 64 -> 512 at 20x30 always; 512 -> 512 at 10x15
    // (12 tiles, 36 MiB of weights) only with a batch of 128 tiles; 512 -> 256 at 5x7 (75 % of the products) never.
    CHECK(winograd_tile_for(kernels(), 32, 64, 40, 60, 1, 1, once) == WinogradTile::F4x4);
    CHECK(winograd_tile_for(kernels(), 64, 512, 20, 30, 1, 1, once) == WinogradTile::F4x4);
    CHECK(winograd_tile_for(kernels(), 512, 512, 10, 15, 1, 1, once) == WinogradTile::F2x2);
    CHECK(winograd_tile_for(kernels(), 512, 512, 10, 15, 1, 10, once) == WinogradTile::F2x2);
    CHECK(winograd_tile_for(kernels(), 512, 512, 10, 15, 1, 11, once) == WinogradTile::F4x4);
    CHECK(winograd_tile_for(kernels(), 512, 256, 5, 7, 1, 32, once) == WinogradTile::F2x2);
    // Few weights: 16 tiles are enough. Valid padding shrinks the output: 18x18 -> 16x16 (16 tiles), 13x18 -> 11x16
    // (12 tiles).
    CHECK(winograd_tile_for(kernels(), 16, 16, 18, 18, 0, 1, once) == WinogradTile::F4x4);
    CHECK(winograd_tile_for(kernels(), 16, 16, 13, 18, 0, 1, once) == WinogradTile::F2x2);
    CHECK(winograd_tile_for(kernels(), 16, 16, 13, 18, 0, 2, once) == WinogradTile::F4x4);
    // Prepared on every call (training), 36 MiB of weights stay with 2x2 tiles at any batch.
    const WinogradWeights per_call = WinogradWeights::PreparedPerCall;
    CHECK(winograd_tile_for(kernels(), 64, 512, 20, 30, 1, 32, per_call) == WinogradTile::F4x4);
    CHECK(winograd_tile_for(kernels(), 512, 512, 10, 15, 1, 32, per_call) == WinogradTile::F2x2);
}

TEST_CASE("Winograd products: the narrow GEMM for batches of at most 160 tiles, prepared once, f32 products only") {
    const WinogradWeights once = WinogradWeights::PreparedOnce;
    const auto narrow = [](const KernelTable& table, int height, int width, WinogradTile tile, int batch,
                           WinogradWeights weights) {
        return winograd_narrow_products(table, WinogradTileGrid(tile, height, width, 1), batch, weights);
    };
    // The reference network at batch 1: 10x15 (40 tiles of 2x2), 5x7 (12), 20x30 (40 of 4x4), 40x60 (150 of 4x4);
    // not at batches of more tiles, nor in training, nor with bf16 products.
    CHECK(narrow(kernels(), 10, 15, WinogradTile::F2x2, 1, once));
    CHECK(narrow(kernels(), 10, 15, WinogradTile::F2x2, 4, once));
    CHECK_FALSE(narrow(kernels(), 10, 15, WinogradTile::F2x2, 5, once));
    CHECK(narrow(kernels(), 5, 7, WinogradTile::F2x2, 13, once));
    CHECK_FALSE(narrow(kernels(), 5, 7, WinogradTile::F2x2, 14, once));
    CHECK(narrow(kernels(), 20, 30, WinogradTile::F4x4, 1, once));
    CHECK(narrow(kernels(), 40, 60, WinogradTile::F4x4, 1, once));
    CHECK_FALSE(narrow(kernels(), 40, 60, WinogradTile::F4x4, 2, once));
    CHECK_FALSE(narrow(kernels(), 10, 15, WinogradTile::F2x2, 1, WinogradWeights::PreparedPerCall));
    if (edgeqc::testing::cpu_runs_bf16_products())
        CHECK_FALSE(narrow(bf16_product_kernels(), 10, 15, WinogradTile::F2x2, 1, once));

    // A convolution the rule gives the narrow GEMM equals training's on every kernel path: deep (256 channels in, 9
    // out: most of a panel of rows empty) at batches of 12 and 36 tiles (the last tile of columns partly filled), and
    // shallow (13 in, 37 out: a panel and a part) at 30 tiles of 2x2 and 45 of 4x4.
    struct Case {
        int in_channels, out_channels, height, width;
    };
    for (const Case shape : {Case{256, 9, 5, 7}, Case{13, 37, 9, 11}}) {
        Conv2dConfig config{shape.in_channels, shape.out_channels, 3, 1, 1, true};
        Conv2d trained(config);
        Arenas arenas(&trained);
        Rng rng(12);
        trained.initialize(InitScheme::Torch, rng);
        const int height = shape.height, width = shape.width;
        for (const int batch : {1, shape.in_channels > 64 ? 3 : 5}) {
            CAPTURE(shape.in_channels);
            CAPTURE(batch);
            const WinogradTile tile = winograd_tile_for(kernels(), shape.in_channels, shape.out_channels, height,
                                                        width, 1, batch, once);
            REQUIRE(narrow(kernels(), height, width, tile, batch, once));
            Tensor x({batch, shape.in_channels, height, width}), expected;
            fill_normal(x.data(), x.size(), rng);
            trained.forward(x, expected, Mode::Infer);
            const ConvGeometry geometry{shape.in_channels, height, width, 3, 1, 1, height, width};
            on_every_kernel_path([&] {
                const PackedConv2dF32 packed(kernels(), geometry, shape.out_channels, trained.weight().data,
                                             trained.bias().data, true, batch, 2);
                AlignedFloats workspace(packed.workspace_floats(batch, 2));
                std::vector<float> actual(expected.size());
                packed.run(x.data(), batch, actual.data(), workspace.data(), 2);
                int mismatches = 0;
                for (std::size_t i = 0; i < actual.size(); ++i) {
                    const double want = std::max(expected[i], 0.0f);
                    if (!(std::abs(actual[i] - want) <= 1e-4 + 1e-4 * std::abs(want)) && mismatches++ < 5)
                        FAIL_CHECK("y[" << i << "] = " << actual[i] << ", training path " << want);
                }
                CHECK(mismatches == 0);
            });
        }
    }
}

TEST_CASE("GEMM convolutions of few positions multiply images together: each image's bits as alone, any batch") {
    // 20 positions: up to 7 images a product (128 columns). Batches that leave whole groups, single images a thread
    // and images for all the threads; run on fewer threads than the workspace was sized for.
    const int in_channels = 13, out_channels = 7, height = 4, width = 5;
    Rng rng(41);
    std::vector<float> weights(static_cast<std::size_t>(out_channels) * in_channels * 9), bias(out_channels);
    fill_normal(weights.data(), weights.size(), rng);
    fill_normal(bias.data(), bias.size(), rng);
    const ConvGeometry geometry{in_channels, height, width, 3, 1, 1, height, width};
    const std::size_t in_image = static_cast<std::size_t>(in_channels) * height * width;
    const std::size_t out_image = static_cast<std::size_t>(out_channels) * height * width;
    const int most = 17;
    std::vector<float> x(most * in_image);
    fill_normal(x.data(), x.size(), rng);
    on_every_kernel_path([&] {
        const PackedConv2dF32 packed(kernels(), geometry, out_channels, weights.data(), bias.data(), true, most, 3,
                                     ConvAlgorithmF32::Im2col);
        std::vector<float> alone(most * out_image);
        AlignedFloats one(packed.workspace_floats(1, 1));
        for (int n = 0; n < most; ++n)
            packed.run(x.data() + n * in_image, 1, alone.data() + n * out_image, one.data(), 1);
        for (const int batch : {2, 9, 17})
            for (const int threads : {1, 2, 3}) {
                CAPTURE(batch);
                CAPTURE(threads);
                const std::size_t workspace_floats = packed.workspace_floats(batch, 3);
                AlignedFloats workspace(workspace_floats + 64, -7.0f);
                std::vector<float> together(batch * out_image, -1.0f);
                packed.run(x.data(), batch, together.data(), workspace.data(), threads);
                CHECK(std::memcmp(together.data(), alone.data(), together.size() * sizeof(float)) == 0);
                CHECK(std::all_of(workspace.begin() + static_cast<std::ptrdiff_t>(workspace_floats), workspace.end(),
                                  [](float v) { return v == -7.0f; }));
            }
    });
}

TEST_CASE("training convolutions take 4x4 Winograd tiles with f32 products and 2x2 tiles with bf16 products, but "
          "a convolution of few weights keeps f32 products") {
    const KernelTable bf16 = with_bf16_products(reference_kernels(), reference_training_kernels());
    // 6 tiles of 4x4 per image: 18 in the batch, 56 % of the 2x2 tiles' products. 40 x 16 x 9 weights are more than
    // few; 17 x 16 x 9 are few.
    for (const int in_channels : {40, 17}) {
        CAPTURE(in_channels);
        Conv2dConfig config{in_channels, 16, 3, 1, 1, true};
        config.winograd_training_min_tiles = 0;
        Conv2d conv(config);
        Arenas arenas(&conv);
        Rng rng(9);
        conv.initialize(InitScheme::Torch, rng);
        TrainingContext context;
        conv.share_context(context);
        Tensor x({3, in_channels, 7, 11}), y, y_bf16;
        fill_normal(x.data(), x.size(), rng);
        REQUIRE(winograd_tile_for(kernels(), in_channels, 16, 7, 11, 1, 3, WinogradWeights::PreparedPerCall) ==
                WinogradTile::F4x4);
        conv.forward(x, y, Mode::Train);
        CHECK(context.winograd_weights.tile() == WinogradTile::F4x4);
        context.table = &bf16;
        conv.forward(x, y_bf16, Mode::Train);
        const bool few_weights = in_channels == 17;
        CHECK(context.winograd_weights.tile() == (few_weights ? WinogradTile::F4x4 : WinogradTile::F2x2));
        CHECK((std::memcmp(y.data(), y_bf16.data(), y.size() * sizeof(float)) == 0) == few_weights);
    }
}

TEST_CASE("batch norm gradients in training mode, 4-D inputs of batch 1 and 3, 2-D inputs") {
    // A 2-D batch of 1 has no variance to normalise by (PyTorch refuses it too), so 2-D starts at batch 5.
    for (const Shape shape : {Shape{1, 13, 5, 7}, Shape{3, 13, 5, 7}, Shape{5, 13}}) {
        BatchNorm bn(13);
        Arenas a(&bn);
        Rng rng(4);
        bn.initialize(InitScheme::He, rng);
        fill_normal(bn.gamma().data, 13, rng);  // non-trivial gamma and beta exercise every term
        fill_normal(bn.beta().data, 13, rng);
        Tensor x(shape);
        fill_normal(x.data(), x.size(), rng, 2.0f);
        check_layer_gradients(bn, a.parameters, x);
    }
}

TEST_CASE("batch norm with a fused ReLU computes what batch norm then ReLU do, bit for bit, NaN included") {
    for (const Mode mode : {Mode::Train, Mode::Infer}) {
        CAPTURE(static_cast<int>(mode));
        BatchNorm fused(13), plain(13);
        fused.fuse_relu();
        Relu relu;
        Arenas fused_arenas(&fused), plain_arenas(&plain);
        Rng rng(6);
        for (BatchNorm* bn : {&fused, &plain}) {
            Rng same(7);
            bn->initialize(InitScheme::He, same);
            fill_normal(bn->gamma().data, 13, same);
            fill_normal(bn->beta().data, 13, same);
            fill_normal(bn->running_mean().data, 13, same);
        }
        // Planes of 1100 values: a whole block of the ordered sums, then a part of one, and lanes left over.
        Tensor x({2, 13, 25, 44}), dy({2, 13, 25, 44});
        fill_normal(x.data(), x.size(), rng, 2.0f);
        fill_normal(dy.data(), dy.size(), rng);
        x[5] = std::numeric_limits<float>::quiet_NaN();  // channel 0 of the first image
        Tensor fused_y, plain_y, relu_y, fused_dx, plain_dx, relu_dx;
        fused.forward(x, fused_y, mode);
        plain.forward(x, plain_y, mode);
        relu.forward(plain_y, relu_y, mode);
        REQUIRE(fused_y.size() == relu_y.size());
        CHECK(std::memcmp(fused_y.data(), relu_y.data(), fused_y.size() * sizeof(float)) == 0);
        if (mode == Mode::Infer) continue;  // backward follows a training forward
        fused.backward(x, fused_y, dy, &fused_dx);
        relu.backward(plain_y, relu_y, dy, &relu_dx);
        plain.backward(x, plain_y, relu_dx, &plain_dx);
        CHECK(std::memcmp(fused_dx.data(), plain_dx.data(), fused_dx.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(fused_arenas.parameters.gradients(), plain_arenas.parameters.gradients(),
                          plain_arenas.parameters.size() * sizeof(float)) == 0);
        CHECK(std::memcmp(fused.running_variance().data, plain.running_variance().data, 13 * sizeof(float)) == 0);
    }
}

TEST_CASE("batch norm with a fused ReLU and 2x2 max pool computes what the three layers do, bit for bit") {
    // Even sizes, odd ones (the last row and column in no window), planes of one window; NaN in one channel.
    for (const Shape shape : {Shape{2, 13, 24, 44}, Shape{3, 5, 7, 11}, Shape{4, 3, 2, 3}}) {
        CAPTURE(shape.str());
        const int channels = shape[1];
        BatchNorm pooling(channels), plain(channels);
        pooling.fuse_relu();
        pooling.fuse_pool();
        plain.fuse_relu();
        MaxPool pool(2, 2);
        Arenas pooling_arenas(&pooling), plain_arenas(&plain);
        for (BatchNorm* bn : {&pooling, &plain}) {
            Rng same(7);
            bn->initialize(InitScheme::He, same);
            fill_normal(bn->gamma().data, channels, same);
            fill_normal(bn->beta().data, channels, same);
            fill_normal(bn->running_mean().data, channels, same);
        }
        Rng rng(6);
        Tensor x(shape), with_nan(shape);
        fill_normal(x.data(), x.size(), rng, 2.0f);
        for (std::size_t i = 0; i < x.size(); i += 3) x[i] = std::round(x[i]);  // ties within windows
        with_nan = x;
        with_nan[5] = std::numeric_limits<float>::quiet_NaN();
        for (const Mode mode : {Mode::Infer, Mode::Train}) {
            for (const Tensor* input : {&with_nan, &x}) {  // x last: backward follows it
                CAPTURE(static_cast<int>(mode));
                Tensor pooled, y, expected;
                pooling.forward_pooled(*input, pooled, mode);
                plain.forward(*input, y, mode);
                pool.forward(y, expected, mode);
                REQUIRE(pooled.shape() == expected.shape());
                CHECK(std::memcmp(pooled.data(), expected.data(), pooled.size() * sizeof(float)) == 0);
                CHECK(std::memcmp(pooling.running_mean().data, plain.running_mean().data,
                                  static_cast<std::size_t>(channels) * sizeof(float)) == 0);
                CHECK(std::memcmp(pooling.running_variance().data, plain.running_variance().data,
                                  static_cast<std::size_t>(channels) * sizeof(float)) == 0);
                if (mode == Mode::Infer || input != &x) continue;
                Tensor dpooled(pooled.shape()), dy, dx, expected_dx;
                fill_normal(dpooled.data(), dpooled.size(), rng);
                pooling_arenas.parameters.zero_gradients();
                plain_arenas.parameters.zero_gradients();
                pooling.backward_pooled(x, pooled, dpooled, &dx);
                pool.backward(y, expected, dpooled, &dy);
                plain.backward(x, y, dy, &expected_dx);
                REQUIRE(dx.shape() == x.shape());
                CHECK(std::memcmp(dx.data(), expected_dx.data(), dx.size() * sizeof(float)) == 0);
                CHECK(std::memcmp(pooling_arenas.parameters.gradients(), plain_arenas.parameters.gradients(),
                                  plain_arenas.parameters.size() * sizeof(float)) == 0);
                // Without dx (a first trainable layer): the same gamma and beta gradients.
                pooling_arenas.parameters.zero_gradients();
                pooling.backward_pooled(x, pooled, dpooled, nullptr);
                CHECK(std::memcmp(pooling_arenas.parameters.gradients(), plain_arenas.parameters.gradients(),
                                  plain_arenas.parameters.size() * sizeof(float)) == 0);
            }
        }
    }
}

TEST_CASE("batch norm training statistics and running estimates follow PyTorch's definitions") {
    BatchNorm bn(1);
    Arenas a(&bn);
    Rng rng(5);
    bn.initialize(InitScheme::He, rng);
    Tensor x({4, 1}), y;
    const float values[] = {1, 2, 3, 6};  // mean 3, biased variance 3.5, unbiased 14/3
    std::copy(values, values + 4, x.data());
    bn.forward(x, y, Mode::Train);
    CHECK(y[0] == doctest::Approx(-2.0 / std::sqrt(3.5 + 1e-5)));
    CHECK(bn.running_mean()[0] == doctest::Approx(0.3));
    CHECK(bn.running_variance()[0] == doctest::Approx(0.9 + 0.1 * 14.0 / 3.0));
    bn.forward(x, y, Mode::Infer);  // uses the running estimates
    CHECK(y[0] == doctest::Approx((1.0 - 0.3) / std::sqrt(0.9 + 0.1 * 14.0 / 3.0 + 1e-5)));
}

TEST_CASE("batch norm with momentum 1 / k for the k-th batch averages the statistics of a pass") {
    BatchNorm bn(1);
    Arenas a(&bn);
    Rng rng(5);
    bn.initialize(InitScheme::He, rng);
    Tensor first({4, 1}), second({2, 1}), y;
    const float first_values[] = {1, 2, 3, 6};  // mean 3, unbiased variance 14/3
    const float second_values[] = {0, 4};       // mean 2, unbiased variance 8
    std::copy(first_values, first_values + 4, first.data());
    std::copy(second_values, second_values + 2, second.data());
    bn.set_momentum(1.0f);  // the first batch replaces whatever was there
    bn.forward(first, y, Mode::Train);
    bn.set_momentum(0.5f);
    bn.forward(second, y, Mode::Train);
    CHECK(bn.running_mean()[0] == doctest::Approx(2.5));
    CHECK(bn.running_variance()[0] == doctest::Approx((14.0 / 3.0 + 8.0) / 2.0));
}

TEST_CASE("relu gradients away from the kink, and zero gradient at exactly 0") {
    Relu relu;
    Arenas a;
    Rng rng(6);
    for (const Shape shape : {Shape{1, 13, 5}, Shape{3, 13, 5}}) {
        Tensor x(shape);
        fill_spaced(x, rng);
        check_layer_gradients(relu, a.parameters, x);
    }
    Tensor zero({1, 1}), y, dy({1, 1}), dx;
    zero[0] = 0.0f;
    dy[0] = 1.0f;
    relu.forward(zero, y, Mode::Train);
    relu.backward(zero, y, dy, &dx);
    CHECK(dx[0] == 0.0f);
}

TEST_CASE("max pool gradients: 2x2 stride 2 and overlapping 3x3 stride 2 on prime sizes, batch 1 and 3") {
    for (const auto [kernel, stride] : {std::pair{2, 2}, std::pair{3, 2}}) {
        for (int batch : {1, 3}) {
            MaxPool pool(kernel, stride);
            Arenas a;
            Rng rng(7);
            Tensor x({batch, 13, 7, 11});
            fill_spaced(x, rng);
            check_layer_gradients(pool, a.parameters, x);
        }
    }
}

TEST_CASE("max pool picks the first maximum on ties and floors odd sizes") {
    MaxPool pool(2, 2);
    Tensor x({1, 1, 3, 3}), y, dy({1, 1, 1, 1}), dx;
    x.fill(1.0f);
    pool.forward(x, y, Mode::Train);
    REQUIRE(y.shape() == Shape{1, 1, 1, 1});
    dy[0] = 1.0f;
    pool.backward(x, y, dy, &dx);
    CHECK(dx[0] == 1.0f);
    CHECK(std::accumulate(dx.data(), dx.data() + dx.size(), 0.0f) == 1.0f);
}

TEST_CASE("global average pool and flatten gradients, batch 1 and 3") {
    Arenas a;
    Rng rng(8);
    for (int batch : {1, 3}) {
        Tensor x({batch, 13, 5, 7});
        fill_normal(x.data(), x.size(), rng);
        GlobalAvgPool gap;
        check_layer_gradients(gap, a.parameters, x);
        Flatten flatten;
        check_layer_gradients(flatten, a.parameters, x);
    }
}

TEST_CASE("dense gradients, batch 1 and 3, 13 inputs") {
    on_every_kernel_path([] {
        for (int batch : {1, 3}) {
            Dense dense(13, 7);
            Arenas a(&dense);
            Rng rng(9);
            dense.initialize(InitScheme::Torch, rng);
            Tensor x({batch, 13});
            fill_normal(x.data(), x.size(), rng);
            check_layer_gradients(dense, a.parameters, x);
        }
    });
}

TEST_CASE("dropout: training mask with the right rate and scale, identity at inference") {
    Dropout dropout(0.25f);
    Rng rng(10);
    dropout.initialize(InitScheme::He, rng);
    Tensor x({4, 1000}), y, dy({4, 1000}), dx;
    x.fill(2.0f);
    dy.fill(1.0f);
    dropout.forward(x, y, Mode::Train);
    dropout.backward(x, y, dy, &dx);
    std::size_t zeros = 0;
    for (std::size_t i = 0; i < y.size(); ++i) {
        if (y[i] == 0.0f) ++zeros;
        else CHECK(y[i] == doctest::Approx(2.0f / 0.75f));
        CHECK(dx[i] == doctest::Approx(y[i] / 2.0f));  // the same mask scales the gradient
    }
    CHECK(zeros > 900);
    CHECK(zeros < 1100);
    dropout.forward(x, y, Mode::Infer);
    CHECK(std::all_of(y.data(), y.data() + y.size(), [](float v) { return v == 2.0f; }));
}

TEST_CASE("dropout gradients by finite differences under a fixed mask, batch 1 and 3") {
    for (int batch : {1, 3}) {
        Dropout dropout(0.3f);
        Arenas a;
        Rng rng(12);
        Tensor x({batch, 13, 7});
        fill_normal(x.data(), x.size(), rng);
        check_layer_gradients(dropout, a.parameters, x, Mode::Train, [&] { dropout.reseed(42); });
    }
}

TEST_CASE("softmax cross-entropy: gradient by finite differences, batch 1 and 3, with and without class weights") {
    Rng rng(11);
    const std::vector<float> class_weights{1.0f, 2.0f, 0.5f, 1.0f, 3.0f};
    for (const std::vector<int>& labels : {std::vector<int>{3}, std::vector<int>{4, 0, 2}}) {
        for (const std::vector<float>& weights : {std::vector<float>{}, class_weights}) {
            Tensor logits({static_cast<int>(labels.size()), 5}), dlogits;
            fill_normal(logits.data(), logits.size(), rng, 3.0f);
            softmax_cross_entropy(logits, labels, weights, &dlogits);
            for (std::size_t i = 0; i < logits.size(); ++i) {
                const float saved = logits[i];
                logits[i] = saved + 1e-2f;
                const double plus = softmax_cross_entropy(logits, labels, weights, nullptr);
                logits[i] = saved - 1e-2f;
                const double minus = softmax_cross_entropy(logits, labels, weights, nullptr);
                logits[i] = saved;
                check_close(dlogits[i], (plus - minus) / 2e-2, "dlogits", i);
            }
        }
    }
}

TEST_CASE("softmax cross-entropy stays finite for huge logits") {
    Tensor logits({1, 3}), probabilities;
    logits[0] = 1e4f;
    logits[1] = -1e4f;
    logits[2] = 0.0f;
    CHECK(softmax_cross_entropy(logits, {0}, {}, nullptr) == doctest::Approx(0.0));
    CHECK(softmax_cross_entropy(logits, {1}, {}, nullptr) == doctest::Approx(2e4));
    softmax(logits, probabilities);
    CHECK(probabilities[0] == doctest::Approx(1.0));
}
