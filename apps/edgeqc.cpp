// The `edgeqc` command-line tool: parses options with CLI11 and calls the library for each subcommand.
// No training, evaluation or file-format logic lives here.
#include <CLI/CLI.hpp>
#include <omp.h>

#include <csignal>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "data/augment.hpp"
#include "data/classifier.hpp"
#include "data/dataset.hpp"
#include "data/image.hpp"
#include "data/synth.hpp"
#include "data/voc_import.hpp"
#include "engine/architecture.hpp"
#include "engine/error.hpp"
#include "engine/json_output.hpp"
#include "engine/kernels.hpp"
#include "engine/model_file.hpp"
#include "progress.hpp"
#include "optim/evaluation.hpp"
#include "optim/html_report.hpp"
#include "optim/pruning.hpp"
#include "optim/quantization.hpp"
#include "optim/recipe.hpp"
#include "optim/trainer.hpp"
#include "optim/training_kernels.hpp"
#include "prediction_output.hpp"
#include "max_pixels_option.hpp"
#include "tool_errors.hpp"

namespace {

using namespace edgeqc;

// "80x120" -> height 80, width 120.

constexpr int kMaxThreads = 1024;

void apply_threads(int threads) {
    if (threads < 0 || threads > kMaxThreads)  // OpenMP aborts when it cannot start the threads asked for
        throw Error("--threads must be 0 (all cores) to " + std::to_string(kMaxThreads));
    if (threads > 0) omp_set_num_threads(threads);
}

void on_interrupt(int) {
    training_stop_requested() = true;
    std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

std::string version_text() {
    std::string text = std::string("edgeqc ") + EDGEQC_VERSION + "\nkernels: " + kernels().name + " (" +
                       kernels().kernels_used + "; available:";
    for (const KernelTable* table : available_kernel_tables()) text += " " + table->name;
    text += "; EDGEQC_ARCH=<arch> forces one)\ntraining kernels: " + training_kernels().kernels_used +
            "\nthreads: " + std::to_string(omp_get_max_threads()) + "\n";
    return text;
}

// The network input and its preprocessing, shared by train and augment-preview.
struct InputArguments {
    std::string size = "80x120", denoise = "none";
    InputFormat format;
};

void add_input_options(CLI::App* cmd, InputArguments& a) {
    Enhancement& e = a.format.enhancement;
    cmd->add_option("--size", a.size, "Input height x width the images are resized to")->capture_default_str();
    cmd->add_option("--channels", a.format.channels, "1 (converted to grayscale) or 3 (RGB)")->capture_default_str();
    cmd->add_option("--denoise", a.denoise, "Noise reduction after resizing: none, median or gaussian")->capture_default_str();
    cmd->add_option("--denoise-size", e.denoise_size, "Denoising window side (odd, 3-9)")->capture_default_str();
    cmd->add_option("--clahe", e.clahe_clip, "CLAHE contrast enhancement with this clip limit (0 = off; 2 is typical)")
        ->capture_default_str();
    cmd->add_option("--clahe-tiles", e.clahe_tiles, "CLAHE regions per side")->capture_default_str();
}

InputFormat input_format_from(InputArguments& a) {
    parse_input_size(a.size, a.format.height, a.format.width);
    a.format.enhancement.denoise = parse_denoise(a.denoise);
    validate_input_format(a.format);
    return a.format;
}

// The flags of recipe-table options, for the commands that take them (train: all; augment-preview: augmentation).
struct RecipeFlags {
    std::map<std::string, std::string> text;  // flag -> the text given for it
    std::map<std::string, bool> switches;     // flag -> the switch given
    bool augment = false;                     // --augment: the default augmentation set under the given parts
    std::string init;                         // --init: a scheme or a start model
    CLI::App* command = nullptr;
    std::set<std::string> added;  // the table's flags this command took (it may have others of the same name)
    // Whether the command line gave the flag; false for a flag this command does not have.
    bool given(const std::string& flag) const {
        const CLI::Option* option = command->get_option_no_throw(flag);
        return option && option->count() > 0;
    }
};

bool is_augmentation(const RecipeOption& option) { return option.key.rfind("augment_", 0) == 0; }

// A default as --help shows it: numbers short ("0.001", not the checkpoint's exact "0.0010000000474974513"), and the
// kind of value the option takes.
void show_default(CLI::Option* option, const std::string& text) {
    char* end = nullptr;
    const double number = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0') {
        option->type_name("TEXT")->default_str(text);
        return;
    }
    char shown[32];
    std::snprintf(shown, sizeof shown, "%g", number);
    option->type_name(text.find_first_of(".eE") == std::string::npos ? "INT" : "FLOAT")->default_str(shown);
}

// Adds the flags of the table's options that `wanted` selects, in the table's order; `after` adds a command's own
// options behind the one of the flag it names (train puts the input options behind --arch).
void add_recipe_flags(CLI::App* cmd, RecipeFlags& flags, bool (*wanted)(const RecipeOption&),
                      const std::function<void(const std::string&)>& after = {}) {
    flags.command = cmd;
    const TrainOptions defaults;
    for (const RecipeOption& option : recipe_options()) {
        if (option.flag.empty() || !wanted(option)) continue;
        flags.added.insert(option.flag);
        cmd->option_defaults()->group(option.group);
        if (is_augmentation(option) && option.key == "augment_hflip")
            cmd->add_flag("--augment", flags.augment,
                          "Augment training images with the default set: " + describe_augmentation(default_augmentation()));
        if (option.flag == "--hflip" || option.flag == "--vflip") {
            cmd->add_flag(option.flag + ",!--no-" + option.flag.substr(2), flags.switches[option.flag], option.help);
        } else if (option.is_switch) {
            cmd->add_flag(option.flag, flags.switches[option.flag], option.help);
        } else {
            std::string& target = option.flag == "--init" ? flags.init : flags.text[option.flag];
            CLI::Option* added = cmd->add_option(option.flag, target, option.help);
            if (!option.missing_means || *option.missing_means) show_default(added, option.get(defaults));
        }
        if (after) after(option.flag);
    }
}

// The given flags, applied in the table's order over `options` (and over --augment's set for the augmentation
// parts). --init is left to the caller.
void apply_recipe_flags(const RecipeFlags& flags, TrainOptions& options) {
    if (flags.augment) options.augment = default_augmentation();
    for (const RecipeOption& option : recipe_options()) {
        if (!flags.added.count(option.flag) || option.flag == "--init" || !flags.given(option.flag)) continue;
        const std::string text =
            option.is_switch ? (flags.switches.at(option.flag) ? "1" : "0") : flags.text.at(option.flag);
        try {
            option.set(options, text);
        } catch (const Error& e) {
            throw Error(option.flag + ": " + e.what());
        }
    }
    validate_augment_options(options.augment);
}

struct TrainArguments {
    TrainOptions options;
    InputArguments input;
    RecipeFlags recipe;
    int threads = 0;
};

// The input options: the model description holds them, so --init MODEL brings its own and --resume the checkpoint's.
const char* const kInputFlags[] = {"--size", "--channels", "--denoise", "--denoise-size", "--clahe", "--clahe-tiles"};

void add_train(CLI::App& app, TrainArguments& a) {
    CLI::App* cmd = app.add_subcommand("train", "Train a classifier on a labelled folder (DATA/<class>/*.png|jpg|...)");
    TrainOptions& o = a.options;
    cmd->add_option("data", o.data_dir, "Folder with one subfolder of images per class")->required();
    cmd->add_option("--out,-o", o.output_path, "Model file to write (best epoch); NAME.last.eqc and NAME.log.csv/json go beside it")->required();
    add_recipe_flags(cmd, a.recipe, [](const RecipeOption&) { return true; }, [&](const std::string& flag) {
        if (flag == "--arch") add_input_options(cmd, a.input);
    });
    cmd->get_option("--val")->excludes(cmd->get_option("--val-split"));
    cmd->option_defaults()->group("Data and output");
    cmd->add_option("--threads", a.threads, "Threads (0 = all cores)")->capture_default_str();
    cmd->add_option("--report", o.report_path, "Write an HTML report (curves, validation metrics, ROC, worst mistakes)");
    cmd->add_flag("--resume", o.resume,
                  "Continue from NAME.last.eqc with its recipe and epoch counts; only --epochs (or, in a two-phase run, "
                  "--phase2-epochs) to extend it, --threads and the paths may be given");
}

// --init: a scheme, or a start model that brings its own architecture and input format.
void apply_init(const RecipeFlags& flags, TrainOptions& options) {
    if (!flags.given("--init")) return;
    if (flags.init == "he" || flags.init == "torch") {
        options.init = parse_init_scheme(flags.init);
        return;
    }
    for (const RecipeOption& option : recipe_options())
        if (option.decided_by_start_model && flags.given(option.flag))
            throw Error(option.flag + " comes from the start model given to --init; drop it");
    for (const char* flag : kInputFlags)
        if (flags.given(flag)) throw Error(std::string(flag) + " comes from the start model given to --init; drop it");
    options.init_model = flags.init;
}

int run_train(TrainArguments& a) {
    apply_threads(a.threads);
    const RecipeFlags& flags = a.recipe;
    if (a.options.resume) {
        std::vector<std::string> refused(std::begin(kInputFlags), std::end(kInputFlags));
        refused.push_back("--augment");
        for (const RecipeOption& option : recipe_options())
            if (!option.flag.empty() && !option.given_on_resume) refused.push_back(option.flag);
        for (const std::string& flag : refused)
            if (flags.given(flag))
                throw Error("--resume continues the checkpoint's recipe; drop " + flag +
                            " (only --epochs, --phase2-epochs, --threads and the paths may be given)");
    }
    a.options.epochs_given = flags.given("--epochs");
    a.options.phase2_epochs_given = flags.given("--phase2-epochs");
    a.options.input = input_format_from(a.input);
    apply_recipe_flags(flags, a.options);
    apply_init(flags, a.options);
    std::signal(SIGINT, on_interrupt);
    ConsoleObserver console;
    const TrainSummary summary = train(a.options, console);
    if (summary.interrupted) return 130;
    if (summary.validated)
        std::printf("best %s %.4f at epoch %d; model written to '%s'\n", monitor_name(summary.monitor),
                    summary.best_value, summary.best_epoch, a.options.output_path.c_str());
    else
        std::printf("model written to '%s' (no validation set: the last epoch is kept)\n", a.options.output_path.c_str());
    return 0;
}

struct EvalArguments {
    std::string model, data, report, compare;
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
    cmd->add_option("--report", a.report, "Also write an HTML report (with the training curves when the model's log is beside it)");
    cmd->add_flag("--strict", a.strict, "Stop on a corrupt image instead of skipping it");
    cmd->add_option("--compare", a.compare,
                    "Also evaluate OTHER_MODEL (e.g. the float original of an int8 model) and print the top-1 agreement "
                    "and the metric differences (MODEL minus OTHER_MODEL)")->type_name("OTHER_MODEL");
}

// How two models' evaluations on the same images differ: the fraction of images given the same top class, and
// the metrics of the first minus those of the second.
struct Comparison {
    std::string other;
    double agreement = 0.0;
    std::size_t images = 0;
    double accuracy = 0.0, macro_f1 = 0.0, balanced_accuracy = 0.0;
};

Comparison compare_evaluations(const Evaluation& e, const Evaluation& other, const std::string& other_path) {
    if (e.report.class_names != other.report.class_names)
        throw Error("--compare: '" + other_path + "' has other classes than the model");
    std::map<std::string, std::size_t> position;
    for (std::size_t i = 0; i < other.image_paths.size(); ++i) position[other.image_paths[i]] = i;
    const std::size_t classes = e.report.class_names.size();
    const auto top = [classes](const std::vector<float>& p, std::size_t i) {
        return std::max_element(p.begin() + static_cast<std::ptrdiff_t>(i * classes),
                                p.begin() + static_cast<std::ptrdiff_t>((i + 1) * classes)) -
               (p.begin() + static_cast<std::ptrdiff_t>(i * classes));
    };
    Comparison c;
    c.other = other_path;
    std::size_t same = 0;
    for (std::size_t i = 0; i < e.image_paths.size(); ++i) {
        const auto found = position.find(e.image_paths[i]);
        if (found == position.end()) continue;
        ++c.images;
        same += top(e.probabilities, i) == top(other.probabilities, found->second);
    }
    c.agreement = c.images ? static_cast<double>(same) / static_cast<double>(c.images) : 0.0;
    c.accuracy = e.report.accuracy - other.report.accuracy;
    c.macro_f1 = e.report.macro_f1 - other.report.macro_f1;
    c.balanced_accuracy = e.report.balanced_accuracy - other.report.balanced_accuracy;
    return c;
}

void write_evaluation_report(const EvalArguments& a, const LoadedModel& model, const Evaluation& e) {
    ReportContent content;
    content.title = "edgeqc evaluation report: " + std::filesystem::path(a.model).filename().string();
    content.facts = {{"model file", a.model},
                     {"architecture", model.description.architecture},
                     {"input", describe_input_format(model.description.input)},
                     {"written by", "edgeqc " + model.description.writer_version},
                     {"latency", std::to_string(e.milliseconds_per_image) + " ms per image (batch " + std::to_string(e.batch_size) + ")"}};
    content.history = training_curves(a.model);
    content.has_evaluation = true;
    content.evaluated_on = a.data + " (" + std::to_string(e.labels.size()) + " images" +
                           (e.skipped ? ", " + std::to_string(e.skipped) + " corrupt skipped" : "") + ")";
    content.report = e.report;
    content.image_paths = e.image_paths;
    content.labels = e.labels;
    content.probabilities = e.probabilities;
    write_html_report(a.report, content);
}

int run_eval(const EvalArguments& a) {
    apply_threads(a.threads);
    if (!a.report.empty()) {
        check_distinct_outputs({{"MODEL", a.model}, {"--compare", a.compare}, {"--report", a.report}});
        check_output_writable(a.report, "the report");
    }
    const LoadedModel model = load_model(a.model);
    ConsoleObserver console;
    const Evaluation e = evaluate_folder(model, a.data, a.batch, a.strict, console);
    std::optional<Comparison> comparison;
    if (!a.compare.empty())
        comparison = compare_evaluations(e, evaluate_folder(load_model(a.compare), a.data, a.batch, a.strict, console),
                                         a.compare);
    if (!a.report.empty()) write_evaluation_report(a, model, e);
    if (a.json) {
        nlohmann::json out = report_to_json(e.report);
        if (comparison)
            out["compare"] = {{"model", comparison->other},
                              {"images", comparison->images},
                              {"top1_agreement", comparison->agreement},
                              {"accuracy_delta", comparison->accuracy},
                              {"macro_f1_delta", comparison->macro_f1},
                              {"balanced_accuracy_delta", comparison->balanced_accuracy}};
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
        if (comparison)
            std::printf("\ncompared with %s on %zu images: top-1 agreement %.2f %%, accuracy %+.4f, macro-F1 %+.4f, "
                        "balanced accuracy %+.4f\n",
                        comparison->other.c_str(), comparison->images, 100.0 * comparison->agreement,
                        comparison->accuracy, comparison->macro_f1, comparison->balanced_accuracy);
        if (!a.report.empty()) std::printf("report written to '%s'\n", a.report.c_str());
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
    Classifier classifier(load_model(a.model));
    const std::vector<std::string>& classes = classifier.description().class_names;
    int failures = 0;
    for (const std::string& path : a.images) {
        try {
            print_prediction(path, classifier.classify_file(path), classes, a.json);
        } catch (const Error& e) {
            ++failures;
            print_prediction_error(path, e.what(), a.json);
        }
    }
    return failures ? 1 : 0;
}

struct QuantizeArguments {
    std::string model, calibration, out, report, method = "mse", keep = "first";
    int images = 500, threads = 0;
    bool images_requested = false;
    double agreement = 0.995;
    std::uint64_t seed = 1;
    bool json = false;
};

void add_quantize(CLI::App& app, QuantizeArguments& a) {
    CLI::App* cmd = app.add_subcommand(
        "quantize", "Post-training int8 quantization: calibrate on images, write an int8 model for eval, predict and "
                    "the edge binary");
    cmd->add_option("model", a.model, "Trained float model (.eqc)")->required();
    cmd->add_option("calibration", a.calibration,
                    "Calibration images: a labelled folder (e.g. the training data) or any folder of images")->required();
    cmd->add_option("--out", a.out, "Where to write the int8 model (.eqc)")->required();
    cmd->add_option("--method", a.method, "Activation calibration: mse, kl (entropy), percentile (99.99 %) or minmax")
        ->check(CLI::IsMember({"kl", "percentile", "mse", "minmax"}))
        ->capture_default_str();
    cmd->add_option("--images", a.images, "Calibration images to use at most (drawn at random with --seed); a fifth "
                                          "is held out to check agreement with the float model")
        ->capture_default_str()
        ->each([&a](const std::string&) { a.images_requested = true; });
    cmd->add_option("--keep-fp32", a.keep,
                    "Layers to keep in float: names such as conv1,fc2 (first = the first layer, whose input is the "
                    "image), none, or auto: the first layer, then the most sensitive others until the top-1 agreement "
                    "with the float model reaches --agreement")
        ->type_name("LAYERS|none|auto")
        ->capture_default_str();
    cmd->add_option("--agreement", a.agreement, "Top-1 agreement target of --keep-fp32 auto")->capture_default_str();
    cmd->add_option("--report", a.report, "Also write an HTML report of every layer's scale, clipping and sensitivity");
    cmd->add_flag("--json", a.json, "Print the result as JSON instead of text");
    cmd->add_option("--seed", a.seed, "Seed of the calibration image draw")->capture_default_str();
    cmd->add_option("--threads", a.threads, "Threads (0 = all cores)")->capture_default_str();
}

// "conv1, fc2" -> {"conv1", "fc2"}: comma-separated, blanks around names ignored.
std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find(',', start), text.size());
        const std::string item = text.substr(start, end - start);
        const auto first = item.find_first_not_of(" \t"), last = item.find_last_not_of(" \t");
        if (first != std::string::npos) items.push_back(item.substr(first, last - first + 1));
        start = end + 1;
    }
    return items;
}

