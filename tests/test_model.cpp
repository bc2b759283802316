// The model as data: the spec writer against the parser, the resolution of a spec (shapes and tensor slots)
// against the trainable network, typed tensors through the model file, model validation, and batch-norm folding
// as a model-to-model pass.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include "engine/byte_io.hpp"
#include "engine/error.hpp"
#include "engine/inference_plan.hpp"
#include "engine/model_file.hpp"
#include "engine/model_passes.hpp"
#include "layers/network.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

constexpr const char* kSpecs[] = {"c4bn-p-c6-gap-fc5-drop0.25-fc", "c8k5s2vbn-p3s2-c4-gap-fc16-drop0.5-fc",
                                  kPaperArchitecture, kDefaultArchitecture, "c3k1-ps1-fc", "c2k7v-p4s3-drop0.1-fc7-fc",
                                  "fc"};

ModelDescription description_of(const std::string& spec, int channels = 1, int height = 12, int width = 10) {
    ModelDescription d;
    d.architecture = spec;
    d.class_names = {"a", "b", "c"};
    d.input.channels = channels;
    d.input.height = height;
    d.input.width = width;
    return d;
}

Model random_model(const std::string& spec, std::uint64_t seed) { return testing::random_model(description_of(spec), seed); }

// A quantized copy of a float model's first conv: s8 weights and s32 bias with one scale per output channel.
Model with_quantized_first_conv(Model model) {
    for (NamedTensor& t : model.tensors) {
        if (t.name != "0.weight" && t.name != "0.bias") continue;
        const bool weight = t.name == "0.weight";
        TypedTensor q(weight ? DataType::S8 : DataType::S32, t.tensor.shape());
        for (std::size_t i = 0; i < q.elements(); ++i) {
            if (weight) q.data<std::int8_t>()[i] = static_cast<std::int8_t>(static_cast<int>(i % 255) - 127);
            else q.data<std::int32_t>()[i] = static_cast<std::int32_t>(i) * 100000 - 7;
        }
        // The bias's scale is the weight's times the input's (0.5).
        for (int c = 0; c < q.shape()[0]; ++c) q.scales.push_back(0.01f * static_cast<float>(c + 1) * (weight ? 1.0f : 0.5f));
        t.tensor = std::move(q);
    }
    model.activations = {{0, 0.5f, 3}};
    return model;
}

