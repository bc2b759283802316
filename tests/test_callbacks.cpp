// Callbacks and schedules (best epoch, early stopping, reduce-on-plateau, step decay), frozen layers and
// transfer learning (--init MODEL, --freeze, two phases), through the library and the command line.
// Callback sequences are walked through by hand in the comments.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "engine/error.hpp"
#include "engine/model_file.hpp"
#include "layers/network.hpp"
#include "layers/softmax_cross_entropy.hpp"
#include "optim/callbacks.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"
#include "optim/trainer.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

constexpr const char* kTinyArchitecture = "c4bn-p-c6-p-fc";  // conv bn relu pool | conv relu pool | flatten dense

std::vector<double> logged_learning_rates(const std::string& model_path) {
    std::ifstream in(log_path_for(model_path, "json"));
    const nlohmann::json log = nlohmann::json::parse(in);
    std::vector<double> rates;
    for (const auto& epoch : log.at("epochs")) rates.push_back(epoch.at("learning_rate").get<double>());
    return rates;
}

std::vector<float> tensor_of(const Model& model, const std::string& name) {
    const TypedTensor& t = model.tensor(name);
    return {t.data<float>(), t.data<float>() + t.elements()};
}

// A recipe under which validation never improves after epoch 1: a learning rate too small to change any
// prediction, a constant schedule, and no batch norm whose running statistics would move.
TrainOptions plateau_options(const TempFolder& folder, const std::string& name) {
    TrainOptions options = tiny_train_options(folder.file("data"), folder.file(name));
    options.architecture = "c4-p-c6-p-fc";
    options.learning_rate = 1e-9f;
    options.schedule = ScheduleKind::Constant;
    options.warmup_epochs = 0;
    return options;
}

}  // namespace

TEST_CASE("callbacks: best epoch, plateau reductions and early stopping on accuracy") {
    CallbackOptions options;
    options.early_stop_patience = 3;
    options.plateau_patience = 2;
    options.plateau_factor = 0.5f;
    options.min_learning_rate = 1e-4f;
    TrainingCallbacks callbacks(options, 1e-3f);
    // 0.5 and 0.6 improve; 0.6 again is no improvement (wait 1); 0.55 (wait 2) reduces to 0.5; 0.7 improves and
    // resets; 0.6 (1), 0.6 (2) reduces to 0.25; 0.6 (3) stops.
    const double values[] = {0.5, 0.6, 0.6, 0.55, 0.7, 0.6, 0.6, 0.6};
    const bool improved[] = {true, true, false, false, true, false, false, false};
    const bool reduced[] = {false, false, false, true, false, false, true, false};
    const bool stop[] = {false, false, false, false, false, false, false, true};
    const float scale[] = {1, 1, 1, 0.5f, 0.5f, 0.5f, 0.25f, 0.25f};
    for (int e = 0; e < 8; ++e) {
        CAPTURE(e);
        const EpochDecision d = callbacks.end_epoch(values[e]);
        CHECK(d.improved == improved[e]);
        CHECK(d.reduced_lr == reduced[e]);
        CHECK(d.stop == stop[e]);
        CHECK(callbacks.learning_rate_scale() == scale[e]);
    }
    CHECK(callbacks.best() == 0.7);
}

TEST_CASE("callbacks: loss is better when lower, NaN never improves, the floor holds and state round-trips") {
    CallbackOptions options;
    options.monitor = Monitor::ValLoss;
    options.plateau_patience = 1;
    options.plateau_factor = 0.1f;
    options.min_learning_rate = 2e-4f;  // floor 0.2 of the base 1e-3
    TrainingCallbacks callbacks(options, 1e-3f);
    CHECK(callbacks.end_epoch(1.0).improved);
    CHECK(callbacks.end_epoch(0.9).improved);
    CHECK_FALSE(callbacks.end_epoch(NAN).improved);
    CHECK(callbacks.learning_rate_scale() == doctest::Approx(0.2f));  // 0.1 floored at 0.2
    const EpochDecision at_floor = callbacks.end_epoch(0.95);
    CHECK_FALSE(at_floor.reduced_lr);
    CHECK(callbacks.learning_rate_scale() == doctest::Approx(0.2f));

    TrainingCallbacks restored(options, 1e-3f);
    restored.restore(callbacks.state());
    CHECK(restored.best() == 0.9);
    CHECK(restored.learning_rate_scale() == callbacks.learning_rate_scale());
    CHECK(restored.end_epoch(0.89).improved);
    CHECK_THROWS_AS(restored.restore({{"has_best", "1"}}), Error);
    CHECK_THROWS_AS(restored.restore({{"has_best", "1"}, {"best", "1"}, {"epochs_without_improvement", "-2"},
                                      {"plateau_wait", "0"}, {"lr_scale", "1"}}),
                    Error);

    callbacks.start_phase(1e-4f);
    CHECK(callbacks.learning_rate_scale() == 1.0f);
    CHECK(callbacks.best() == 0.9);  // the run's best model stays the reference

    options.early_stop_patience = -1;
    CHECK_THROWS_WITH_AS(validate_callback_options(options), doctest::Contains("--early-stop"), Error);
    options.early_stop_patience = 0;
    options.plateau_factor = 1.5f;
    CHECK_THROWS_WITH_AS(validate_callback_options(options), doctest::Contains("--plateau-factor"), Error);
    CHECK_THROWS_AS(parse_monitor("val_auc"), Error);
}