std::string percent(double fraction) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f %%", 100.0 * fraction);
    return text;
}

std::string scientific(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.4g", value);
    return text;
}

int run_quantize(const QuantizeArguments& a) {
    apply_threads(a.threads);
    check_distinct_outputs({{"--out", a.out}, {"--report", a.report}});
    check_output_writable(a.out);
    if (!a.report.empty()) check_output_writable(a.report, "the report");
    const LoadedModel model = load_model(a.model);
    QuantizeOptions options;
    options.calibration_dir = a.calibration;
    options.method = parse_calibration_method(a.method);
    options.images = a.images;
    options.images_requested = a.images_requested;
    options.agreement_target = a.agreement;
    options.seed = a.seed;
    options.auto_keep = a.keep == "auto";
    if (a.keep == "none") options.keep_fp32.clear();
    else if (!options.auto_keep) options.keep_fp32 = split_list(a.keep);
    ConsoleObserver console(a.json);
    const QuantizeResult result = quantize(model, options, console);
    save_model(a.out, result.model);

    const std::vector<std::string> header = {"layer", "runs in", "input scale", "zero point", "range top", "clipped",
                                             "weight scales", "sensitivity"};
    std::vector<std::vector<std::string>> rows;
    for (const LayerQuantization& l : result.layers)
        rows.push_back({l.name, l.quantized ? "int8" : "float", scientific(l.input.scale), std::to_string(l.input.zero_point),
                        scientific(l.threshold), percent(l.clipped),
                        l.quantized ? scientific(l.weight_scale_min) + " - " + scientific(l.weight_scale_max) : "-",
                        l.sensitivity < 0.0 ? "-" : percent(l.sensitivity) + " (logits " + percent(l.logit_error) + ")"});
    const auto float_bytes = std::filesystem::file_size(a.model), int8_bytes = std::filesystem::file_size(a.out);
    const std::string checked = result.held_out_images
                                    ? std::to_string(result.held_out_images) + " held-out images"
                                    : std::to_string(result.calibration_images) + " calibration images (fewer than 5: none held out)";
    if (!a.report.empty()) {
        ReportContent content;
        content.title = "edgeqc quantization report: " + std::filesystem::path(a.out).filename().string();
        content.facts = {{"float model", a.model},
                         {"int8 model", a.out},
                         {"architecture (folded)", result.model.description.architecture},
                         {"calibration", a.calibration + ", " + std::to_string(result.calibration_images) + " images, method " + a.method},
                         {"top-1 agreement with the float model", percent(result.agreement) + " on " + checked},
                         {"file size", std::to_string(int8_bytes) + " bytes (float: " + std::to_string(float_bytes) + ")"}};
        content.tables.push_back({"Layers", header, rows});
        write_html_report(a.report, content);
    }
    if (a.json) {
        nlohmann::json layers = nlohmann::json::array();
        for (const LayerQuantization& l : result.layers)
            layers.push_back({{"layer", l.name},
                              {"int8", l.quantized},
                              {"input_scale", l.input.scale},
                              {"zero_point", l.input.zero_point},
                              {"range_top", l.threshold},
                              {"clipped_fraction", l.clipped},
                              {"weight_scale_min", l.weight_scale_min},
                              {"weight_scale_max", l.weight_scale_max},
                              {"sensitivity", l.sensitivity < 0.0 ? nlohmann::json() : nlohmann::json(l.sensitivity)},
                              {"logit_error", l.logit_error < 0.0 ? nlohmann::json() : nlohmann::json(l.logit_error)}});
        std::cout << json_text({{"model", a.out},
                                {"float_model", a.model},
                                {"method", a.method},
                                {"calibration_images", result.calibration_images},
                                {"held_out_images", result.held_out_images},
                                {"skipped_images", result.skipped_images},
                                {"top1_agreement", result.agreement},
                                {"agreement_target_met", result.target_met},
                                {"file_bytes", int8_bytes},
                                {"float_file_bytes", float_bytes},
                                {"layers", layers}},
                               2)
                  << "\n";
        return 0;
    }
    std::printf("%-8s %-7s %12s %5s %11s %9s %23s  %s\n", "layer", "runs in", "input scale", "zp", "range top", "clipped",
                "weight scales", "sensitivity");
    for (const auto& row : rows)
        std::printf("%-8s %-7s %12s %5s %11s %9s %23s  %s\n", row[0].c_str(), row[1].c_str(), row[2].c_str(),
                    row[3].c_str(), row[4].c_str(), row[5].c_str(), row[6].c_str(), row[7].c_str());
    std::printf("top-1 agreement with the float model: %s on %s\n", percent(result.agreement).c_str(), checked.c_str());
    if (!result.target_met)
        std::printf("warning: the agreement target %s was not reached with every layer but one in float\n",
                    percent(a.agreement).c_str());
    if (result.skipped_images) std::printf("skipped %zu corrupt calibration images\n", result.skipped_images);
    std::printf("int8 model written to '%s' (%ju bytes, %.1f %% of the float model)\n", a.out.c_str(),
                static_cast<std::uintmax_t>(int8_bytes), 100.0 * static_cast<double>(int8_bytes) / static_cast<double>(float_bytes));
    if (!a.report.empty()) std::printf("report written to '%s'\n", a.report.c_str());
    return 0;
}