std::string validation_error(const Model& model) {
    try {
        validate_model(model);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("spec writer: writing a parsed spec gives the spec back, and it parses to the same layers") {
    for (const char* spec : kSpecs) {
        CAPTURE(spec);
        const std::vector<LayerSpec> layers = parse_architecture(spec);
        CHECK(write_architecture(layers) == spec);
        CHECK(parse_architecture(write_architecture(layers)) == layers);
    }
    // Non-canonical spellings come back canonical and mean the same.
    CHECK(write_architecture(parse_architecture("c8k3s1-p2s2-fc")) == "c8-p-fc");
    // Resolved layers (flatten inserted, class count filled in) write back to the spec they came from.
    const ResolvedArchitecture resolved = resolve_architecture("c4-p-fc9-fc", Shape{1, 8, 8}, 3);
    CHECK(resolved.layers[3].kind == LayerKind::Flatten);
    CHECK(write_architecture(resolved.layers) == "c4-p-fc9-fc");
}

TEST_CASE("specs longer than 1024 layers are refused before anything is built") {
    std::string spec;
    for (int i = 0; i < 1024; ++i) spec += "c1-";
    CHECK_THROWS_WITH_AS(parse_architecture(spec + "fc"), doctest::Contains("at most 1024"), Error);
    CHECK(parse_architecture(spec.substr(3) + "fc").size() == 2 * 1023 + 1);  // conv + ReLU each, then fc
}

TEST_CASE("spec writer: layer lists the grammar cannot express are refused") {
    std::vector<LayerSpec> conv_without_relu = parse_architecture("c4-fc");
    conv_without_relu.erase(conv_without_relu.begin() + 1);
    CHECK_THROWS_WITH_AS(write_architecture(conv_without_relu), doctest::Contains("ReLU"), Error);
    std::vector<LayerSpec> odd_padding = parse_architecture("c4k5-fc");
    odd_padding[0].padding = 1;
    CHECK_THROWS_WITH_AS(write_architecture(odd_padding), doctest::Contains("padding"), Error);
    std::vector<LayerSpec> biased_bn = parse_architecture("c4bn-fc");
    biased_bn[0].bias = true;
    CHECK_THROWS_AS(write_architecture(biased_bn), Error);
    CHECK_THROWS_AS(write_architecture({}), Error);
    CHECK_THROWS_AS(write_architecture({{LayerKind::Relu}, {LayerKind::Dense, 3}}), Error);
}

TEST_CASE("resolution names every tensor of the trainable network, in its arena order, with its shapes") {
    for (const char* spec : kSpecs) {
        CAPTURE(spec);
        const Network network(spec, Shape{3, 40, 36}, 4);
        const ResolvedArchitecture& resolved = network.architecture();
        std::vector<const ParameterSlot*> slots;
        for (const ParameterArena* arena : {&network.parameters(), &network.buffers()})
            for (const ParameterSlot& slot : arena->slots()) slots.push_back(&slot);
        REQUIRE(slots.size() == resolved.tensors.size());
        for (std::size_t i = 0; i < slots.size(); ++i) {
            CHECK(slots[i]->name == resolved.tensors[i].name);
            CHECK(slots[i]->shape == resolved.tensors[i].shape);
            CHECK(is_trainable(resolved.tensors[i].role) == (i < network.parameters().slots().size()));
        }
        // The network's layers produce the shapes the resolution computed.
        Tensor x({1, 3, 40, 36});
        Network probe(spec, Shape{3, 40, 36}, 4, false);
        probe.initialize(InitScheme::He, 1);
        CHECK(probe.forward(x, Mode::Infer).shape() == Shape{1, 4});
        CHECK(resolved.outputs.back() == Shape{4});
    }
    CHECK_THROWS_WITH_AS(resolve_architecture("c4-p-p-p-p-fc", Shape{1, 8, 8}, 2), doctest::Contains("smaller than"), Error);
    CHECK_THROWS_AS(resolve_architecture("c4-fc", Shape{1, 8, 8}, 0), Error);
}

TEST_CASE("typed tensors: element types, sizes and typed access") {
    TypedTensor s8(DataType::S8, Shape{3, 5});
    CHECK(s8.bytes() == 15);
    CHECK(TypedTensor(DataType::S32, Shape{3, 5}).bytes() == 60);
    CHECK(TypedTensor(DataType::U8, Shape{7}).bytes() == 7);
    CHECK(TypedTensor(DataType::F32, Shape{2, 2}).bytes() == 16);
    CHECK(reinterpret_cast<std::uintptr_t>(s8.raw()) % kTensorAlignment == 0);
    s8.data<std::int8_t>()[14] = -127;
    CHECK(s8.raw()[14] == static_cast<unsigned char>(-127));
    CHECK_THROWS_AS(s8.data<float>(), std::logic_error);
    CHECK(std::string(data_type_name(DataType::S32)) == "s32");
}

TEST_CASE("a model with quantized tensors survives the model file bit for bit, as format v4") {
    TempFolder folder;
    const Model model = with_quantized_first_conv(random_model("c4-p-c6-gap-fc5-drop0.25-fc", 3));
    validate_model(model);
    save_model(folder.file("q.eqc"), model);
    const std::vector<unsigned char> bytes = read_bytes(folder.file("q.eqc"));
    std::uint32_t version = 0;
    std::memcpy(&version, bytes.data() + 8, 4);
    CHECK(version == 4);
    const LoadedModel loaded = load_model(folder.file("q.eqc"));
    CHECK(loaded.activations == model.activations);
    REQUIRE(loaded.tensors.size() == model.tensors.size());
    for (std::size_t i = 0; i < model.tensors.size(); ++i) {
        CAPTURE(model.tensors[i].name);
        const TypedTensor &a = model.tensors[i].tensor, &b = loaded.tensors[i].tensor;
        CHECK(loaded.tensors[i].name == model.tensors[i].name);
        CHECK(a.type() == b.type());
        CHECK(a.shape() == b.shape());
        CHECK(a.scales == b.scales);
        CHECK(std::memcmp(a.raw(), b.raw(), a.bytes()) == 0);
    }
    // Typed tensors in a file that claims an older format are damage, not data.
    std::vector<unsigned char> claimed_v2 = bytes;
    const std::uint32_t two = 2;
    std::memcpy(claimed_v2.data() + 8, &two, 4);
    const std::uint32_t crc = crc32(claimed_v2.data(), claimed_v2.size() - 4);
    std::memcpy(claimed_v2.data() + claimed_v2.size() - 4, &crc, 4);
    write_bytes(folder.file("claimed_v2.eqc"), claimed_v2);
    CHECK_THROWS_WITH_AS(load_model(folder.file("claimed_v2.eqc")), doctest::Contains("only format v3"), Error);
    // A float model keeps format v2, so the previous edgeqc still reads what this one writes.
    save_model(folder.file("f.eqc"), random_model("c4-p-c6-gap-fc5-drop0.25-fc", 3));
    std::memcpy(&version, read_bytes(folder.file("f.eqc")).data() + 8, 4);
    CHECK(version == 2);
    // A trainable network is float: a quantized model cannot become one.
    CHECK_THROWS_AS(Network::from_model(loaded), Error);
}

TEST_CASE("validate_model refuses wrong types, missing scales, wrong shapes and missing tensors") {
    const Model good = with_quantized_first_conv(random_model("c4-p-c6-gap-fc5-drop0.25-fc", 4));
    CHECK(validation_error(good).empty());

    Model no_scales = good;
    no_scales.tensor("0.weight").scales.clear();
    CHECK(validation_error(no_scales).find("scale") != std::string::npos);

    Model float_with_scales = good;
    float_with_scales.tensor("3.weight").scales = {1.0f};
    CHECK(validation_error(float_with_scales).find("no scales") != std::string::npos);

    Model u8_weight = good;
    u8_weight.tensor("3.weight") = TypedTensor(DataType::U8, u8_weight.tensor("3.weight").shape());
    CHECK(validation_error(u8_weight).find("u8") != std::string::npos);

    Model s8_bias = good;
    TypedTensor bias(DataType::S8, s8_bias.tensor("3.bias").shape());
    bias.scales.assign(6, 1.0f);
    s8_bias.tensor("3.bias") = bias;
    CHECK(validation_error(s8_bias).find("role") != std::string::npos);

    Model wrong_shape = good;
    wrong_shape.tensor("3.bias") = TypedTensor(DataType::F32, Shape{5});
    CHECK(validation_error(wrong_shape).find("shape") != std::string::npos);

    Model missing = good;
    missing.tensors.pop_back();
    CHECK(!validation_error(missing).empty());
}

TEST_CASE("folding batch norm is a model-to-model pass: no batch norm left, same outputs, no-op without it") {
    const Model model = random_model("c4bn-p-c6bn-gap-fc5-drop0.25-fc", 6);
    const Model folded = fold_batch_norm(model);
    CHECK(folded.description.architecture == "c4-p-c6-gap-fc5-drop0.25-fc");
    CHECK(folded.description.class_names == model.description.class_names);
    CHECK(folded.description.input == model.description.input);
    validate_model(folded);
    CHECK(folded.tensors.size() == 8);  // a weight and a bias for each of two convs and two dense layers

    Tensor x({2, 1, 12, 10});
    Rng rng(9);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.normal();
    const auto original = Network::from_model(model);
    const auto rewritten = Network::from_model(folded);
    const Tensor expected = original->forward(x, Mode::Infer);
    const Tensor& actual = rewritten->forward(x, Mode::Infer);
    for (std::size_t i = 0; i < expected.size(); ++i) CHECK(actual[i] == doctest::Approx(expected[i]).epsilon(1e-4));

    const Model plain = random_model("c4-p-fc", 7);
    const Model unchanged = fold_batch_norm(plain);
    CHECK(unchanged.description.architecture == plain.description.architecture);
    for (std::size_t i = 0; i < plain.tensors.size(); ++i)
        CHECK(std::memcmp(unchanged.tensors[i].tensor.raw(), plain.tensors[i].tensor.raw(), plain.tensors[i].tensor.bytes()) == 0);
    CHECK_THROWS_AS(fold_batch_norm(with_quantized_first_conv(random_model("c4bn-p-c6-gap-fc5-drop0.25-fc", 3))), Error);
}

TEST_CASE("a folded model saved to a file loads and predicts exactly as the model it was folded from") {
    TempFolder folder;
    const Model model = random_model("c4bn-p-c16bn-c17-gap-fc5-drop0.25-fc", 8);
    save_model(folder.file("folded.eqc"), fold_batch_norm(model));
    const LoadedModel loaded = load_model(folder.file("folded.eqc"));
    CHECK(loaded.description.architecture == "c4-p-c16-c17-gap-fc5-drop0.25-fc");
    Tensor x({2, 1, 12, 10});
    Rng rng(3);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.normal();
    InferencePlan original(model, 2), reloaded(loaded, 2);
    const float* expected = original.run(x.data(), 2);
    const std::vector<float> first(expected, expected + 6);
    const float* actual = reloaded.run(x.data(), 2);
    CHECK(std::equal(first.begin(), first.end(), actual));
}

TEST_CASE("a network pools inside its batch norms with the bits of batch norm, ReLU and max pool run apart") {
    // A dropout of 0 between ReLU and pool (an exact copy both ways) keeps the pool a layer of its own; the same
    // parameters in both networks. Also with the first trainable layer at the ReLU and past the pool.
    Rng rng(4);
    Tensor x({3, 1, 12, 18});
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.normal();
    struct Freeze {
        std::size_t pooled, apart;  // leading layers frozen: in "c8bn-p-..." and in "c8bn-drop0-p-..."
    };
    for (const Freeze freeze : {Freeze{0, 0}, Freeze{2, 2}, Freeze{4, 5}}) {
        CAPTURE(freeze.pooled);
        Network pooled("c8bn-p-c8bn-p-fc", Shape{1, 12, 18}, 3);
        Network apart("c8bn-drop0-p-c8bn-drop0-p-fc", Shape{1, 12, 18}, 3);
        pooled.initialize(InitScheme::He, 5);
        apart.initialize(InitScheme::He, 5);
        REQUIRE(pooled.parameters().size() == apart.parameters().size());
        std::copy(pooled.parameters().values(), pooled.parameters().values() + pooled.parameters().size(),
                  apart.parameters().values());
        pooled.freeze_leading_layers(freeze.pooled);
        apart.freeze_leading_layers(freeze.apart);
        const Tensor& logits = pooled.forward(x, Mode::Train);
        const Tensor& logits_apart = apart.forward(x, Mode::Train);
        REQUIRE(logits.size() == logits_apart.size());
        CHECK(std::memcmp(logits.data(), logits_apart.data(), logits.size() * sizeof(float)) == 0);
        Tensor dlogits(logits.shape());
        for (std::size_t i = 0; i < dlogits.size(); ++i) dlogits[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
        for (Network* network : {&pooled, &apart}) {
            network->parameters().zero_gradients();
            network->backward(dlogits);
        }
        CHECK(std::memcmp(pooled.parameters().gradients(), apart.parameters().gradients(),
                          pooled.parameters().size() * sizeof(float)) == 0);
        const float* gradients = pooled.parameters().gradients();
        CHECK(std::any_of(gradients, gradients + pooled.parameters().size(), [](float g) { return g != 0.0f; }));
    }
}

TEST_CASE("a ReLU fused into its batch norm: freezing up to it or past it gives the same gradients, bit for bit") {
    // Layers: 0 conv, 1 batch norm, 2 ReLU and 3 pool (both run inside 1), 4 conv, ... Freezing 2 layers leaves the
    // fused ReLU as the first trainable layer, with its batch norm frozen; freezing 3 freezes the pool after it too.
    // Neither has parameters, so the trainable layers' gradients must not differ, and the frozen ones must have none.
    Rng rng(3);
    Tensor x({3, 1, 12, 16});
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.normal();
    std::vector<float> gradients[2];
    std::size_t first_trainable[2] = {};
    for (int run = 0; run < 2; ++run) {
        Network network("c8bn-p-c8bn-p-fc", Shape{1, 12, 16}, 3);
        network.initialize(InitScheme::He, 5);
        network.freeze_leading_layers(static_cast<std::size_t>(2 + run));
        const Tensor& logits = network.forward(x, Mode::Train);
        Tensor dlogits(logits.shape());
        for (std::size_t i = 0; i < dlogits.size(); ++i) dlogits[i] = 0.1f * static_cast<float>(i % 7) - 0.3f;
        network.parameters().zero_gradients();
        network.backward(dlogits);
        first_trainable[run] = network.first_trainable_parameter();
        const float* all = network.parameters().gradients();
        gradients[run].assign(all, all + network.parameters().size());
    }
    CHECK(first_trainable[0] == first_trainable[1]);
    CHECK(gradients[0] == gradients[1]);
    const auto trainable = gradients[0].begin() + static_cast<std::ptrdiff_t>(first_trainable[0]);
    CHECK(std::all_of(gradients[0].begin(), trainable, [](float g) { return g == 0.0f; }));
    CHECK(std::any_of(trainable, gradients[0].end(), [](float g) { return g != 0.0f; }));
}