TEST_CASE("the step schedule decays by gamma every interval after warm-up") {
    const Schedule schedule{ScheduleKind::Step, 1.0f, 2, 100, 3, 0.5f};
    // Warm-up: (step + 1) / 2; then steps 2-4 at 1, 5-7 at 0.5, 8 at 0.25.
    const float expected[] = {0.5f, 1.0f, 1.0f, 1.0f, 1.0f, 0.5f, 0.5f, 0.5f, 0.25f};
    for (std::uint64_t step = 0; step < 9; ++step) {
        CAPTURE(step);
        CHECK(schedule.learning_rate_at(step) == doctest::Approx(expected[step]));
    }
    CHECK(parse_schedule_kind("step") == ScheduleKind::Step);
}

TEST_CASE("frozen leading layers get no gradient, keep their statistics and are skipped by the optimizer") {
    Network network(kTinyArchitecture, Shape{1, 16, 20}, 3);
    CHECK(network.conv_blocks() == 2);
    CHECK(network.layers_in_conv_blocks(0) == 0);
    CHECK(network.layers_in_conv_blocks(1) == 4);  // conv bn relu pool
    CHECK(network.layers_in_conv_blocks(2) == 7);  // + conv relu pool, up to the flatten
    CHECK_THROWS_AS(network.layers_in_conv_blocks(3), Error);
    network.initialize(InitScheme::He, 1);
    network.freeze_leading_layers(network.layers_in_conv_blocks(1));
    const std::size_t first = network.first_trainable_parameter();
    CHECK(first == network.parameters().slots()[3].offset);  // 4.weight, after the frozen 0.weight, 1.gamma, 1.beta
    const std::vector<float> buffers_before(network.buffers().values(), network.buffers().values() + network.buffers().size());
    const std::vector<float> values_before(network.parameters().values(), network.parameters().values() + network.parameters().size());

    Tensor x({4, 1, 16, 20});
    Rng rng(2);
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = rng.normal();
    Tensor dlogits;
    softmax_cross_entropy(network.forward(x, Mode::Train), {0, 1, 2, 1}, {}, &dlogits);
    network.parameters().zero_gradients();
    network.backward(dlogits);
    const float* g = network.parameters().gradients();
    CHECK(std::all_of(g, g + first, [](float v) { return v == 0.0f; }));
    CHECK(std::any_of(g + first, g + network.parameters().size(), [](float v) { return v != 0.0f; }));
    CHECK(std::equal(buffers_before.begin(), buffers_before.end(), network.buffers().values()));  // BN in inference mode

    Optimizer optimizer(OptimizerConfig{}, network.parameters().size());
    optimizer.step(network.parameters().values(), g, 1e-2f, first);
    const float* v = network.parameters().values();
    CHECK(std::equal(values_before.begin(), values_before.begin() + static_cast<long>(first), v));
    CHECK_FALSE(std::equal(values_before.begin() + static_cast<long>(first), values_before.end(), v + first));
}