struct PruneArguments {
    PruneOptions options;
    std::string model, criterion = "auto", per_layer, report;
    double ratio = 0.5, target_flops = 0.0;
    CLI::Option* target_flops_option = nullptr;
    RecipeFlags recipe;
    int threads = 0;
    bool json = false;
};

// The recipe options fine-tuning takes: those of one training run, not the architecture (the model's), the start
// model, the epochs (--finetune-epochs), transfer learning's phases or pseudo-labelling.
bool fine_tuning_option(const RecipeOption& option) {
    const std::string& key = option.key;
    for (const char* excluded : {"epochs", "init", "freeze", "unfreeze", "unlabelled"})
        if (key == excluded || key.rfind(std::string(excluded) + "_", 0) == 0) return false;
    return !key.empty() && key.rfind("phase2", 0) != 0 && key.rfind("pseudo", 0) != 0;
}

void add_prune(CLI::App& app, PruneArguments& a) {
    CLI::App* cmd = app.add_subcommand(
        "prune", "Structured pruning: remove whole conv filters step by step, fine-tuning after each step, into a "
                 "smaller dense model that every command runs");
    PruneOptions& o = a.options;
    cmd->add_option("model", a.model, "Trained float model (.eqc)")->required();
    cmd->add_option("data", o.finetune.data_dir, "The labelled folder the model was trained on (fine-tuning data)")
        ->required();
    cmd->add_option("--out,-o", o.output_path,
                    "The pruned model (.eqc); with several steps, NAME.stepN.eqc beside it hold the steps before the "
                    "last")
        ->required();
    CLI::Option* ratio = cmd->add_option("--ratio", a.ratio, "Share of all conv filters to remove (ranked across layers)")
                             ->capture_default_str();
    a.target_flops_option = cmd->add_option("--target-flops", a.target_flops,
                                         "Share of the FLOPs to keep instead (e.g. 0.4), removing the least important "
                                         "filters across layers");
    CLI::Option* per_layer = cmd->add_option("--per-layer", a.per_layer,
                                             "Per-layer shares to remove instead, e.g. c3=0.75,c4=0.75 (c1 = first conv)");
    ratio->excludes(a.target_flops_option)->excludes(per_layer);
    a.target_flops_option->excludes(per_layer);
    cmd->add_option("--criterion", a.criterion,
                    "Filter importance: l1 or l2 norm of its weights, bn-gamma (|batch-norm scale|), taylor (first-order "
                    "loss change from gradients on training images), or auto: bn-gamma when batch norm follows every "
                    "conv, else l1")
        ->check(CLI::IsMember({"auto", "l1", "l2", "bn-gamma", "taylor"}))
        ->capture_default_str();
    cmd->add_option("--taylor-images", o.taylor_images, "Training images the taylor criterion takes gradients on, per step")
        ->capture_default_str();
    cmd->add_option("--channel-multiple", o.target.channel_multiple,
                    "Round each layer's kept filters up to a multiple of this (1: no rounding; it measured no faster "
                    "on edgeqc's kernels)")
        ->capture_default_str();
    cmd->add_option("--steps", o.steps, "Prune-then-fine-tune steps to reach the target")->capture_default_str();
    cmd->add_option("--finetune-epochs", o.finetune_epochs, "Fine-tuning epochs after each step (0: none)")
        ->capture_default_str();
    cmd->add_option("--report", a.report,
                    "Also write an HTML report: the steps' table and validation accuracy against batch-1 latency");
    cmd->add_flag("--json", a.json, "Print the steps as JSON instead of text");
    cmd->add_flag("--resume", o.resume,
                  "Continue an interrupted run into --out (same command and options): its finished steps are kept, an "
                  "unfinished fine-tuning continues from its checkpoint");
    cmd->add_option("--threads", a.threads, "Threads (0 = all cores); latencies are measured with them")
        ->capture_default_str();
    add_recipe_flags(cmd, a.recipe, fine_tuning_option);
}

