// The training loop: reproducibility from the seed, exact --resume, clean stop on request, and the failure
// paths (divergence, unwritable output) that must never destroy a good model.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

#include "engine/error.hpp"
#include "engine/model_file.hpp"
#include "layers/network.hpp"
#include "optim/trainer.hpp"
#include "optim/training_kernels.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

std::vector<float> parameters_of(const std::string& model_path) {
    const std::unique_ptr<Network> network = Network::from_model(load_model(model_path));
    const ParameterArena& p = network->parameters();
    return {p.values(), p.values() + p.size()};
}

// The options that resume `interrupted` (trained for fewer epochs) to `epochs`; `ignored` changes the recipe, which
// the checkpoint's recipe must override.
TrainOptions resumed_to(TrainOptions interrupted, int epochs, void (*ignored)(TrainOptions&)) {
    interrupted.epochs = epochs;
    interrupted.epochs_given = true;
    interrupted.resume = true;
    ignored(interrupted);
    return interrupted;
}

}  // namespace

TEST_CASE("the same seed gives the same model bit for bit; another seed does not") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6);
    TrainOptions options = tiny_train_options(folder.file("data"), folder.file("a.eqc"));
    train(options);
    options.output_path = folder.file("b.eqc");
    train(options);
    CHECK(read_bytes(folder.file("a.eqc")) == read_bytes(folder.file("b.eqc")));
    options.output_path = folder.file("c.eqc");
    options.seed = 6;
    train(options);
    CHECK(parameters_of(folder.file("a.eqc")) != parameters_of(folder.file("c.eqc")));
    CHECK(fs::exists(folder.file("a.log.csv")));
    CHECK(fs::exists(folder.file("a.log.json")));
}

TEST_CASE("the model does not depend on the thread count, Winograd layers included") {
    // Every kernel fixes its summation order independently of the threads (GEMM depth blocks, one Winograd GEMM per
    // thread, per-channel batch-norm sums). 40x60 input and batch 8 put the second conv (16 -> 16 channels at
    // 20x30, 1200 tiles per batch) on the Winograd training path.
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6, 40, 60);
    std::vector<std::string> models;
    for (const int threads : {1, 2}) {
        TrainOptions options = tiny_train_options(folder.file("data"), folder.file("t" + std::to_string(threads) + ".eqc"));
        options.architecture = "c16-p-c16-p-fc";
        options.input.height = 40;
        options.input.width = 60;
        const int default_threads = omp_get_max_threads();
        omp_set_num_threads(threads);
        train(options);
        omp_set_num_threads(default_threads);
        models.push_back(options.output_path);
    }
    CHECK(read_bytes(models[0]) == read_bytes(models[1]));
}

TEST_CASE("--resume continues exactly where the checkpoint left off") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6);
    TrainOptions straight = tiny_train_options(folder.file("data"), folder.file("straight.eqc"));
    straight.epochs = 3;
    train(straight);

    TrainOptions interrupted = tiny_train_options(folder.file("data"), folder.file("resumed.eqc"));
    interrupted.epochs = 1;
    train(interrupted);
    TrainOptions resumed = resumed_to(interrupted, 3, [](TrainOptions& o) { o.learning_rate = 1.0f; });
    const TrainSummary summary = train(resumed);
    CHECK(summary.epochs_done == 3);
    CHECK(parameters_of(folder.file("straight.last.eqc")) == parameters_of(folder.file("resumed.last.eqc")));
    const auto lines = [](const std::vector<unsigned char>& text) { return std::count(text.begin(), text.end(), '\n'); };
    CHECK(lines(read_bytes(folder.file("resumed.log.csv"))) == 4);  // header and all three epochs, resumed or not

    resumed.epochs = 2;  // already done
    CHECK_THROWS_WITH_AS(train(resumed), doctest::Contains("already completed"), Error);

    // SGD checkpoints have no second moment: an empty tensor that once tripped UBSan (memcpy from null) on load.
    TrainOptions sgd = tiny_train_options(folder.file("data"), folder.file("sgd.eqc"));
    sgd.optimizer.kind = OptimizerKind::Sgd;
    sgd.epochs = 1;
    train(sgd);
    sgd.epochs = 2;
    sgd.epochs_given = true;
    sgd.resume = true;
    CHECK(train(sgd).epochs_done == 2);
}