TEST_CASE("training: early stopping and plateau reductions, and --resume restores their state") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6);
    TrainOptions options = plateau_options(folder, "stop.eqc");
    options.epochs = 20;
    options.callbacks.early_stop_patience = 2;
    const TrainSummary stopped = train(options);
    CHECK(stopped.early_stopped);
    CHECK(stopped.epochs_done == 3);
    CHECK(stopped.best_epoch == 1);
    TrainOptions after_stop = options;
    after_stop.resume = true;
    after_stop.epochs = 30;
    after_stop.epochs_given = true;
    CHECK_THROWS_WITH_AS(train(after_stop), doctest::Contains("ended by early stopping"), Error);

    options.callbacks.early_stop_patience = 0;
    options.callbacks.plateau_patience = 1;
    options.callbacks.min_learning_rate = 0.0f;
    options.epochs = 4;
    options.output_path = folder.file("straight.eqc");
    train(options);
    // Epoch 1 improves; each later epoch halves the rate for the next one.
    const std::vector<double> rates = logged_learning_rates(options.output_path);
    REQUIRE(rates.size() == 4);
    CHECK(rates[0] == doctest::Approx(1e-9));
    CHECK(rates[1] == doctest::Approx(1e-9));
    CHECK(rates[2] == doctest::Approx(0.5e-9));
    CHECK(rates[3] == doctest::Approx(0.25e-9));

    options.output_path = folder.file("resumed.eqc");
    options.epochs = 2;
    train(options);
    options.epochs = 4;
    options.epochs_given = true;
    options.resume = true;
    train(options);
    CHECK(logged_learning_rates(options.output_path) == rates);

    TrainOptions no_validation = tiny_train_options(folder.file("data"), folder.file("nv.eqc"));
    no_validation.validation_split = 0.0;
    no_validation.callbacks.early_stop_patience = 2;
    CHECK_THROWS_WITH_AS(train(no_validation), doctest::Contains("validation"), Error);
}

TEST_CASE("training: --init copies a model's weights, re-initialises a changed head, and --freeze keeps blocks") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6);
    TrainOptions base = tiny_train_options(folder.file("data"), folder.file("base.eqc"));
    base.input.enhancement.clahe_clip = 2.0f;
    train(base);
    const LoadedModel start = load_model(folder.file("base.eqc"));

    // Two of the five classes: a new head.
    fs::create_directories(folder.file("two"));
    fs::copy(folder.file("data/crack"), folder.file("two/crack"));
    fs::copy(folder.file("data/normal"), folder.file("two/normal"));
    TrainOptions tuned = tiny_train_options(folder.file("two"), folder.file("tuned.eqc"));
    tuned.architecture = "c8-fc";  // ignored: the start model decides the architecture
    tuned.init_model = folder.file("base.eqc");
    tuned.freeze_blocks = 2;
    tuned.epochs = 1;
    train(tuned);
    const LoadedModel frozen = load_model(folder.file("tuned.eqc"));
    CHECK(frozen.description.architecture == kTinyArchitecture);
    CHECK(frozen.description.class_names == std::vector<std::string>{"crack", "normal"});
    CHECK(frozen.description.input.mean == start.description.input.mean);  // not re-estimated
    CHECK(frozen.description.input.enhancement == start.description.input.enhancement);
    for (const char* name : {"0.weight", "1.gamma", "1.running_mean", "4.weight", "4.bias"}) {
        CAPTURE(name);
        CHECK(tensor_of(frozen, name) == tensor_of(start, name));
    }
    CHECK(tensor_of(frozen, "8.weight").size() == 2 * tensor_of(start, "8.weight").size() / 5);

    // Two phases: phase 1 as above, phase 2 releases the last block only.
    tuned.output_path = folder.file("phased.eqc");
    tuned.phase2_epochs = 1;
    tuned.phase2_learning_rate = 1e-3f;
    tuned.unfreeze_blocks = 1;
    const TrainSummary phased = train(tuned);
    CHECK(phased.epochs_done == 2);
    const LoadedModel last = load_model(checkpoint_path_for(folder.file("phased.eqc")));
    CHECK(tensor_of(last, "0.weight") == tensor_of(start, "0.weight"));
    CHECK(tensor_of(last, "4.weight") != tensor_of(start, "4.weight"));

    // The same number of classes under other names: the head must not be copied. At a learning rate that barely
    // moves it, a copied head would still equal the start model's.
    fs::create_directories(folder.file("renamed"));
    for (const char* name : {"crack", "hole", "normal", "pinhole", "spatter"})
        fs::copy(folder.file(std::string("data/") + name), folder.file(std::string("renamed/") + name + "_v2"));
    TrainOptions renamed = tiny_train_options(folder.file("renamed"), folder.file("renamed.eqc"));
    renamed.init_model = folder.file("base.eqc");
    renamed.learning_rate = 1e-12f;
    renamed.epochs = 1;
    train(renamed);
    const std::vector<float> new_head = tensor_of(load_model(folder.file("renamed.eqc")), "8.weight");
    const std::vector<float> old_head = tensor_of(start, "8.weight");
    REQUIRE(new_head.size() == old_head.size());
    double largest_change = 0.0;
    for (std::size_t i = 0; i < new_head.size(); ++i) largest_change = std::max(largest_change, std::fabs(double(new_head[i]) - old_head[i]));
    CHECK(largest_change > 1e-3);
    CHECK(tensor_of(load_model(folder.file("renamed.eqc")), "0.weight") == tensor_of(start, "0.weight"));

    tuned.freeze_blocks = 3;
    CHECK_THROWS_WITH_AS(train(tuned), doctest::Contains("conv blocks"), Error);
    tuned.freeze_blocks = 0;
    tuned.init_model = folder.file("missing.eqc");
    CHECK_THROWS_WITH_AS(train(tuned), doctest::Contains("--init"), Error);
}