int run_prune(PruneArguments& a) {
    apply_threads(a.threads);
    PruneOptions& o = a.options;
    check_distinct_outputs({{"--out", o.output_path}, {"--report", a.report}, {"the model pruned", a.model}});
    check_output_writable(o.output_path);
    if (!a.report.empty()) check_output_writable(a.report, "the report");
    if (!a.per_layer.empty()) {
        o.target.kind = PruneTarget::Kind::PerLayer;
        o.target.per_layer = parse_per_layer_ratios(a.per_layer);
    } else if (a.target_flops_option->count() > 0) {
        o.target.kind = PruneTarget::Kind::FlopsKept;
        o.target.value = a.target_flops;
    } else {
        o.target.value = a.ratio;
    }
    apply_recipe_flags(a.recipe, o.finetune);
    const LoadedModel model = load_model(a.model);
    o.criterion = a.criterion == "auto" ? default_prune_criterion(model) : parse_prune_criterion(a.criterion);
    std::signal(SIGINT, on_interrupt);
    ConsoleObserver console(a.json);
    const PruneResult result = prune(model, o, console);

    const PruneStep& original = result.steps.front();
    const auto speedup = [&](const PruneStep& s) { return s.latency_ms > 0.0 ? original.latency_ms / s.latency_ms : 0.0; };
    const std::string written = result.interrupted ? result.steps.back().model_path : o.output_path;
    std::vector<std::vector<std::string>> rows;
    for (const PruneStep& s : result.steps) {
        std::string filters;
        for (const int f : s.filters) {
            if (!filters.empty()) filters += '-';
            filters += std::to_string(f);
        }
        char flops[32], latency[48];
        std::snprintf(flops, sizeof flops, "%.1f (%.0f %%)", s.flops * 1e-6, 100.0 * s.flops / original.flops);
        std::snprintf(latency, sizeof latency, "%.2f ms (%.2fx)", s.latency_ms, speedup(s));
        const std::string validation =
            s.validated ? std::string(s.monitor) + " " + std::to_string(s.validation_value).substr(0, 6) : "-";
        rows.push_back({std::to_string(s.step), filters, std::to_string(s.parameters), flops, latency, validation});
    }
    if (!a.report.empty()) {
        ReportContent content;
        content.title = "edgeqc pruning report: " + std::filesystem::path(o.output_path).filename().string();
        content.facts = {{"model pruned", a.model},
                         {"pruned model", written + (result.interrupted ? " (interrupted: last finished step)" : "")},
                         {"fine-tuning data", o.finetune.data_dir},
                         {"criterion", prune_criterion_name(o.criterion)},
                         {"steps", std::to_string(o.steps) + ", " + std::to_string(o.finetune_epochs) +
                                       " fine-tuning epochs each"},
                         {"threads of the latencies", std::to_string(omp_get_max_threads())}};
        content.tables.push_back({"Steps", {"step", "filters per conv", "parameters", "MFLOP/image (of the original)",
                                            "batch-1 latency (speed-up)", "validation"}, rows});
        ReportChart chart{"Validation against batch-1 latency", "batch-1 latency (ms)", "", {}};
        for (const PruneStep& s : result.steps)
            if (s.validated) {
                chart.y_label = s.monitor;
                chart.points.emplace_back(s.latency_ms, s.validation_value);
            }
        if (!chart.points.empty()) content.charts.push_back(chart);
        write_html_report(a.report, content);
    }
    if (a.json) {
        nlohmann::json steps = nlohmann::json::array();
        for (const PruneStep& s : result.steps)
            steps.push_back({{"step", s.step},
                             {"model", s.model_path.empty() ? a.model : s.model_path},
                             {"architecture", s.architecture},
                             {"filters", s.filters},
                             {"parameters", s.parameters},
                             {"flops", s.flops},
                             {"latency_ms", s.latency_ms},
                             {"speedup", speedup(s)},
                             {"validation", s.validated ? nlohmann::json{{s.monitor, s.validation_value}} : nlohmann::json()}});
        std::cout << json_text({{"model", written},
                                {"input", std::to_string(model.description.input.height) + "x" +
                                              std::to_string(model.description.input.width)},
                                {"criterion", prune_criterion_name(o.criterion)},
                                {"interrupted", result.interrupted},
                                {"resumed_steps", result.resumed_steps},
                                {"target_reached", result.target_reached},
                                {"steps", steps}},
                               2)
                  << "\n";
        return result.interrupted ? 130 : 0;
    }
    std::printf("%-4s %-28s %11s %15s %18s  %s\n", "step", "filters per conv", "parameters", "MFLOP/image",
                "batch-1 latency", "validation");
    for (const auto& row : rows)
        std::printf("%-4s %-28s %11s %15s %18s  %s\n", row[0].c_str(), row[1].c_str(), row[2].c_str(), row[3].c_str(),
                    row[4].c_str(), row[5].c_str());
    if (!a.report.empty()) std::printf("report written to '%s'\n", a.report.c_str());
    if (result.interrupted) {
        std::printf("interrupted: the models of the steps listed are complete%s; '%s' was not written (the same command "
                    "with --resume continues)\n",
                    result.steps.size() > 1 ? (", the last '" + written + "'").c_str() : "", o.output_path.c_str());
        return 130;
    }
    std::printf("pruned model written to '%s'\n", o.output_path.c_str());
    return 0;
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
    parse_input_size(a.size, a.options.height, a.options.width);
    ProgressBar progress("synth", static_cast<std::size_t>(a.options.per_class) * kSynthClasses.size(), "img");
    write_synthetic_dataset(a.out, a.options, [&](std::size_t done, std::size_t) { progress.update(done); });
    progress.finish();
    std::printf("wrote %d images per class (%zu classes) to '%s'\n", a.options.per_class, kSynthClasses.size(), a.out.c_str());
    return 0;
}