TEST_CASE("bf16 training: another model than f32, the same for the same seed, kept by --resume; refused without bf16") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6);
    const std::string original = kernels().name;
    if (!cpu_runs_bf16_products()) {
        if (original != "scalar") {  // the scalar arch chosen on purpose may run the reference's bf16 products
            TrainOptions refused = tiny_train_options(folder.file("data"), folder.file("refused.eqc"));
            refused.precision = TrainPrecision::BF16;
            CHECK_THROWS_WITH_AS(train(refused), doctest::Contains("needs a CPU with AVX-512 BF16"), Error);
            CHECK_FALSE(fs::exists(folder.file("refused.eqc")));
        }
        MESSAGE("this CPU lacks AVX-512 BF16: bf16 training is tested on the scalar kernels");
        select_kernels("scalar");
    }
    TrainOptions f32 = tiny_train_options(folder.file("data"), folder.file("f32.eqc"));
    f32.epochs = 2;
    train(f32);
    TrainOptions straight = f32;
    straight.precision = TrainPrecision::BF16;
    straight.output_path = folder.file("straight.eqc");
    train(straight);
    CHECK(parameters_of(folder.file("straight.eqc")) != parameters_of(folder.file("f32.eqc")));
    TrainOptions again = straight;
    again.output_path = folder.file("again.eqc");
    train(again);
    CHECK(read_bytes(folder.file("again.eqc")) == read_bytes(folder.file("straight.eqc")));

    TrainOptions interrupted = straight;
    interrupted.output_path = folder.file("resumed.eqc");
    interrupted.epochs = 1;
    train(interrupted);
    train(resumed_to(interrupted, 2, [](TrainOptions& o) { o.precision = TrainPrecision::F32; }));
    CHECK(parameters_of(folder.file("straight.last.eqc")) == parameters_of(folder.file("resumed.last.eqc")));
    select_kernels(original);
}

TEST_CASE("a stop request ends training at a batch boundary and keeps the last complete epoch's checkpoint") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6);
    TrainOptions options = tiny_train_options(folder.file("data"), folder.file("m.eqc"));
    options.epochs = 1;
    train(options);
    options.epochs = 3;
    options.epochs_given = true;
    options.resume = true;
    training_stop_requested() = true;
    const TrainSummary summary = train(options);
    training_stop_requested() = false;
    CHECK(summary.interrupted);
    const LoadedModel checkpoint = load_model(folder.file("m.last.eqc"));
    CHECK(checkpoint.training_state.epochs_done == 1);
}

TEST_CASE("a stop before the first epoch completes says there is nothing to resume") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 4);
    training_stop_requested() = true;
    const TrainSummary summary = train(tiny_train_options(folder.file("data"), folder.file("m.eqc")));
    training_stop_requested() = false;
    CHECK(summary.interrupted);
    CHECK(summary.epochs_done == 0);
    CHECK_FALSE(fs::exists(folder.file("m.last.eqc")));
}

TEST_CASE("--resume without --epochs keeps the run's epoch count; changed data is refused") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6);
    TrainOptions options = tiny_train_options(folder.file("data"), folder.file("m.eqc"));
    options.epochs = 1;
    train(options);
    options.resume = true;
    options.epochs = 2;  // given on the command line: the run now lasts 2 epochs
    options.epochs_given = true;
    train(options);
    options.epochs = 30;  // only the default, not given: the checkpoint's 2 epochs stand
    options.epochs_given = false;
    CHECK_THROWS_WITH_AS(train(options), doctest::Contains("already completed 2 epochs"), Error);

    write_tiny_dataset(folder.file("more"), 1);
    fs::copy_file(folder.file("more/crack/crack_0000.png"), folder.file("data/crack/added.png"));
    options.epochs = 3;
    options.epochs_given = true;
    CHECK_THROWS_WITH_AS(train(options), doctest::Contains("not the ones the checkpoint was trained on"), Error);
}

TEST_CASE("a diverging run stops with a clear message and leaves the existing best model intact") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6);
    TrainOptions options = tiny_train_options(folder.file("data"), folder.file("m.eqc"));
    options.epochs = 1;
    train(options);
    const std::vector<unsigned char> good = read_bytes(folder.file("m.eqc"));
    options.learning_rate = 1e30f;
    options.warmup_epochs = 0;
    // The file there is an older run's, not this one's: the message must not call it this run's best.
    CHECK_THROWS_WITH_AS(train(options), doctest::Contains("diverged in epoch 1"), Error);
    CHECK_THROWS_WITH_AS(train(options), doctest::Contains("no model was written"), Error);
    CHECK(read_bytes(folder.file("m.eqc")) == good);
}

