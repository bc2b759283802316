// The `edgeqc` command-line tool: parses options with CLI11 and calls the library for each subcommand.
// No training, evaluation or file-format logic lives here.
#include <CLI/CLI.hpp>
#include <omp.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "data/synth.hpp"
#include "engine/architecture.hpp"
#include "engine/error.hpp"
#include "engine/inference.hpp"
#include "engine/json_output.hpp"
#include "engine/kernels.hpp"
#include "engine/model_file.hpp"
#include "engine/progress.hpp"
#include "optim/trainer.hpp"

namespace {

using namespace edgeqc;

// "80x120" -> height 80, width 120.
void parse_size(const std::string& text, int& height, int& width) {
    const std::size_t x = text.find('x');
    try {
        std::size_t used_h = 0, used_w = 0;
        height = std::stoi(text.substr(0, x), &used_h);
        width = std::stoi(text.substr(x + 1), &used_w);
        if (x == std::string::npos || used_h != x || used_w != text.size() - x - 1) throw std::invalid_argument(text);
    } catch (const std::exception&) {
        throw Error("--size must look like 80x120 (height x width), got '" + text + "'");
    }
    if (height < 8 || width < 8 || height > kMaxInputSide || width > kMaxInputSide)
        throw Error("--size sides must be between 8 and " + std::to_string(kMaxInputSide) + " pixels, got '" + text + "'");
}

void apply_threads(int threads) {
    if (threads < 0) throw Error("--threads must be 0 (all cores) or more");
    if (threads > 0) omp_set_num_threads(threads);
}

void on_interrupt(int) {
    training_stop_requested() = true;
    std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

std::string version_text() {
    std::string text = std::string("edgeqc ") + EDGEQC_VERSION + "\nkernels: " + kernels().name + " (available:";
    for (const KernelTable* table : available_kernel_tables()) text += std::string(" ") + table->name;
    text += "; EDGEQC_ARCH=<name> forces one)\nthreads: " + std::to_string(omp_get_max_threads()) + "\n";
    return text;
}

struct TrainArguments {
    TrainOptions options;
    std::string size = "80x120", optimizer = "adam", schedule = "cosine", init = "he";
    int threads = 0;
    CLI::App* command = nullptr;
};

// Options that make up the training recipe; a resumed run takes all of them from its checkpoint.
const char* const kRecipeOptions[] = {"--arch", "--size", "--channels", "--batch", "--lr", "--optimizer",
                                      "--weight-decay", "--schedule", "--warmup-epochs", "--val-split", "--val",
                                      "--seed", "--init", "--strict"};

void add_train(CLI::App& app, TrainArguments& a) {
    CLI::App* cmd = app.add_subcommand("train", "Train a classifier on a labelled folder (DATA/<class>/*.png|jpg|...)");
    a.command = cmd;
    TrainOptions& o = a.options;
    cmd->add_option("data", o.data_dir, "Folder with one subfolder of images per class")->required();
    cmd->add_option("--out,-o", o.output_path, "Model file to write (best epoch); NAME.last.eqc and NAME.log.csv/json go beside it")->required();
    cmd->add_option("--arch", o.architecture, "Network spec, e.g. c32bn-p-c64bn-p-fc; the paper's exact network is " +
                                                  std::string(kPaperArchitecture))->capture_default_str();
    cmd->add_option("--size", a.size, "Input height x width the images are resized to")->capture_default_str();
    cmd->add_option("--channels", o.input.channels, "1 (grayscale) or 3 (RGB)")->capture_default_str();
    cmd->add_option("--epochs", o.epochs, "Number of passes over the training images")->capture_default_str();
    cmd->add_option("--batch", o.batch_size, "Images per optimizer step")->capture_default_str();
    cmd->add_option("--lr", o.learning_rate, "Peak learning rate")->capture_default_str();
    cmd->add_option("--optimizer", a.optimizer, "adam or sgd (momentum 0.9)")->capture_default_str();
    cmd->add_option("--weight-decay", o.optimizer.weight_decay, "Decoupled (AdamW) for adam, L2 for sgd")->capture_default_str();
    cmd->add_option("--schedule", a.schedule, "Learning-rate decay after warm-up: constant or cosine")->capture_default_str();
    cmd->add_option("--warmup-epochs", o.warmup_epochs, "Epochs of linear learning-rate warm-up")->capture_default_str();
    CLI::Option* split = cmd->add_option("--val-split", o.validation_split, "Fraction of each class held out for validation")
                             ->capture_default_str();
    cmd->add_option("--val", o.validation_dir, "Validation folder (instead of --val-split)")->excludes(split);
    cmd->add_option("--seed", o.seed, "Seed for initialisation and shuffling")->capture_default_str();
    cmd->add_option("--init", a.init, "Weight initialisation: he, or torch (PyTorch's default)")->capture_default_str();
    cmd->add_option("--threads", a.threads, "Threads (0 = all cores)")->capture_default_str();
    cmd->add_flag("--strict", o.strict, "Stop on a corrupt image instead of skipping it");
    cmd->add_flag("--resume", o.resume,
                  "Continue from NAME.last.eqc with its recipe and epoch count; only --epochs may be given");
}

int run_train(TrainArguments& a) {
    apply_threads(a.threads);
    if (a.options.resume)
        for (const char* option : kRecipeOptions)
            if (a.command->count(option))
                throw Error(std::string("--resume continues the checkpoint's recipe; drop ") + option +
                            " (only --epochs, --threads and the paths may be given)");
    a.options.epochs_given = a.command->count("--epochs") > 0;
    parse_size(a.size, a.options.input.height, a.options.input.width);
    a.options.optimizer.kind = parse_optimizer_kind(a.optimizer);
    a.options.schedule = parse_schedule_kind(a.schedule);
    a.options.init = parse_init_scheme(a.init);
    std::signal(SIGINT, on_interrupt);
    const TrainSummary summary = train(a.options);
    if (summary.stopped_early) return 130;
    if (summary.best_validation_accuracy >= 0)
        std::printf("best validation accuracy %.4f at epoch %d; model written to '%s'\n",
                    summary.best_validation_accuracy, summary.best_epoch, a.options.output_path.c_str());
    else
        std::printf("model written to '%s' (no validation set: the last epoch is kept)\n", a.options.output_path.c_str());
    return 0;
}

struct EvalArguments {
    std::string model, data;
    int batch = 1, threads = 0;
    bool json = false, strict = false;
};

void add_eval(CLI::App& app, EvalArguments& a) {
    CLI::App* cmd = app.add_subcommand("eval", "Evaluate a model on a labelled folder: per-class report, confusion matrix, ROC AUC, latency");
    cmd->add_option("model", a.model, "Model file (.eqc)")->required();
    cmd->add_option("data", a.data, "Folder with one subfolder per class (names as in the model)")->required();
    cmd->add_option("--batch", a.batch, "Images per forward pass (latency is reported per image)")->capture_default_str();
    cmd->add_option("--threads", a.threads, "Threads (0 = all cores)")->capture_default_str();
    cmd->add_flag("--json", a.json, "Print the metrics as JSON instead of text");
    cmd->add_flag("--strict", a.strict, "Stop on a corrupt image instead of skipping it");
}

int run_eval(const EvalArguments& a) {
    apply_threads(a.threads);
    const LoadedModel model = load_model(a.model);
    const Evaluation e = evaluate_folder(model, a.data, a.batch, a.strict);
    if (a.json) {
        nlohmann::json out = report_to_json(e.report);
        out["model"] = a.model;
        out["data"] = a.data;
        out["milliseconds_per_image"] = e.milliseconds_per_image;
        out["batch"] = e.batch_size;
        out["skipped_images"] = e.skipped;
        std::cout << json_text(out, 2) << "\n";
    } else {
        std::cout << "model " << a.model << " (" << model.description.architecture << ", written by edgeqc "
                  << model.description.writer_version << ") on " << a.data << "\n\n"
                  << format_report(e.report);
        std::printf("\nmean inference latency %.2f ms per image (batch %d, %d threads)\n", e.milliseconds_per_image,
                    e.batch_size, omp_get_max_threads());
        if (e.skipped) std::printf("skipped %zu corrupt images\n", e.skipped);
    }
    return 0;
}

struct PredictArguments {
    std::string model;
    std::vector<std::string> images;
    int threads = 0;
    bool json = false;
};

void add_predict(CLI::App& app, PredictArguments& a) {
    CLI::App* cmd = app.add_subcommand("predict", "Classify images: class, confidence and all probabilities");
    cmd->add_option("model", a.model, "Model file (.eqc)")->required();
    cmd->add_option("images", a.images, "Image files")->required();
    cmd->add_option("--threads", a.threads, "Threads (0 = all cores)")->capture_default_str();
    cmd->add_flag("--json", a.json, "Print one JSON object per image, one per line");
}

int run_predict(const PredictArguments& a) {
    apply_threads(a.threads);
    const LoadedModel model = load_model(a.model);
    const std::vector<std::string>& classes = model.description.class_names;
    Predictor predictor(model);
    int failures = 0;
    for (const std::string& path : a.images) {
        try {
            const Prediction p = predictor.predict(path);
            const auto k = static_cast<std::size_t>(p.class_index);
            if (a.json) {
                nlohmann::json probabilities;
                for (std::size_t c = 0; c < classes.size(); ++c) probabilities[classes[c]] = p.probabilities[c];
                std::cout << json_text({{"image", path}, {"class", classes[k]}, {"confidence", p.probabilities[k]},
                                        {"probabilities", probabilities}})
                          << "\n";
            } else {
                std::printf("%s: %s (%.4f)  [", path.c_str(), classes[k].c_str(), p.probabilities[k]);
                for (std::size_t c = 0; c < classes.size(); ++c)
                    std::printf("%s%s %.4f", c ? ", " : "", classes[c].c_str(), p.probabilities[c]);
                std::printf("]\n");
            }
        } catch (const Error& e) {
            ++failures;
            if (a.json) std::cout << json_text({{"image", path}, {"error", e.what()}}) << "\n";
            else std::fprintf(stderr, "%s: error: %s\n", path.c_str(), e.what());
        }
    }
    return failures ? 1 : 0;
}

struct SynthArguments {
    std::string out, size = "80x120";
    SynthOptions options;
};

void add_synth(CLI::App& app, SynthArguments& a) {
    CLI::App* cmd = app.add_subcommand(
        "synth", "Generate a synthetic additive-manufacturing surface dataset (crack, hole, normal, pinhole, spatter)");
    cmd->add_option("out", a.out, "Output folder; OUT/<class>/*.png are written")->required();
    cmd->add_option("--per-class", a.options.per_class, "Images per class")->capture_default_str();
    cmd->add_option("--size", a.size, "Image height x width (as for train)")->capture_default_str();
    cmd->add_option("--seed", a.options.seed, "Seed; the same seed writes the same files")->capture_default_str();
}

int run_synth(SynthArguments& a) {
    parse_size(a.size, a.options.height, a.options.width);
    ProgressBar progress("synth", static_cast<std::size_t>(a.options.per_class) * kSynthClasses.size(), "img");
    write_synthetic_dataset(a.out, a.options, [&](std::size_t done, std::size_t) { progress.update(done); });
    progress.finish();
    std::printf("wrote %d images per class (%zu classes) to '%s'\n", a.options.per_class, kSynthClasses.size(), a.out.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"edgeqc: train, evaluate and run CNNs for visual quality inspection"};
    app.require_subcommand(0, 1);
    bool show_version = false;
    app.add_flag("--version", show_version, "Print the version, the chosen kernels and the thread count");
    TrainArguments train_arguments;
    EvalArguments eval_arguments;
    PredictArguments predict_arguments;
    SynthArguments synth_arguments;
    add_train(app, train_arguments);
    add_eval(app, eval_arguments);
    add_predict(app, predict_arguments);
    add_synth(app, synth_arguments);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "edgeqc: error: %s\nRun with --help for more information.\n", e.what());
        return 1;
    }
    try {
        if (show_version) {
            std::cout << version_text();
            return 0;
        }
        if (app.got_subcommand("train")) return run_train(train_arguments);
        if (app.got_subcommand("eval")) return run_eval(eval_arguments);
        if (app.got_subcommand("predict")) return run_predict(predict_arguments);
        if (app.got_subcommand("synth")) return run_synth(synth_arguments);
        std::cout << app.help();
        return 2;
    } catch (const Error& e) {
        std::fprintf(stderr, "edgeqc: error: %s\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "edgeqc: error: out of memory (try a smaller --batch or --size)\n");
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "edgeqc: error: internal error: %s\n", e.what());
        return 1;
    }
}