struct PreviewArguments {
    std::string data, out;
    InputArguments input;
    RecipeFlags augment;
    int images = 6, variants = 7;
    std::uint64_t seed = 1;
};

void add_preview(CLI::App& app, PreviewArguments& a) {
    CLI::App* cmd = app.add_subcommand("augment-preview", "Write a PNG grid of augmented training images to check the "
                                                          "augmentation settings by eye (first column: unaugmented)");
    cmd->add_option("data", a.data, "Labelled folder (DATA/<class>/*) to take images from")->required();
    cmd->add_option("out", a.out, "PNG file to write")->required();
    cmd->add_option("--images", a.images, "Rows: images taken in turn from each class")->capture_default_str();
    cmd->add_option("--variants", a.variants, "Augmented versions per image")->capture_default_str();
    cmd->add_option("--seed", a.seed, "Seed of the random augmentations")->capture_default_str();
    add_input_options(cmd, a.input);
    add_recipe_flags(cmd, a.augment, is_augmentation);
}

int run_preview(PreviewArguments& a) {
    const InputFormat format = input_format_from(a.input);
    TrainOptions recipe;
    apply_recipe_flags(a.augment, recipe);
    AugmentOptions options = recipe.augment;
    if (!options.enabled()) options = default_augmentation();  // nothing chosen: show what --augment would do
    if (a.images < 1 || a.images > 256) throw Error("--images must be between 1 and 256");
    const FolderScan scan = scan_labelled_folder(a.data);
    // Round robin over the classes, so every class shows up in a small grid.
    std::vector<std::vector<std::string>> by_class(scan.class_names.size());
    for (const LabelledImage& image : scan.images) by_class[static_cast<std::size_t>(image.label)].push_back(image.path);
    std::vector<std::string> chosen;
    for (std::size_t round = 0; chosen.size() < static_cast<std::size_t>(a.images) && chosen.size() < scan.images.size(); ++round)
        for (const auto& paths : by_class)
            if (round < paths.size() && chosen.size() < static_cast<std::size_t>(a.images)) chosen.push_back(paths[round]);
    write_png(a.out, augmentation_grid(chosen, format, options, a.variants, a.seed));
    std::printf("wrote %zu images x %d augmented versions (%s) to '%s'\n", chosen.size(), a.variants,
                describe_augmentation(options).c_str(), a.out.c_str());
    return 0;
}

