// The edgeqc command line end to end on generated data: the happy path (synth, train, eval, predict) and
// every bad input a user can give it, each of which must end in one clear message and a non-zero exit.
#include <doctest/doctest.h>

#include <algorithm>

#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "data/image.hpp"
#include "engine/model_file.hpp"
#include "engine/rng.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

const std::string kTinyTraining = " --arch c4bn-p-c6-p-fc --size 16x20 --epochs 1 --batch 8 --threads 2";

std::string quoted(const std::string& path) { return "'" + path + "'"; }

// A dataset with two classes of synthetic images, ready to be damaged by a test.
std::string two_class_dataset(const TempFolder& folder) {
    write_tiny_dataset(folder.file("synth"), 4);
    const std::string data = folder.file("data");
    fs::create_directories(data);
    fs::rename(folder.file("synth/crack"), data + "/crack");
    fs::rename(folder.file("synth/normal"), data + "/normal");
    return data;
}

}  // namespace

TEST_CASE("cli: --help and --version describe the tool") {
    const CommandResult help = run_edgeqc("--help");
    CHECK(help.exit_code == 0);
    for (const char* command : {"train", "eval", "predict", "synth"}) CHECK(help.output.find(command) != std::string::npos);
    const CommandResult version = run_edgeqc("--version");
    CHECK(version.exit_code == 0);
    CHECK(version.output.find("kernels:") != std::string::npos);
    CHECK(run_edgeqc("train --help").output.find("--resume") != std::string::npos);
    CHECK(run_edgeqc("no-such-command").exit_code != 0);
}

TEST_CASE("cli: synth, train, eval and predict on generated data") {
    TempFolder folder;
    CHECK(run_edgeqc("synth " + quoted(folder.file("train")) + " --per-class 6 --size 16x20 --seed 3").exit_code == 0);
    CHECK(run_edgeqc("synth " + quoted(folder.file("test")) + " --per-class 3 --size 16x20 --seed 4").exit_code == 0);
    const std::string model = folder.file("m.eqc");
    const CommandResult trained = run_edgeqc("train " + quoted(folder.file("train")) + " --out " + quoted(model) + kTinyTraining);
    INFO(trained.output);
    REQUIRE(trained.exit_code == 0);
    CHECK(trained.output.find("epoch   1/1") != std::string::npos);

    const CommandResult evaluated = run_edgeqc("eval " + quoted(model) + " " + quoted(folder.file("test")));
    INFO(evaluated.output);
    CHECK(evaluated.exit_code == 0);
    for (const char* field : {"precision", "macro-F1", "balanced accuracy", "ROC AUC", "confusion matrix", "latency"})
        CHECK(evaluated.output.find(field) != std::string::npos);

    const CommandResult as_json = run_edgeqc("eval " + quoted(model) + " " + quoted(folder.file("test")) + " --json 2>/dev/null");
    const nlohmann::json report = nlohmann::json::parse(as_json.output);
    CHECK(report.at("images") == 15);
    CHECK(report.at("confusion").size() == 5);
    CHECK(report.at("accuracy").get<double>() >= 0.0);

    // An RGB image given to a grayscale model is converted, not rejected.
    Image rgb{16, 20, 3, std::vector<float>(16 * 20 * 3, 0.5f)};
    write_png(folder.file("rgb.png"), rgb);
    const CommandResult predicted = run_edgeqc("predict " + quoted(model) + " " + quoted(folder.file("rgb.png")) + " --json");
    INFO(predicted.output);
    CHECK(predicted.exit_code == 0);
    const nlohmann::json prediction = nlohmann::json::parse(predicted.output);
    CHECK(prediction.at("probabilities").size() == 5);
    CHECK(prediction.at("confidence").get<double>() > 0.2);
}

