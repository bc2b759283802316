// Structured filter pruning: the channel surgery against the unpruned network with the removed channels' activations
// masked to zero, the refusals of the pass, the choice of filters, and `edgeqc prune` end to end on generated data.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "engine/error.hpp"
#include "engine/inference_plan.hpp"
#include "engine/model_file.hpp"
#include "data/loader.hpp"
#include "engine/model_passes.hpp"
#include "layers/softmax_cross_entropy.hpp"
#include "optim/pruning.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

using KeptFilters = std::map<std::size_t, std::vector<int>>;

// A model trained for a few epochs on a tiny synthetic set, and the set.
struct Trained {
    TempFolder folder;
    std::string data = folder.file("train"), model = folder.file("m.eqc");
    Trained(const std::string& architecture, int epochs) {
        REQUIRE(run_edgeqc("synth " + shell_quoted(data) + " --per-class 8 --size 16x20 --seed 3").exit_code == 0);
        REQUIRE(run_edgeqc("train " + shell_quoted(data) + " --out " + shell_quoted(model) + " --arch " + architecture +
                           " --size 16x20 --epochs " + std::to_string(epochs) + " --batch 8 --threads 2")
                    .exit_code == 0);
    }
};

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

// `edgeqc prune` of the trained model on its data into FOLDER/p.eqc, with `options`.
std::string prune_command(const Trained& t, const std::string& options) {
    return "prune " + shell_quoted(t.model) + " " + shell_quoted(t.data) + " --out " + shell_quoted(t.folder.file("p.eqc")) +
           " " + options;
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

TEST_CASE("choosing filters: lowest scores first across layers, targets met, at least one filter per layer") {
    const Model model = model_of("c8bn-p-c6bn-p-c4bn-gap-fc", 3);
    const ResolvedArchitecture architecture = model.description.resolve();
    const auto scores = filter_scores(model, PruneCriterion::L1);
    REQUIRE(scores.size() == 3);
    const auto count = [](const std::map<std::size_t, std::vector<int>>& kept) {
        std::size_t total = 0;
        for (const auto& [layer, filters] : kept) total += filters.size();
        return total;
    };
    // Half of 18 filters go, half way there at progress 0.5; the worst-scored filter of the first layer goes first.
    PruneTarget ratio;
    ratio.value = 0.5;
    CHECK(count(choose_filters(model, model, scores, ratio, 1.0)) == 9);
    CHECK(count(choose_filters(model, model, scores, ratio, 0.5)) == 14);  // ceil(18 x 0.75)
    const std::vector<double>& first = scores.at(0);
    const int worst = static_cast<int>(std::min_element(first.begin(), first.end()) - first.begin());
    const auto kept = choose_filters(model, model, scores, ratio, 1.0);
    CHECK(std::find(kept.at(0).begin(), kept.at(0).end(), worst) == kept.at(0).end());
    // A FLOP target is met.
    PruneTarget flops;
    flops.kind = PruneTarget::Kind::FlopsKept;
    flops.value = 0.4;
    const Model fewer_flops = prune_filters(model, choose_filters(model, model, scores, flops, 1.0));
    CHECK(flops_per_image(fewer_flops.description.resolve()) <= 0.4 * flops_per_image(architecture));
    // Ranked across layers, a layer keeps an eighth of its filters: 95 % of 48 filters cannot go.
    const Model wide = model_of("c32bn-p-c16bn-gap-fc", 4);
    PruneTarget most;
    most.value = 0.95;
    bool met = true;
    const auto floored = choose_filters(wide, wide, filter_scores(wide, PruneCriterion::L1), most, 1.0, &met);
    CHECK(floored.at(0).size() == 4);
    CHECK(floored.at(4).size() == 2);
    CHECK(!met);
    CHECK(choose_filters(model, model, scores, ratio, 1.0, &met).size() == 3);
    CHECK(met);
    // Per layer: only the named layer shrinks, and never below one filter.
    PruneTarget per_layer;
    per_layer.kind = PruneTarget::Kind::PerLayer;
    per_layer.per_layer = {{"c1", 0.99}};
    const auto one_left = choose_filters(model, model, scores, per_layer, 1.0);
    CHECK(one_left.at(0).size() == 1);
    CHECK(one_left.at(4).size() == 6);
    CHECK(one_left.at(8).size() == 4);
    per_layer.per_layer = {{"c4", 0.5}};
    CHECK_THROWS_WITH_AS(choose_filters(model, model, scores, per_layer, 1.0),
                         doctest::Contains("no conv layer 'c4' (this model has c1 to c3)"), Error);
    // bn-gamma scores are the batch-norm scales' magnitudes; a conv without batch norm has none.
    CHECK(filter_scores(model, PruneCriterion::BatchNormGamma).at(4).size() == 6);
    CHECK_THROWS_WITH_AS(filter_scores(model_of("c8bn-p-c6-gap-fc", 3), PruneCriterion::BatchNormGamma),
                         doctest::Contains("needs batch norm after every conv"), Error);
    // Rounded up to a channel multiple: the same filters and the next best ones back, never more than a layer has.
    PruneTarget rounded = ratio;
    rounded.channel_multiple = 4;
    const auto plain = choose_filters(model, model, scores, ratio, 1.0);
    const auto whole = choose_filters(model, model, scores, rounded, 1.0);
    for (const auto& [layer, filters] : whole) {
        const std::size_t rounded_layer = layer;  // a copy: doctest's CAPTURE cannot take a structured binding
        CAPTURE(rounded_layer);
        const int units = architecture.layers[layer].units;
        CHECK((filters.size() % 4 == 0 || static_cast<int>(filters.size()) == units));
        CHECK(std::includes(filters.begin(), filters.end(), plain.at(layer).begin(), plain.at(layer).end()));
    }
    CHECK(count(whole) > count(plain));
    rounded.channel_multiple = 0;
    CHECK_THROWS_WITH_AS(choose_filters(model, model, scores, rounded, 1.0),
                         doctest::Contains("--channel-multiple must be 1 to 64"), Error);
    CHECK(parse_per_layer_ratios("c3=0.75,c4=0.5") == std::map<std::string, double>{{"c3", 0.75}, {"c4", 0.5}});
    for (const char* bad : {"c3", "c3=", "c3=1.5", "c3=0", "x3=0.5", "c3=0.5x"})
        CHECK_THROWS_AS(parse_per_layer_ratios(bad), Error);
}

TEST_CASE("taylor scores: per filter the squared first-order loss change of scaling its batch-norm or conv parameters") {
    // One conv with batch norm, one without; the 40 images fit one batch, so each score is one batch's square.
    const Trained t("c6bn-p-c5-p-fc", 1);
    const LoadedModel model = load_model(t.model);
    TrainOptions data;
    data.data_dir = t.data;
    data.validation_split = 0.0;
    data.batch_size = 64;
    const auto scores = filter_scores(model, PruneCriterion::Taylor, GradientImages{&data, 512});
    REQUIRE(scores.size() == 2);
    // The reference: d/dt loss(parameters of filter f x (1 + t)) at t = 0, by central differences.
    const std::unique_ptr<Network> network = Network::from_model(model);
    LoaderOptions loading;
    loading.batch_size = 64;
    loading.shuffle = false;
    BatchLoader loader(scan_labelled_folder(t.data).images, model.description.input, loading);
    loader.start_epoch(0);
    Batch batch;
    REQUIRE(loader.next(batch));
    REQUIRE(batch.labels.size() == 40);
    const ResolvedArchitecture& architecture = network->architecture();
    ParameterArena& parameters = network->parameters();
    const auto slot = [&](std::size_t layer, TensorRole role) {
        return parameters.slot_of(architecture.tensor_name(layer, role));
    };
    const auto loss_scaled = [&](const std::vector<std::size_t>& slots, int filter, int filters, double t) {
        std::vector<std::vector<float>> saved;
        for (const std::size_t s : slots) {
            const TensorView v = parameters.value(s);
            saved.emplace_back(v.data, v.data + v.size());
            const std::size_t per_filter = v.size() / static_cast<std::size_t>(filters);
            for (std::size_t i = 0; i < per_filter; ++i)
                v[static_cast<std::size_t>(filter) * per_filter + i] *= static_cast<float>(1.0 + t);
        }
        const double loss = softmax_cross_entropy(network->forward(batch.images, Mode::Train), batch.labels, {}, nullptr);
        for (std::size_t k = 0; k < slots.size(); ++k) std::copy(saved[k].begin(), saved[k].end(), parameters.value(slots[k]).data);
        return loss;
    };
    const std::map<std::size_t, std::vector<std::size_t>> groups = {
        {0, {slot(1, TensorRole::Gamma), slot(1, TensorRole::Beta)}},
        {4, {slot(4, TensorRole::Weight), slot(4, TensorRole::Bias)}}};
    for (const auto& [layer_index, slots] : groups) {
        const std::size_t layer = layer_index;  // a copy: doctest's CAPTURE cannot take a structured binding
        const std::vector<double>& layer_scores = scores.at(layer);
        const int filters = static_cast<int>(layer_scores.size());
        const double largest = *std::max_element(layer_scores.begin(), layer_scores.end());
        CHECK(largest > 0.0);
        for (int f = 0; f < filters; ++f) {
            CAPTURE(layer);
            CAPTURE(f);
            const double h = 1e-2;
            const double slope = (loss_scaled(slots, f, filters, h) - loss_scaled(slots, f, filters, -h)) / (2 * h);
            // A batch of 40 images counts 40/64 of a full batch. Relative to the layer's largest score: float sums put
            // a floor under the differences' precision.
            const double weight = 40.0 / 64.0;
            CHECK(std::sqrt(layer_scores[static_cast<std::size_t>(f)] / weight) ==
                  doctest::Approx(std::abs(slope)).epsilon(0.03).scale(std::sqrt(largest / weight)));
        }
    }
    CHECK_THROWS_WITH_AS(filter_scores(model, PruneCriterion::Taylor), doctest::Contains("needs the labelled images"), Error);
}

TEST_CASE("cli prune: step by step to a smaller model that eval and quantize run, with the figures of each step") {
    const Trained t("c8bn-p-c8bn-p-fc6-fc", 2);
    const TempFolder& folder = t.folder;
    const std::string &data = t.data, &model = t.model, pruned = folder.file("p.eqc");
    const std::string report = folder.file("p.html");
    const CommandResult r = run_edgeqc("prune " + shell_quoted(model) + " " + shell_quoted(data) + " --out " +
                                       shell_quoted(pruned) + " --ratio 0.5 --steps 2 --finetune-epochs 1 --batch 8 "
                                       "--seed 5 --threads 2 --report " + shell_quoted(report) + " --json 2>/dev/null");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const nlohmann::json steps = nlohmann::json::parse(r.output).at("steps");
    REQUIRE(steps.size() == 3);
    CHECK(steps[0].at("filters") == std::vector<int>{8, 8});
    std::vector<int> last = steps[2].at("filters");
    CHECK(last[0] + last[1] == 8);
    CHECK(steps[2].at("parameters").get<std::size_t>() < steps[0].at("parameters").get<std::size_t>());
    CHECK(steps[2].at("flops").get<double>() < steps[1].at("flops").get<double>());
    CHECK(steps[1].at("validation").contains("val_accuracy"));
    CHECK(fs::exists(folder.file("p.step1.eqc")));
    // The report: the steps' table and one chart of validation accuracy against latency, a point per fine-tuned step.
    const std::string html = read_text(report);
    CHECK(html.find("Validation against batch-1 latency") != std::string::npos);
    CHECK(html.find("<svg") != std::string::npos);
    CHECK(html.find("filters per conv") != std::string::npos);
    CHECK(html.find("No training log") == std::string::npos);
    CHECK(!fs::exists(folder.file("p.step1.start.eqc")));
    const LoadedModel loaded = load_model(pruned);
    CHECK(loaded.description.architecture == "c" + std::to_string(last[0]) + "bn-p-c" + std::to_string(last[1]) +
                                                 "bn-p-fc6-fc");
    // Every command runs it unchanged, and prune then quantize works.
    CHECK(run_edgeqc("eval " + shell_quoted(pruned) + " " + shell_quoted(data)).exit_code == 0);
    CHECK(run_edgeqc("quantize " + shell_quoted(pruned) + " " + shell_quoted(data) + " --out " +
                     shell_quoted(folder.file("p8.eqc")))
              .exit_code == 0);
    // Without fine-tuning, a FLOP target in one step; the text output has a row per step.
    const CommandResult flops = run_edgeqc("prune " + shell_quoted(model) + " " + shell_quoted(data) + " --out " +
                                           shell_quoted(folder.file("f.eqc")) + " --target-flops 0.3 --steps 1 "
                                           "--finetune-epochs 0 --criterion bn-gamma");
    INFO(flops.output);
    REQUIRE(flops.exit_code == 0);
    CHECK(flops.output.find("pruned model written to") != std::string::npos);
    CHECK(flops_per_image(load_model(folder.file("f.eqc")).description.resolve()) <=
          0.3 * flops_per_image(load_model(model).description.resolve()));
    // The taylor criterion from the command line: gradients on the training images.
    const CommandResult taylor = run_edgeqc("prune " + shell_quoted(model) + " " + shell_quoted(data) + " --out " +
                                            shell_quoted(folder.file("t.eqc")) + " --ratio 0.5 --steps 1 "
                                            "--finetune-epochs 0 --criterion taylor --taylor-images 16 --json 2>/dev/null");
    INFO(taylor.output);
    REQUIRE(taylor.exit_code == 0);
    CHECK(nlohmann::json::parse(taylor.output).at("criterion") == "taylor");
    CHECK(load_model(folder.file("t.eqc")).description.architecture != load_model(model).description.architecture);

    // Bad input: one clear message each, before any work.
    const auto error_of = [&](const std::string& arguments) {
        const CommandResult e = run_edgeqc("prune " + shell_quoted(model) + " " + shell_quoted(data) + arguments);
        CHECK(e.exit_code != 0);
        return e.output;
    };
    const std::string out = " --out " + shell_quoted(folder.file("o.eqc"));
    CHECK(error_of(out + " --ratio 1.5").find("--ratio must lie strictly between 0 and 1") != std::string::npos);
    CHECK(error_of(out + " --target-flops 0").find("--target-flops must lie strictly between 0 and 1") != std::string::npos);
    CHECK(error_of(out + " --per-layer c9=0.5").find("no conv layer 'c9'") != std::string::npos);
    CHECK(error_of(out + " --per-layer c1=2").find("strictly between 0 and 1") != std::string::npos);
    CHECK(error_of(out + " --ratio 0.5 --per-layer c1=0.5").find("excludes") != std::string::npos);
    CHECK(error_of(out + " --criterion l3").find("--criterion") != std::string::npos);
    CHECK(error_of(out + " --criterion taylor --taylor-images 0").find("--taylor-images must be 1") != std::string::npos);
    CHECK(error_of(out + " --channel-multiple 0").find("--channel-multiple must be 1 to 64") != std::string::npos);
    CHECK(error_of(out + " --resume").find("no journal") != std::string::npos);
    CHECK(error_of(" --out " + shell_quoted(folder.str() + "/no/such/o.eqc")).find("does not exist") != std::string::npos);
    CHECK(error_of(out + " --steps 0").find("--steps") != std::string::npos);
    fs::create_directories(folder.file("other/a"));
    fs::create_directories(folder.file("other/b"));
    CHECK(run_edgeqc("prune " + shell_quoted(model) + " " + shell_quoted(folder.file("other")) + out).output.find(
              "differ from the model's") != std::string::npos);
    CHECK(run_edgeqc("prune " + shell_quoted(folder.file("p8.eqc")) + " " + shell_quoted(data) + out).output.find(
              "prune the float model, then quantize") != std::string::npos);
    CHECK(error_of(" --out " + shell_quoted(model)).find("same file") != std::string::npos);
    CHECK(error_of(out + " --report " + shell_quoted(folder.file("o.eqc"))).find("same file") != std::string::npos);
    CHECK(!fs::exists(folder.file("o.eqc")));
}

TEST_CASE("cli prune: Ctrl-C during fine-tuning stops cleanly, leaves the output unwritten, and --resume continues") {
    const Trained t("c4bn-p-c6bn-p-fc", 1);
    const std::string pruned = t.folder.file("p.eqc"), journal = t.folder.file("p.prune.json");
    const std::string options = "--steps 2 --finetune-epochs 100000 --batch 2 --threads 1";
    const std::string command = prune_command(t, options);
    const InterruptedRun run = interrupt_edgeqc(command, "epoch   2/");
    INFO(run.output);
    REQUIRE(run.interrupted);
    CHECK(WIFEXITED(run.status));
    CHECK(WEXITSTATUS(run.status) == 130);
    CHECK(run.output.find("'" + pruned + "' was not written (the same command with --resume continues)") !=
          std::string::npos);
    CHECK(!fs::exists(pruned));
    CHECK(!fs::exists(t.folder.file("p.step1.start.eqc")));
    REQUIRE(fs::exists(journal));
    // Resumed, the unfinished step's fine-tuning continues from its checkpoint instead of pruning again.
    const InterruptedRun resumed = interrupt_edgeqc(command + " --resume", "resuming from '");
    INFO(resumed.output);
    REQUIRE(resumed.interrupted);
    CHECK(resumed.output.find("step 1/2: continuing its fine-tuning from '" + t.folder.file("p.step1.last.eqc") + "'") !=
          std::string::npos);
    CHECK(WEXITSTATUS(resumed.status) == 130);
    // Only the run that was interrupted can be resumed, and only with its settings.
    CHECK(run_edgeqc(command + " --resume --ratio 0.25").output.find(
              "the interrupted run had target value 0.5, this command 0.25") != std::string::npos);
    CHECK(run_edgeqc(command + " --resume --lr 0.1").output.find("the interrupted run had fine-tuning recipe") !=
          std::string::npos);
    const Trained other("c6bn-p-c4bn-p-fc", 1);
    CHECK(run_edgeqc("prune " + shell_quoted(other.model) + " " + shell_quoted(t.data) + " --out " + shell_quoted(pruned) +
                     " " + options + " --resume")
              .output.find("pruned another model") != std::string::npos);
    // A new run into the same output forgets the old run's checkpoints: interrupted before its first epoch ended, its
    // resume prunes and fine-tunes its own step instead of continuing the old run's.
    const InterruptedRun fresh = interrupt_edgeqc(prune_command(t, options + " --ratio 0.25"), "step 1/2: ");
    INFO(fresh.output);
    REQUIRE(fresh.interrupted);
    CHECK(fresh.output.find("replaces the interrupted run journalled") != std::string::npos);
    const std::size_t step_line = fresh.output.find("step 1/2: ") + 10;
    const std::string fresh_architecture = fresh.output.substr(step_line, fresh.output.find('\n', step_line) - step_line);
    const InterruptedRun again = interrupt_edgeqc(prune_command(t, options + " --ratio 0.25 --resume"), "total parameters");
    INFO(again.output);
    REQUIRE(again.interrupted);
    CHECK(again.output.find("model: " + fresh_architecture + ",") != std::string::npos);
    write_bytes(journal, {'{', '"'});
    CHECK(run_edgeqc(command + " --resume").output.find("is damaged") != std::string::npos);
}

TEST_CASE("cli prune --resume: the finished steps are kept as they are and the rest are done") {
    const Trained t("c4bn-p-c6bn-p-fc", 1);
    const std::string pruned = t.folder.file("p.eqc"), step1 = t.folder.file("p.step1.eqc");
    const std::string command = prune_command(t, "--steps 3 --finetune-epochs 2 --batch 8 --threads 1 --json");
    // Each step measures its latency for half a second, so the signal comes well before the run could end.
    const InterruptedRun run = interrupt_edgeqc(command, "step 1 done");
    INFO(run.output);
    REQUIRE(run.interrupted);
    CHECK(WEXITSTATUS(run.status) == 130);
    REQUIRE(fs::exists(step1));
    const std::vector<unsigned char> step1_bytes = read_bytes(step1);
    const CommandResult resumed = run_edgeqc(command + " --resume 2>/dev/null");
    INFO(resumed.output);
    REQUIRE(resumed.exit_code == 0);
    const nlohmann::json report = nlohmann::json::parse(resumed.output);
    CHECK(report.at("resumed_steps").get<int>() >= 1);
    REQUIRE(report.at("steps").size() == 4);
    CHECK(report.at("steps")[1].at("validation").contains("val_accuracy"));
    CHECK(read_bytes(step1) == step1_bytes);
    CHECK(load_model(pruned).description.architecture == report.at("steps")[3].at("architecture").get<std::string>());
    CHECK(!fs::exists(t.folder.file("p.prune.json")));
}

TEST_CASE("train --sparsity-l1 drives the batch-norm scales towards zero, the way to a cheaper bn-gamma prune") {
    TempFolder folder;
    const std::string data = folder.file("train");
    REQUIRE(run_edgeqc("synth " + shell_quoted(data) + " --per-class 6 --size 16x20 --seed 4").exit_code == 0);
    const auto gamma_sum = [&](const std::string& extra) {
        const std::string model = folder.file("m" + std::to_string(extra.size()) + ".eqc");
        const CommandResult r = run_edgeqc("train " + shell_quoted(data) + " --out " + shell_quoted(model) +
                                           " --arch c8bn-p-c8bn-p-fc --size 16x20 --epochs 8 --batch 8 --threads 2 "
                                           "--val-split 0 --seed 2 --lr 0.02 --warmup-epochs 0" + extra);
        INFO(r.output);
        REQUIRE(r.exit_code == 0);
        const LoadedModel loaded = load_model(model);
        double sum = 0.0;
        for (const TensorSlot& slot : loaded.description.resolve().tensors) {
            if (slot.role != TensorRole::Gamma) continue;
            const TypedTensor& gamma = loaded.tensor(slot.name);
            for (std::size_t i = 0; i < gamma.elements(); ++i) sum += std::abs(gamma.data<float>()[i]);
        }
        return sum;
    };
    const double plain = gamma_sum(""), slimmed = gamma_sum(" --sparsity-l1 0.5");
    CHECK(slimmed < 0.85 * plain);
    CHECK(run_edgeqc("train " + shell_quoted(data) + " --out " + shell_quoted(folder.file("x.eqc")) +
                     " --sparsity-l1 -1").output.find("--sparsity-l1 must be a non-negative number") != std::string::npos);
}