TEST_CASE("an unwritable output path is reported before any training") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 2);
    TrainOptions options = tiny_train_options(folder.file("data"), folder.str() + "/missing/m.eqc");
    CHECK_THROWS_WITH_AS(train(options), doctest::Contains("does not exist"), Error);
    options.output_path = folder.file("data");
    CHECK_THROWS_WITH_AS(train(options), doctest::Contains("it is a folder"), Error);
}

TEST_CASE("bad training options are refused with the option's name") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 2);
    TrainOptions options = tiny_train_options(folder.file("data"), folder.file("m.eqc"));
    options.validation_split = 1.5;
    CHECK_THROWS_WITH_AS(train(options), doctest::Contains("--val-split"), Error);
    options = tiny_train_options(folder.file("data"), folder.file("m.eqc"));
    options.epochs = 0;
    CHECK_THROWS_WITH_AS(train(options), doctest::Contains("--epochs"), Error);
    options = tiny_train_options(folder.file("data"), folder.file("m.eqc"));
    options.architecture = "c4-p-p-p-p-p-fc";  // pools a 16x20 input away
    CHECK_THROWS_WITH_AS(train(options), doctest::Contains("smaller than"), Error);
}

namespace {

// Keeps what a run reports, and counts.
struct RecordingObserver : ProgressObserver {
    std::vector<std::string> infos, warnings;
    std::vector<EpochReport> epochs;
    std::size_t progress_calls = 0, progress_ends = 0;
    void info(const std::string& line) override { infos.push_back(line); }
    void warning(const std::string& line) override { warnings.push_back(line); }
    void progress(const std::string&, std::size_t, std::size_t, const std::string&) override { ++progress_calls; }
    void progress_end() override { ++progress_ends; }
    void epoch_end(const EpochReport& report) override { epochs.push_back(report); }
};

// The bytes written to a standard stream (1 or 2) while `body` runs, caught through a temporary file.
template <class Body>
std::string written_to(int stream, const TempFolder& folder, Body body) {
    std::fflush(nullptr);
    const std::string path = folder.file("stream" + std::to_string(stream) + ".txt");
    const int saved = ::dup(stream);
    std::FILE* capture = std::fopen(path.c_str(), "w");
    ::dup2(::fileno(capture), stream);
    body();
    std::fflush(nullptr);
    ::dup2(saved, stream);
    ::close(saved);
    std::fclose(capture);
    const std::vector<unsigned char> bytes = read_bytes(path);
    return {bytes.begin(), bytes.end()};
}

}  // namespace

TEST_CASE("a training run reports through its observer and prints nothing itself") {
    TempFolder folder;
    write_tiny_dataset(folder.file("data"), 6);
    write_bytes(folder.file("data/crack/broken.png"), {0x89, 'P', 'N', 'G', 1, 2, 3});
    TrainOptions options = tiny_train_options(folder.file("data"), folder.file("m.eqc"));
    options.report_path = folder.file("report.html");
    RecordingObserver observer;
    TrainSummary summary;
    std::string printed_on_stderr;
    const std::string printed_on_stdout = written_to(1, folder, [&] {
        printed_on_stderr = written_to(2, folder, [&] { summary = train(options, observer); });
    });
    CHECK(printed_on_stdout.empty());
    CHECK(printed_on_stderr.empty());
    REQUIRE(observer.epochs.size() == 2);
    CHECK(observer.epochs[1].record.epoch == 2);
    CHECK(observer.epochs[1].total_epochs == 2);
    CHECK(observer.epochs[0].validated);
    CHECK(summary.epochs_done == 2);
    CHECK(std::any_of(observer.infos.begin(), observer.infos.end(),
                      [](const std::string& line) { return line.rfind("split: ", 0) == 0; }));
    CHECK(std::any_of(observer.infos.begin(), observer.infos.end(),
                      [](const std::string& line) { return line.rfind("report written to", 0) == 0; }));
    // The corrupt image is reported once, by the training loader (not again by the others).
    CHECK(std::count_if(observer.warnings.begin(), observer.warnings.end(), [](const std::string& line) {
              return line.find("broken.png") != std::string::npos;
          }) == 1);
    CHECK(observer.progress_calls > 0);
    CHECK(observer.progress_ends >= 4);  // two epochs, two validations, the report's evaluation
}