TEST_CASE("cli: --val DIR trains on every image of DATA and validates on DIR, whose classes must be the model's") {
    TempFolder folder;
    write_tiny_dataset(folder.file("train"), 6);
    write_tiny_dataset(folder.file("val"), 2);
    const std::string train = "train " + quoted(folder.file("train")) + " --out " + quoted(folder.file("m.eqc")) +
                              " --val " + quoted(folder.file("val")) + kTinyTraining;
    const CommandResult trained = run_edgeqc(train);
    INFO(trained.output);
    CHECK(trained.exit_code == 0);
    CHECK(trained.output.find("split: 30 training, 10 validation images") != std::string::npos);

    fs::create_directories(folder.file("val/scratch"));
    fs::copy_file(folder.file("val/crack/crack_0000.png"), folder.file("val/scratch/a.png"));
    const CommandResult foreign_class = run_edgeqc(train);
    CHECK(foreign_class.exit_code == 1);
    CHECK(foreign_class.output.find("scratch' is not one of the model's classes") != std::string::npos);
}

TEST_CASE("cli: a missing folder, a single class and an empty class folder are refused") {
    TempFolder folder;
    const std::string model = quoted(folder.file("m.eqc"));
    const CommandResult missing = run_edgeqc("train " + quoted(folder.file("nowhere")) + " --out " + model);
    CHECK(missing.exit_code == 1);
    CHECK(missing.output.find("does not exist") != std::string::npos);

    const std::string data = two_class_dataset(folder);
    fs::rename(data + "/normal", folder.file("aside"));
    const CommandResult single = run_edgeqc("train " + quoted(data) + " --out " + model);
    CHECK(single.exit_code == 1);
    CHECK(single.output.find("two") != std::string::npos);

    fs::create_directories(data + "/empty_class");
    const CommandResult empty = run_edgeqc("train " + quoted(data) + " --out " + model);
    CHECK(empty.exit_code == 1);
    CHECK(empty.output.find("empty_class") != std::string::npos);
}

TEST_CASE("cli: corrupt images are skipped and counted, or fatal with --strict; other files are counted") {
    TempFolder folder;
    const std::string data = two_class_dataset(folder);
    write_bytes(data + "/crack/broken.png", {0x89, 'P', 'N', 'G', 1, 2, 3});
    write_bytes(data + "/normal/notes.txt", {'h', 'i'});
    write_bytes(data + "/normal/.hidden.png", {0});
    const std::string model = quoted(folder.file("m.eqc"));
    const CommandResult lenient = run_edgeqc("train " + quoted(data) + " --out " + model + kTinyTraining + " --val-split 0");
    INFO(lenient.output);
    CHECK(lenient.exit_code == 0);
    CHECK(lenient.output.find("skipping image") != std::string::npos);
    CHECK(lenient.output.find("broken.png") != std::string::npos);
    CHECK(lenient.output.find("skipped 1 hidden and 1 non-image") != std::string::npos);
    // Without a validation split no epoch is called the best one; the last is kept.
    CHECK(lenient.output.find("*best") == std::string::npos);
    CHECK(lenient.output.find("the last epoch is kept") != std::string::npos);

    // With augmentation a second, unaugmented pass re-estimates batch norm over the same images: still one warning.
    const CommandResult augmented = run_edgeqc("train " + quoted(data) + " --out " + model + kTinyTraining + " --val-split 0 --noise 0.05");
    INFO(augmented.output);
    CHECK(augmented.exit_code == 0);
    CHECK(augmented.output.find("re-estimated") != std::string::npos);
    const std::size_t first_warning = augmented.output.find("skipping image");
    REQUIRE(first_warning != std::string::npos);
    CHECK(augmented.output.find("skipping image", first_warning + 1) == std::string::npos);

    const CommandResult evaluated = run_edgeqc("eval " + model + " " + quoted(data));
    CHECK(evaluated.exit_code == 0);
    CHECK(evaluated.output.find("skipped 1 corrupt image") != std::string::npos);

    const CommandResult strict = run_edgeqc("train " + quoted(data) + " --out " + model + kTinyTraining + " --strict");
    CHECK(strict.exit_code == 1);
    CHECK(strict.output.find("broken.png") != std::string::npos);
}