TEST_CASE("training: resuming inside phase 2 keeps phase 2's plateau floor and extends it with --phase2-epochs") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6);
    // Every phase-2 epoch is a plateau. The floor min_lr / phase2_lr = 0.5 stops the 0.1 reductions; measured
    // against phase 1's rate it would be 0.005.
    TrainOptions options = plateau_options(folder, "straight.eqc");
    options.epochs = 1;
    options.phase2_epochs = 3;
    options.phase2_learning_rate = 1e-10f;
    options.callbacks.plateau_patience = 1;
    options.callbacks.plateau_factor = 0.1f;
    options.callbacks.min_learning_rate = 0.5e-10f;
    train(options);
    const std::vector<double> rates = logged_learning_rates(options.output_path);
    REQUIRE(rates.size() == 4);
    CHECK(rates[1] == doctest::Approx(1e-10));
    CHECK(rates[2] == doctest::Approx(0.5e-10));
    CHECK(rates[3] == doctest::Approx(0.5e-10));

    options.output_path = folder.file("resumed.eqc");
    options.phase2_epochs = 1;  // the resumed run then reduces the rate after epoch 3, against the floor
    train(options);
    options.phase2_epochs = 3;
    options.phase2_epochs_given = true;
    options.resume = true;
    train(options);
    CHECK(logged_learning_rates(options.output_path) == rates);
}

TEST_CASE("cli: callback, schedule and transfer flags reject bad values before training") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 5);  // one validation image per class
    const std::string data = "'" + folder.file("data") + "'";
    const std::string tiny = " --arch c4bn-p-c6-p-fc --size 16x20 --epochs 1 --batch 8 --threads 2 --out '" + folder.file("m.eqc") + "'";
    for (const char* bad : {" --early-stop -1", " --plateau-patience -2", " --plateau-factor 2", " --monitor val_auc",
                            " --schedule linear", " --step-gamma 0", " --freeze 9", " --phase2-lr -1", " --unfreeze -3",
                            " --init no_such_model.eqc", " --init he --freeze -1"}) {
        CAPTURE(bad);
        const CommandResult refused = run_edgeqc("train " + data + tiny + bad);
        CHECK(refused.exit_code != 0);
        CHECK(refused.output.find("error") != std::string::npos);
        CHECK(refused.output.find("epoch   1/") == std::string::npos);
    }
    write_bytes(folder.file("garbage.eqc"), {1, 2, 3, 4});
    const CommandResult unreadable = run_edgeqc("train " + data + tiny + " --init '" + folder.file("garbage.eqc") + "'");
    CHECK(unreadable.exit_code != 0);
    CHECK(unreadable.output.find("--init") != std::string::npos);

    REQUIRE(run_edgeqc("train " + data + tiny).exit_code == 0);
    const CommandResult with_size = run_edgeqc("train " + data + " --out '" + folder.file("t.eqc") + "' --init '" +
                                               folder.file("m.eqc") + "' --size 32x32");
    CHECK(with_size.exit_code != 0);
    CHECK(with_size.output.find("--size comes from the start model") != std::string::npos);
    const CommandResult tuned = run_edgeqc("train " + data + " --out '" + folder.file("t.eqc") + "' --init '" +
                                           folder.file("m.eqc") + "' --freeze 1 --epochs 1 --phase2-epochs 1 --batch 8 " +
                                           "--monitor val_macro_f1 --early-stop 3 --plateau-patience 1");
    INFO(tuned.output);
    CHECK(tuned.exit_code == 0);
    CHECK(tuned.output.find("initialised from") != std::string::npos);
    CHECK(tuned.output.find("phase 2: fine-tuning") != std::string::npos);
    CHECK(tuned.output.find("best val_macro_f1") != std::string::npos);
}
