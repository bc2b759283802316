// Structured filter pruning: the channel surgery against the unpruned network with the removed channels' activations
// masked to zero, and the refusals of the pass.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/inference_plan.hpp"
#include "engine/model_passes.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

using KeptFilters = std::map<std::size_t, std::vector<int>>;

Model model_of(const std::string& spec, std::uint64_t seed) {
    ModelDescription d;
    d.architecture = spec;
    d.class_names = {"a", "b", "c"};
    d.input.channels = 3;
    d.input.height = 12;
    d.input.width = 10;
    Model model = random_model(d, seed);
    // Batch norm centred near zero, so that most channels pass the ReLU and silencing one changes the output.
    Rng rng(seed + 7);
    for (const TensorSlot& slot : model.description.resolve().tensors) {
        if (slot.role != TensorRole::RunningMean && slot.role != TensorRole::Gamma && slot.role != TensorRole::Beta)
            continue;
        TypedTensor& tensor = model.tensor(slot.name);
        for (std::size_t i = 0; i < tensor.elements(); ++i)
            tensor.data<float>()[i] = slot.role == TensorRole::Gamma ? 0.5f + rng.uniform() : 0.1f * rng.normal();
    }
    return model;
}

// The unpruned model with every filter not kept silenced: its batch-norm gamma and beta (or, without batch norm, its
// weights and bias) set to zero, so that its activation after the ReLU is exactly zero.
Model masked(Model model, const KeptFilters& kept) {
    const ResolvedArchitecture architecture = model.description.resolve();
    for (const auto& [layer, filters] : kept) {
        const int count = architecture.layers[layer].units;
        const bool batch_norm = architecture.layers[layer + 1].kind == LayerKind::BatchNorm;
        std::vector<std::string> silenced;
        if (batch_norm) {
            silenced = {architecture.tensor_name(layer + 1, TensorRole::Gamma),
                        architecture.tensor_name(layer + 1, TensorRole::Beta)};
        } else {
            silenced = {architecture.tensor_name(layer, TensorRole::Weight),
                        architecture.tensor_name(layer, TensorRole::Bias)};
        }
        for (const std::string& name : silenced) {
            TypedTensor& tensor = model.tensor(name);
            const std::size_t per_filter = tensor.elements() / static_cast<std::size_t>(count);
            for (int f = 0; f < count; ++f)
                if (std::find(filters.begin(), filters.end(), f) == filters.end())
                    std::fill_n(tensor.data<float>() + static_cast<std::size_t>(f) * per_filter, per_filter, 0.0f);
        }
    }
    return model;
}

std::vector<float> probabilities(const Model& model, const std::vector<float>& images, int batch) {
    InferencePlan plan(model, batch);
    const float* p = plan.probabilities(images.data(), batch);
    return std::vector<float>(p, p + static_cast<std::size_t>(batch) * 3);
}

}  // namespace

TEST_CASE("pruned filters: a smaller dense model computing what the original computes with those channels silenced") {
    struct Case {
        std::string spec, pruned_spec;
        KeptFilters kept;
    };
    const Case cases[] = {
        // batch norm, global average pool, a hidden dense layer
        {"c4bn-p-c6bn-gap-fc5-drop0.25-fc", "c2bn-p-c3bn-gap-fc5-drop0.25-fc", {{0, {1, 3}}, {4, {0, 2, 5}}}},
        // convs with biases, a flatten feeding the classifier: every feature of a removed channel goes
        {"c4-p-c6-p-fc", "c3-p-c1-p-fc", {{0, {0, 1, 2}}, {3, {4}}}},
        // only the last conv pruned, then two dense layers; a strided conv with valid padding before it
        {"c5k3s2v-c7bn-p-fc16-fc", "c5s2v-c4bn-p-fc16-fc", {{2, {0, 3, 4, 6}}}},
    };
    const int batch = 3;
    Rng rng(4);
    std::vector<float> images(static_cast<std::size_t>(batch) * 3 * 12 * 10);
    for (float& v : images) v = rng.normal();
    for (const Case& c : cases) {
        CAPTURE(c.spec);
        const Model model = model_of(c.spec, 11);
        const Model pruned = prune_filters(model, c.kept);
        CHECK(pruned.description.architecture == c.pruned_spec);
        validate_model(pruned);
        const std::vector<float> expected = probabilities(masked(model, c.kept), images, batch);
        const std::vector<float> actual = probabilities(pruned, images, batch);
        // Identical up to the order of the sums (the silenced channels add exact zeros in the original).
        for (std::size_t i = 0; i < expected.size(); ++i) CHECK(actual[i] == doctest::Approx(expected[i]).epsilon(1e-5));
        // And silencing matters: the unmasked original computes something else.
        const std::vector<float> original = probabilities(model, images, batch);
        double difference = 0.0;
        for (std::size_t i = 0; i < original.size(); ++i) difference += std::abs(original[i] - actual[i]);
        CHECK(difference > 1e-4);
    }
    // Nothing listed: the same model.
    const Model model = model_of("c4bn-p-fc", 2);
    const Model same = prune_filters(model, {});
    CHECK(same.description.architecture == model.description.architecture);
    CHECK(probabilities(same, images, batch) == probabilities(model, images, batch));
}

TEST_CASE("pruning refuses a quantized model, non-conv layers and bad filter lists") {
    const Model model = model_of("c4bn-p-c6-gap-fc", 5);
    const auto message = [&](const Model& m, const KeptFilters& kept) {
        try {
            prune_filters(m, kept);
        } catch (const Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(message(model, {{1, {0}}}).find("only convolutions lose filters") != std::string::npos);
    CHECK(message(model, {{40, {0}}}).find("only convolutions lose filters") != std::string::npos);
    CHECK(message(model, {{0, {}}}).find("at least one filter must stay") != std::string::npos);
    CHECK(message(model, {{0, {2, 1}}}).find("strictly ascending") != std::string::npos);
    CHECK(message(model, {{0, {1, 1}}}).find("strictly ascending") != std::string::npos);
    CHECK(message(model, {{0, {4}}}).find("filter 4 does not exist (the layer has 4)") != std::string::npos);
    CHECK(message(model, {{0, {-1}}}).find("does not exist") != std::string::npos);
    Model quantized = model;
    quantized.tensors.front().tensor = TypedTensor(DataType::S8, quantized.tensors.front().tensor.shape());
    CHECK(message(quantized, {{0, {0}}}).find("prune before quantizing") != std::string::npos);
}