TEST_CASE("cli: damaged or foreign model files and bad images give one clear error") {
    TempFolder folder;
    const std::string data = two_class_dataset(folder);
    const std::string model = folder.file("m.eqc");
    REQUIRE(run_edgeqc("train " + quoted(data) + " --out " + quoted(model) + kTinyTraining).exit_code == 0);
    std::vector<unsigned char> bytes = read_bytes(model);
    write_bytes(folder.file("truncated.eqc"), std::vector<unsigned char>(bytes.begin(), bytes.begin() + 100));
    const CommandResult truncated = run_edgeqc("eval " + quoted(folder.file("truncated.eqc")) + " " + quoted(data));
    CHECK(truncated.exit_code == 1);
    CHECK(truncated.output.find("truncated") != std::string::npos);

    bytes[bytes.size() / 2] ^= 0x01;
    write_bytes(folder.file("flipped.eqc"), bytes);
    const CommandResult flipped = run_edgeqc("predict " + quoted(folder.file("flipped.eqc")) + " " + quoted(data + "/crack/crack_0000.png"));
    CHECK(flipped.exit_code == 1);
    CHECK(flipped.output.find("checksum") != std::string::npos);

    const CommandResult foreign = run_edgeqc("eval " + quoted(data + "/crack/crack_0000.png") + " " + quoted(data));
    CHECK(foreign.exit_code == 1);
    CHECK(foreign.output.find("not an edgeqc model file") != std::string::npos);

    write_bytes(folder.file("bad.jpg"), {0xFF, 0xD8, 0xFF, 0x00});
    const CommandResult bad_image = run_edgeqc("predict " + quoted(model) + " " + quoted(folder.file("bad.jpg")) + " " +
                                               quoted(data + "/crack/crack_0000.png"));
    CHECK(bad_image.exit_code == 1);  // one image failed ...
    CHECK(bad_image.output.find("bad.jpg: error") != std::string::npos);
    CHECK(bad_image.output.find("crack_0000.png: ") != std::string::npos);  // ... the other was still classified

    // Outputs that would overwrite the model or each other are refused before any work, the model untouched.
    const std::vector<unsigned char> model_bytes = read_bytes(model);
    const CommandResult report_over_model = run_edgeqc("eval " + quoted(model) + " " + quoted(data) + " --report " + quoted(model));
    CHECK(report_over_model.exit_code == 1);
    CHECK(report_over_model.output.find("--report and MODEL name the same file") != std::string::npos);
    CHECK(read_bytes(model) == model_bytes);
    const CommandResult report_over_out = run_edgeqc("train " + quoted(data) + " --out " + quoted(model) + " --report " +
                                                     quoted(model) + kTinyTraining);
    CHECK(report_over_out.exit_code == 1);
    CHECK(report_over_out.output.find("--report and --out name the same file") != std::string::npos);
    CHECK(read_bytes(model) == model_bytes);
}

TEST_CASE("cli: edgeqc-infer, the runtime-only binary, classifies exactly as edgeqc predict") {
    TempFolder folder;
    const std::string data = two_class_dataset(folder);
    const std::string model = folder.file("m.eqc");
    REQUIRE(run_edgeqc("train " + quoted(data) + " --out " + quoted(model) + kTinyTraining).exit_code == 0);
    std::string images;
    for (const char* name : {"crack/crack_0000.png", "crack/crack_0001.png", "normal/normal_0000.png", "normal/normal_0002.png"})
        images += " " + quoted(data + "/" + name);
    for (const std::string format : {"", " --json"}) {
        CAPTURE(format);
        const CommandResult predicted = run_edgeqc("predict " + quoted(model) + images + format);
        const CommandResult inferred = run_edgeqc_infer(quoted(model) + images + format);
        CHECK(predicted.exit_code == 0);
        CHECK(inferred.exit_code == 0);
        CHECK(std::count(inferred.output.begin(), inferred.output.end(), '\n') == 4);
        CHECK(inferred.output == predicted.output);
    }
    const CommandResult memory = run_edgeqc_infer(quoted(model) + images + " --memory");
    CHECK(memory.output.find("plan memory") != std::string::npos);
    const CommandResult missing = run_edgeqc_infer(quoted(folder.file("none.eqc")) + images);
    CHECK(missing.exit_code == 1);
    CHECK(missing.output.find("edgeqc-infer: error: model file") != std::string::npos);
    CHECK(run_edgeqc_infer("--help").output.find("--threads") != std::string::npos);
    CHECK(run_edgeqc_infer("").exit_code == 1);
}