struct ImportVocArguments {
    std::string images, annotations, out;
    VocImportOptions options;
};

void add_import_voc(CLI::App& app, ImportVocArguments& a) {
    CLI::App* cmd = app.add_subcommand("import-voc", "Crop the boxes of Pascal VOC / LabelImg annotations into a labelled "
                                                     "folder (OUT/<label>/*.png) for train");
    cmd->add_option("images", a.images, "Folder with the annotated images (searched recursively by file name)")->required();
    cmd->add_option("annotations", a.annotations, "Folder with the VOC .xml files")->required();
    cmd->add_option("out", a.out, "Output folder")->required();
    cmd->add_option("--pad", a.options.pad, "Pixels added around every box (clipped to the image)")->capture_default_str();
    cmd->add_option("--min-size", a.options.min_size, "Skip boxes narrower or lower than this many pixels")->capture_default_str();
    cmd->add_flag("--strict", a.options.strict, "Stop at the first malformed file, missing image or bad box");
}

int run_import_voc(const ImportVocArguments& a) {
    ProgressBar progress("import-voc", 0, "files");
    std::size_t warnings = 0;
    const VocImportReport r = import_voc(
        a.images, a.annotations, a.out, a.options,
        [&](const std::string& message) {
            if (++warnings <= 20) std::fprintf(stderr, "\rwarning: %s\n", message.c_str());
            else if (warnings == 21) std::fprintf(stderr, "\rwarning: further warnings are only counted\n");
        },
        [&](std::size_t done, std::size_t total) {
            progress.set_total(total);
            progress.update(done);
        });
    progress.finish();
    std::printf("read %zu annotation files with %zu boxes; wrote %zu crops to '%s':\n", r.annotations, r.boxes,
                r.crops_written, a.out.c_str());
    for (const auto& [label, count] : r.crops_per_label) std::printf("  %-24s %6zu\n", label.c_str(), count);
    const std::pair<const char*, std::size_t> skipped[] = {
        {"malformed annotation files", r.malformed_annotations}, {"annotations without their image", r.missing_images},
        {"unreadable images", r.unreadable_images}, {"boxes outside their image", r.boxes_outside},
        {"boxes with unusable labels", r.bad_labels}, {"boxes whose crop name was taken", r.name_collisions},
        {"boxes below --min-size", r.boxes_too_small},
        {"boxes clipped to their image (written)", r.boxes_clipped}};
    for (const auto& [what, count] : skipped)
        if (count) std::printf("  %zu %s\n", count, what);
    if (r.crops_written == 0) throw Error("no crops were written");
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"edgeqc: train, evaluate and run CNNs for visual quality inspection"};
    app.require_subcommand(0, 1);
    bool show_version = false;
    app.add_flag("--version", show_version, "Print the version, the chosen kernels and the thread count");
    std::int64_t max_pixels = 0;
    add_max_pixels_option(app, max_pixels);
    app.fallthrough();  // --max-pixels after the command's name too
    TrainArguments train_arguments;
    EvalArguments eval_arguments;
    PredictArguments predict_arguments;
    SynthArguments synth_arguments;
    PreviewArguments preview_arguments;
    ImportVocArguments import_voc_arguments;
    QuantizeArguments quantize_arguments;
    PruneArguments prune_arguments;
    add_train(app, train_arguments);
    add_eval(app, eval_arguments);
    add_predict(app, predict_arguments);
    add_quantize(app, quantize_arguments);
    add_prune(app, prune_arguments);
    add_synth(app, synth_arguments);
    add_preview(app, preview_arguments);
    add_import_voc(app, import_voc_arguments);
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
    return exit_status_of("edgeqc", " (try a smaller --batch or --size)", [&] {
        if (show_version) {
            std::cout << version_text();
            return 0;
        }
        set_max_image_pixels(max_pixels);
        if (app.got_subcommand("train")) return run_train(train_arguments);
        if (app.got_subcommand("eval")) return run_eval(eval_arguments);
        if (app.got_subcommand("predict")) return run_predict(predict_arguments);
        if (app.got_subcommand("quantize")) return run_quantize(quantize_arguments);
        if (app.got_subcommand("prune")) return run_prune(prune_arguments);
        if (app.got_subcommand("synth")) return run_synth(synth_arguments);
        if (app.got_subcommand("augment-preview")) return run_preview(preview_arguments);
        if (app.got_subcommand("import-voc")) return run_import_voc(import_voc_arguments);
        std::cout << app.help();
        return 2;
    });
}