TEST_CASE("cli: bad option values are refused with the option's name") {
    TempFolder folder;
    const std::string data = two_class_dataset(folder);
    const std::string train = "train " + quoted(data) + " --out ";
    const std::string out = quoted(folder.file("m.eqc"));
    const std::pair<std::string, const char*> cases[] = {{out + " --size 80by120", "--size"},
                                                         {out + " --size 2x2", "--size"},
                                                         {out + " --arch c32-zz-fc", "bad layer"},
                                                         {out + " --optimizer rmsprop", "unknown optimizer"},
                                                         {out + " --channels 2", "channels"},
                                                         {out + " --threads -1", "--threads"},
                                                         {out + " --threads 2000", "--threads must be 0 (all cores) to 1024"},
                                                         {out + " --epochs 2147483647", "--epochs must be 1 to 100000"},
                                                         {out + " --val-split 0.3 --val " + quoted(data), "excludes"},
                                                         {out + " --resume --lr 0.1", "drop --lr"},
                                                         {out + " --epochs", "edgeqc: error: --epochs"},
                                                         {"/nonexistent-folder/m.eqc", "does not exist"}};
    for (const auto& bad : cases) {  // not a structured binding: clang 14's INFO lambda cannot capture one
        const CommandResult result = run_edgeqc(train + bad.first);
        INFO(bad.first << " gave: " << result.output);
        CHECK(result.exit_code != 0);
        CHECK(result.output.find(bad.second) != std::string::npos);
    }
}

TEST_CASE("cli: Ctrl-C stops training cleanly with a valid checkpoint and a resume hint") {
    TempFolder folder;
    const std::string data = two_class_dataset(folder);
    const std::string model = folder.file("m.eqc");
    // Interrupted once two epochs are done, so a checkpoint exists and an epoch is in flight.
    const InterruptedRun run = interrupt_edgeqc("train " + quoted(data) + " --out " + quoted(model) +
                                                    " --arch c4bn-p-c6-p-fc --size 16x20 --epochs 100000 --batch 2 --threads 1",
                                                "epoch   2/");
    const std::string& output = run.output;
    const int status = run.status;
    INFO(output);
    REQUIRE(run.interrupted);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 130);
    CHECK(output.find("continue with --resume") != std::string::npos);
    const CommandResult resumed = run_edgeqc("eval " + quoted(folder.file("m.last.eqc")) + " " + quoted(data));
    CHECK(resumed.exit_code == 0);
}

TEST_CASE("cli: kill -9 at 20 random moments of training leaves only model files that load, and the next run works") {
    TempFolder folder;
    const std::string data = two_class_dataset(folder);
    const std::string model = folder.file("m.eqc");
    const std::string training = "train " + quoted(data) + " --out " + quoted(model) +
                                 " --arch c4bn-p-c6-p-fc --size 16x20 --batch 2 --threads 1";
    Rng rng(2026);  // the same moments on every run of the test
    for (int trial = 0; trial < 20; ++trial) {
        CAPTURE(trial);
        const auto [child, output_fd] = start_edgeqc(training + " --epochs 100000");
        std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng.below(1400)));
        ::kill(child, SIGKILL);
        ::close(output_fd);
        int status = 0;
        ::waitpid(child, &status, 0);
        for (const std::string& path : {model, folder.file("m.last.eqc")})
            if (fs::exists(path)) CHECK_NOTHROW(load_model(path));  // every file there is whole: old or new, never half
    }
    const CommandResult next = run_edgeqc(training + " --epochs 1");
    INFO(next.output);
    CHECK(next.exit_code == 0);
    CHECK_NOTHROW(load_model(model));
    for (const auto& entry : fs::directory_iterator(folder.str()))  // the killed writers' temporaries are gone
        CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
}
