// The training loop and its bookkeeping (checkpoints, logs, resume).
#include "optim/trainer.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "data/dataset.hpp"
#include "data/loader.hpp"
#include "data/normalization.hpp"
#include "engine/byte_io.hpp"
#include "engine/error.hpp"
#include "optim/evaluation.hpp"
#include "optim/recipe.hpp"
#include "engine/json_output.hpp"
#include "engine/metrics.hpp"
#include "engine/model_file.hpp"
#include "engine/progress.hpp"
#include "layers/batch_norm.hpp"
#include "layers/softmax_cross_entropy.hpp"

namespace edgeqc {

namespace {

struct EpochRecord {
    int epoch = 0;
    double train_loss = 0, train_accuracy = 0;
    double validation_loss = NAN, validation_accuracy = NAN, validation_macro_f1 = NAN;
    double learning_rate = 0, seconds = 0, images_per_second = 0;
    std::size_t pseudo_labelled = 0;  // unlabelled images used this epoch
};

std::string stem_of(const std::string& output_path) {
    const std::filesystem::path path(output_path);
    return (path.parent_path() / path.stem()).string();
}

// Fails before any training time is spent when the model (or report) could not be saved at the end.
void check_output_writable(const std::string& output_path, const char* what = "the model") {
    const std::filesystem::path path(output_path);
    const std::filesystem::path folder = path.parent_path().empty() ? "." : path.parent_path();
    const std::string cannot = std::string("cannot write ") + what + " to '" + output_path + "': ";
    std::error_code error;
    if (!std::filesystem::is_directory(folder, error))
        throw Error(cannot + "folder '" + folder.string() + "' does not exist");
    if (std::filesystem::is_directory(path, error)) throw Error(cannot + "it is a folder");
    const std::string probe = output_path + ".probe" + std::to_string(::getpid());
    std::FILE* file = std::fopen(probe.c_str(), "wb");
    if (!file) throw Error(cannot + std::strerror(errno));
    std::fclose(file);
    std::remove(probe.c_str());
}

// Identifies the training data: the class counts and every image path relative to the data folder. A resumed
// run on changed data would split it differently and leak validation images into training.
std::string data_fingerprint(const FolderScan& scan, const std::string& root) {
    std::uint32_t crc = 0;
    for (const LabelledImage& image : scan.images) {
        const std::string relative = std::filesystem::path(image.path).lexically_relative(root).generic_string();
        crc = crc32(relative.data(), relative.size() + 1, crc);  // with the terminator, so "ab","c" != "a","bc"
    }
    return std::to_string(scan.images.size()) + "-" + std::to_string(crc);
}

void write_logs(const std::string& output_path, const ModelDescription& description, const std::vector<EpochRecord>& history) {
    nlohmann::json epochs = nlohmann::json::array();
    std::string csv =
        "epoch,train_loss,train_accuracy,val_loss,val_accuracy,val_macro_f1,learning_rate,seconds,images_per_second,pseudo_labelled\n";
    for (const EpochRecord& r : history) {
        epochs.push_back({{"epoch", r.epoch}, {"train_loss", r.train_loss}, {"train_accuracy", r.train_accuracy},
                          {"val_loss", number_or_null(r.validation_loss)}, {"val_accuracy", number_or_null(r.validation_accuracy)},
                          {"val_macro_f1", number_or_null(r.validation_macro_f1)}, {"learning_rate", r.learning_rate},
                          {"seconds", r.seconds}, {"images_per_second", r.images_per_second},
                          {"pseudo_labelled", r.pseudo_labelled}});
        char row[512];
        std::snprintf(row, sizeof row, "%d,%.6f,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f,%.2f,%zu\n", r.epoch, r.train_loss,
                      r.train_accuracy, r.validation_loss, r.validation_accuracy, r.validation_macro_f1, r.learning_rate,
                      r.seconds, r.images_per_second, r.pseudo_labelled);
        csv += row;
    }
    const nlohmann::json log = {{"architecture", description.architecture},
                                {"classes", description.class_names},
                                {"epochs", epochs}};
    const std::string text = json_text(log, 2) + "\n";
    write_file_atomically(log_path_for(output_path, "json"), {text.begin(), text.end()});
    write_file_atomically(log_path_for(output_path, "csv"), {csv.begin(), csv.end()});
}

std::vector<EpochRecord> read_history(const std::string& output_path, int epochs_done) {
    std::vector<EpochRecord> history;
    std::ifstream in(log_path_for(output_path, "json"));
    if (!in) return history;
    try {
        const nlohmann::json log = nlohmann::json::parse(in);
        auto number = [](const nlohmann::json& v) { return v.is_null() ? NAN : v.get<double>(); };
        for (const auto& e : log.at("epochs")) {
            if (e.at("epoch").get<int>() > epochs_done) break;
            history.push_back({e.at("epoch").get<int>(), e.at("train_loss").get<double>(),
                               e.at("train_accuracy").get<double>(), number(e.at("val_loss")),
                               number(e.at("val_accuracy")), number(e.at("val_macro_f1")),
                               e.at("learning_rate").get<double>(), e.at("seconds").get<double>(),
                               e.at("images_per_second").get<double>(), e.value("pseudo_labelled", std::size_t{0})});
        }
    } catch (const std::exception&) {
        std::fprintf(stderr, "warning: the previous training log could not be read; it restarts from this epoch\n");
        history.clear();
    }
    return history;
}

[[noreturn]] void diverged(int epoch, const std::string& what, const std::string& output_path) {
    throw Error("training diverged in epoch " + std::to_string(epoch) + " (" + what + "); '" + output_path +
                "' keeps the best model so far; try a lower --lr or more --warmup-epochs");
}

void print_data_summary(const FolderScan& scan, const std::string& root) {
    std::printf("data: %s: %zu images in %zu classes", root.c_str(), scan.images.size(), scan.class_names.size());
    if (scan.skipped_hidden || scan.skipped_non_image)
        std::printf(" (skipped %zu hidden and %zu non-image entries)", scan.skipped_hidden, scan.skipped_non_image);
    std::printf("\n");
    for (std::size_t k = 0; k < scan.class_names.size(); ++k)
        std::printf("  %-24s %6zu\n", scan.class_names[k].c_str(), scan.class_counts[k]);
}

std::vector<std::size_t> class_counts(const std::vector<LabelledImage>& images, std::size_t num_classes) {
    std::vector<std::size_t> counts(num_classes, 0);
    for (const LabelledImage& image : images) ++counts[static_cast<std::size_t>(image.label)];
    return counts;
}

// Prints what --balance does to this training split; returns the loss's class weights (empty unless "weights").
std::vector<float> report_balancing(const std::vector<LabelledImage>& train, const std::vector<std::string>& classes,
                                    Balance balance) {
    const std::vector<std::size_t> counts = class_counts(train, classes.size());
    if (balance == Balance::None) {
        std::printf("balance: none\n");
        return {};
    }
    if (balance == Balance::Oversample) {
        const std::size_t largest = *std::max_element(counts.begin(), counts.end());
        std::printf("balance: oversample, every class drawn %zu times per epoch:", largest);
        for (std::size_t k = 0; k < classes.size(); ++k)
            std::printf(" %s x%.2f", classes[k].c_str(), counts[k] ? static_cast<double>(largest) / counts[k] : 0.0);
        std::printf("\n");
        return {};
    }
    const std::vector<float> weights = inverse_frequency_weights(counts);
    std::printf("balance: class weights in the loss (n / (K n_k)):");
    for (std::size_t k = 0; k < classes.size(); ++k) std::printf(" %s %.3f", classes[k].c_str(), weights[k]);
    std::printf("\n");
    return weights;
}

// Copies every tensor of source whose name and shape target shares, except the head (the last layer) when the
// classes differ: even with the same class count its outputs would mean other classes. Returns the tensors copied
// and the tensors target has.
std::pair<std::size_t, std::size_t> copy_matching_tensors(const Model& source, Network& target, bool same_classes) {
    const std::vector<TensorSlot>& slots = target.architecture().tensors;
    const int head = static_cast<int>(target.layer_specs().size()) - 1;
    std::size_t copied = 0;
    for (std::size_t i = 0; i < slots.size(); ++i) {
        if ((!same_classes && slots[i].layer == head) || !source.has_tensor(slots[i].name)) continue;
        const TypedTensor& from = source.tensor(slots[i].name);
        if (from.type() != DataType::F32 || from.shape() != slots[i].shape) continue;
        std::copy(from.data<float>(), from.data<float>() + from.elements(), target.tensor_values(i).data);
        ++copied;
    }
    return {copied, slots.size()};
}

double monitored_value(Monitor monitor, const EpochRecord& record) {
    switch (monitor) {
        case Monitor::ValLoss: return record.validation_loss;
        case Monitor::ValMacroF1: return record.validation_macro_f1;
        default: return record.validation_accuracy;
    }
}

std::vector<ReportEpoch> curves_of(const std::vector<EpochRecord>& history) {
    std::vector<ReportEpoch> curves;
    for (const EpochRecord& r : history)
        curves.push_back({r.epoch, r.train_loss, r.train_accuracy, r.validation_loss, r.validation_accuracy, r.learning_rate});
    return curves;
}

// The report of a finished run: its recipe, its curves and the kept model on the validation split.
void write_training_report(const TrainOptions& o, const ModelDescription& description, const Split& split,
                           const std::vector<EpochRecord>& history, const TrainSummary& summary) {
    char learning_rate[32];
    std::snprintf(learning_rate, sizeof learning_rate, "%g", static_cast<double>(o.learning_rate));
    ReportContent content;
    content.title = "edgeqc training report: " + std::filesystem::path(o.output_path).filename().string();
    content.facts = {{"model file", o.output_path},
                     {"training data", o.data_dir},
                     {"classes", std::to_string(description.class_names.size())},
                     {"architecture", description.architecture},
                     {"input", describe_input_format(description.input)},
                     {"augmentation", describe_augmentation(o.augment)},
                     {"balance", balance_name(o.balance)},
                     {"optimizer", std::string(optimizer_kind_name(o.optimizer.kind)) + ", lr " + learning_rate +
                                       ", batch " + std::to_string(o.batch_size) + ", schedule " + schedule_kind_name(o.schedule)},
                     {"epochs", std::to_string(summary.epochs_done) + (summary.early_stopped ? " (stopped early)" : "")},
                     {"kept epoch", std::to_string(summary.best_epoch) + " (best " + monitor_name(summary.monitor) + ")"},
                     {"seed", std::to_string(o.seed)}};
    if (!o.init_model.empty()) content.facts.emplace_back("started from", o.init_model);
    content.history = curves_of(history);
    if (!split.validation.empty()) {
        const LoadedModel kept = load_model(o.output_path);
        const Evaluation evaluation = evaluate_images(kept, split.validation, o.batch_size, o.strict, "the validation split");
        content.has_evaluation = true;
        content.evaluated_on = "the validation split (" + std::to_string(evaluation.labels.size()) + " images), kept epoch " +
                               std::to_string(summary.best_epoch);
        content.report = evaluation.report;
        content.image_paths = evaluation.image_paths;
        content.labels = evaluation.labels;
        content.probabilities = evaluation.probabilities;
    }
    write_html_report(o.report_path, content);
    std::printf("report written to '%s'\n", o.report_path.c_str());
}

}  // namespace

void reestimate_batch_norm(Network& network, BatchLoader& clean_training, int epoch) {
    Batch batch;
    int batches = 0;
    clean_training.start_epoch(epoch);
    while (clean_training.next(batch)) {
        network.set_batch_norm_momentum(1.0f / static_cast<float>(++batches));
        network.forward(batch.images, Mode::Train);
    }
    network.set_batch_norm_momentum(BatchNorm::kMomentum);
}

std::vector<ReportEpoch> training_curves(const std::string& output_path) {
    return curves_of(read_history(output_path, std::numeric_limits<int>::max()));
}

std::string checkpoint_path_for(const std::string& output_path) { return stem_of(output_path) + ".last.eqc"; }

std::string log_path_for(const std::string& output_path, const std::string& extension) {
    return stem_of(output_path) + ".log." + extension;
}

std::atomic<bool>& training_stop_requested() {
    static std::atomic<bool> requested{false};
    return requested;
}

TrainSummary train(const TrainOptions& requested) {
    validate_train_options(requested);
    check_output_writable(requested.output_path);
    if (!requested.report_path.empty()) check_output_writable(requested.report_path, "the report");
    const std::string checkpoint_path = checkpoint_path_for(requested.output_path);

    LoadedModel checkpoint;
    if (requested.resume) {
        if (!std::filesystem::exists(checkpoint_path))
            throw Error("--resume: no checkpoint '" + checkpoint_path + "' (it is written after each completed epoch)");
        checkpoint = load_model(checkpoint_path);
        if (!checkpoint.has_training_state) throw Error("--resume: '" + checkpoint_path + "' holds no training state");
    }
    TrainOptions options = requested.resume ? options_from_recipe(requested, checkpoint.training_state.recipe) : requested;
    if (requested.resume && requested.epochs_given && options.phase2_epochs > 0)
        throw Error("--resume of a two-phase run cannot change phase 1's length; drop --epochs (--phase2-epochs extends phase 2)");
    // Stored in the recipe, so they must not depend on the working folder.
    for (std::string* folder : {&options.validation_dir, &options.unlabelled_dir})
        if (!folder->empty()) *folder = std::filesystem::absolute(*folder).lexically_normal().string();

    const FolderScan scan = scan_labelled_folder(options.data_dir);
    require_trainable(scan, options.data_dir);
    print_data_summary(scan, options.data_dir);
    const std::string fingerprint = data_fingerprint(scan, options.data_dir);
    if (requested.resume && checkpoint.training_state.recipe["data"] != fingerprint)
        throw Error("--resume: the images in '" + options.data_dir +
                    "' are not the ones the checkpoint was trained on; start a new run instead");
    if (!requested.resume && std::filesystem::exists(checkpoint_path))
        std::printf("note: this new run replaces the checkpoint '%s' of an earlier run\n", checkpoint_path.c_str());
    const int num_classes = static_cast<int>(scan.class_names.size());
    Split split;
    if (!options.validation_dir.empty()) {
        split.train = scan.images;
        split.validation = scan_with_classes(options.validation_dir, scan.class_names).images;
        if (split.validation.empty()) throw Error("validation folder '" + options.validation_dir + "' holds no images");
    } else {
        split = stratified_split(scan.images, num_classes, options.validation_split);
    }
    if (split.validation.empty() && (options.callbacks.early_stop_patience > 0 || options.callbacks.plateau_patience > 0))
        throw Error("--early-stop and --plateau-patience watch the validation set; give --val-split > 0 or --val");
    std::printf("split: %zu training, %zu validation images\n", split.train.size(), split.validation.size());
    const std::vector<float> class_weights = report_balancing(split.train, scan.class_names, options.balance);
    std::printf("augmentation: %s\n", describe_augmentation(options.augment).c_str());

    ModelDescription description;
    std::unique_ptr<Network> network;
    TrainingState state;
    if (requested.resume) {
        description = checkpoint.description;
        if (description.class_names != scan.class_names)
            throw Error("--resume: the classes in '" + options.data_dir + "' differ from the checkpoint's");
        network = Network::from_model(checkpoint);
        state = std::move(checkpoint.training_state);
        if (static_cast<int>(state.epochs_done) >= options.epochs + options.phase2_epochs)
            throw Error("--resume: the checkpoint already completed " + std::to_string(state.epochs_done) +
                        " epochs; pass a larger --epochs to continue");
        std::printf("resuming from '%s' after epoch %u of %d (recipe from the checkpoint)\n", checkpoint_path.c_str(),
                    state.epochs_done, options.epochs + options.phase2_epochs);
    } else if (!options.init_model.empty()) {
        LoadedModel start;
        try {
            start = load_model(options.init_model);
        } catch (const Error& e) {
            throw Error(std::string("--init: ") + e.what());
        }
        // The start model's input format (size, preprocessing, normalisation) is what its features expect.
        description = start.description;
        description.class_names = scan.class_names;
        network = build_network(description);
        network->initialize(options.init, options.seed);
        const bool same_classes = start.description.class_names == scan.class_names;
        const auto [copied, total] = copy_matching_tensors(start, *network, same_classes);
        std::printf("initialised from '%s': %zu of %zu tensors copied", options.init_model.c_str(), copied, total);
        if (!same_classes)
            std::printf("; its classes differ from these, so the head is re-initialised for %d classes", num_classes);
        std::printf("\n");
    } else {
        description.architecture = options.architecture;
        description.class_names = scan.class_names;
        description.input = options.input;
        description.input.mean.clear();
        description.input.stddev.clear();
        validate_input_format(description.input);
        estimate_normalization(split.train, description.input);
        network = build_network(description);
        network->initialize(options.init, options.seed);
    }
    network->layers_in_conv_blocks(options.freeze_blocks);  // throws now, not after the first phase, when too many
    if (options.freeze_blocks > 0 && options.init_model.empty() && !requested.resume)
        std::printf("warning: --freeze %d without --init MODEL keeps randomly initialised blocks fixed\n", options.freeze_blocks);
    std::printf("model: %s, input %dx%dx%d (CxHxW)\n%s", description.architecture.c_str(), description.input.channels,
                description.input.height, description.input.width, network->summary().c_str());
    std::fflush(stdout);

    Optimizer optimizer(options.optimizer, network->parameters().size());
    if (requested.resume) {
        if (state.first_moment.size() != optimizer.first_moment().size() ||
            state.second_moment.size() != optimizer.second_moment().size())
            throw Error("--resume: the checkpoint's optimizer state does not fit its network; it cannot be resumed");
        optimizer.first_moment() = state.first_moment;
        optimizer.second_moment() = state.second_moment;
        optimizer.set_steps(state.optimizer_steps);
    }
    const bool resuming_in_phase2 = requested.resume && static_cast<int>(state.epochs_done) > options.epochs;
    TrainingCallbacks callbacks(options.callbacks, resuming_in_phase2 ? options.phase2_learning_rate : options.learning_rate);
    bool phase1_stopped = false;
    if (requested.resume && !state.callbacks.empty()) {
        if (state.callbacks["early_stopped"] == "1")
            throw Error("--resume: the run ended by early stopping after epoch " + std::to_string(state.epochs_done) +
                        "; '" + requested.output_path + "' holds its best model. Start a new run to train further");
        callbacks.restore(state.callbacks);
        phase1_stopped = state.callbacks["phase1_stopped"] == "1";
    } else if (requested.resume && state.best_epoch > 0) {  // a checkpoint from before the callbacks: accuracy was kept
        callbacks.restore({{"has_best", "1"}, {"best", exact_text(state.best_metric)}, {"epochs_without_improvement", "0"},
                           {"plateau_wait", "0"}, {"lr_scale", "1"}});
    }
    state.recipe = recipe_of(options, fingerprint);

    const LoaderOptions train_loading{.batch_size = options.batch_size, .shuffle = true, .seed = options.seed,
                                      .strict = options.strict, .oversample = options.balance == Balance::Oversample,
                                      .augment = options.augment};
    BatchLoader train_loader(split.train, description.input, train_loading);
    const LoaderOptions validation_loading{.batch_size = options.batch_size, .shuffle = false, .strict = options.strict,
                                           .augment = {}};
    BatchLoader validation_loader(split.validation, description.input, validation_loading);
    // Running statistics gathered on augmented batches do not fit the clean images that validation and
    // inference see (added noise, for one, inflates the first layers' variance), so after each augmented epoch
    // they are re-estimated on the unaugmented training images ("precise BN", Wu & Johnson 2021).
    std::unique_ptr<BatchLoader> clean_training_loader;
    if (options.augment.enabled() && network->has_batch_norm()) {
        LoaderOptions clean_loading = validation_loading;
        clean_loading.warn_on_skip = false;  // train_loader already warns about the same images
        clean_training_loader = std::make_unique<BatchLoader>(split.train, description.input, clean_loading);
        std::printf("batch norm: running statistics re-estimated on the %zu unaugmented training images after each epoch\n",
                    split.train.size());
    }

    // Pseudo-labelling: the unlabelled images keep one loader (and cache) for the whole run; each epoch that
    // uses them trains on a fresh loader over the labelled images followed by the selected ones.
    FolderScan unlabelled;
    std::unique_ptr<BatchLoader> unlabelled_loader;
    if (!options.unlabelled_dir.empty()) {
        unlabelled = scan_image_folder(options.unlabelled_dir);
        if (unlabelled.images.empty()) throw Error("--unlabelled: '" + options.unlabelled_dir + "' holds no images");
        unlabelled_loader = std::make_unique<BatchLoader>(unlabelled.images, description.input, validation_loading);
        std::printf("unlabelled: %zu images in '%s', pseudo-labels from epoch %d at confidence >= %g%s\n",
                    unlabelled.images.size(), options.unlabelled_dir.c_str(), options.pseudo.start_epoch,
                    static_cast<double>(options.pseudo.threshold),
                    options.pseudo.class_balanced ? ", each class capped at its labelled share" : "");
    }
    const std::vector<std::size_t> pseudo_caps =
        options.pseudo.class_balanced ? class_balanced_caps(split.train, num_classes, unlabelled.images.size())
                                      : std::vector<std::size_t>{};

    const auto batches_in = [&](const BatchLoader& loader) {
        return (loader.epoch_length() + static_cast<std::size_t>(options.batch_size) - 1) / static_cast<std::size_t>(options.batch_size);
    };
    // The schedule runs on the labelled epoch's step count; an epoch with pseudo-labels has more batches, and
    // maps them onto the same stretch of the schedule.
    const std::uint64_t steps_per_epoch = batches_in(train_loader);
    const auto steps_of = [&](int epochs) { return steps_per_epoch * static_cast<std::uint64_t>(epochs); };
    // Phase 2 restarts the optimizer, so its schedule counts from the optimizer's step 0 again, without warm-up.
    const auto schedule_of_phase = [&](int phase) {
        return phase == 1 ? Schedule{options.schedule, options.learning_rate, steps_of(options.warmup_epochs),
                                     steps_of(options.epochs), steps_of(options.step_epochs), options.step_gamma}
                          : Schedule{options.schedule, options.phase2_learning_rate, 0, steps_of(options.phase2_epochs),
                                     steps_of(options.step_epochs), options.step_gamma};
    };
    const auto frozen_blocks_of_phase = [&](int phase) {
        if (phase == 1) return options.freeze_blocks;
        return options.unfreeze_blocks < 0 ? 0 : std::max(0, options.freeze_blocks - options.unfreeze_blocks);
    };
    const int total_epochs = options.epochs + options.phase2_epochs;

    std::vector<EpochRecord> history = requested.resume ? read_history(requested.output_path, static_cast<int>(state.epochs_done))
                                                        : std::vector<EpochRecord>{};
    TrainSummary summary;
    summary.epochs_done = static_cast<int>(state.epochs_done);
    summary.best_epoch = static_cast<int>(state.best_epoch);
    summary.validated = !split.validation.empty();
    summary.monitor = options.callbacks.monitor;
    summary.best_value = callbacks.best();
    double seconds_so_far = 0.0;
    for (const EpochRecord& r : history) seconds_so_far += r.seconds;

    Batch batch;
    Tensor dlogits;
    Schedule schedule;
    int current_phase = 0;
    int epoch = summary.epochs_done + 1;
    if (phase1_stopped && epoch <= options.epochs) epoch = options.epochs + 1;
    for (; epoch <= total_epochs; ++epoch) {
        const int phase = epoch > options.epochs ? 2 : 1;
        if (phase != current_phase) {
            if (phase == 2 && summary.epochs_done <= options.epochs) {  // entering phase 2 (not resuming inside it)
                optimizer = Optimizer(options.optimizer, network->parameters().size());
                callbacks.start_phase(options.phase2_learning_rate);
                std::printf("phase 2: fine-tuning for %d epochs at lr %g with %d of %d conv blocks frozen\n",
                            options.phase2_epochs, static_cast<double>(options.phase2_learning_rate),
                            frozen_blocks_of_phase(2), network->conv_blocks());
            }
            network->freeze_leading_layers(network->layers_in_conv_blocks(frozen_blocks_of_phase(phase)));
            schedule = schedule_of_phase(phase);
            current_phase = phase;
        }
        const std::size_t first_trainable = network->first_trainable_parameter();
        BatchLoader* loader = &train_loader;
        std::unique_ptr<BatchLoader> with_pseudo_labels;
        const float pseudo_weight = unlabelled_loader ? pseudo_label_weight(options.pseudo, epoch) : 0.0f;
        std::size_t pseudo_labelled = 0;
        if (pseudo_weight > 0.0f) {
            const InferenceResult guesses = run_inference(*network, *unlabelled_loader, "pseudo-labelling");
            std::vector<LabelledImage> images = split.train;
            const std::vector<LabelledImage> selected =
                select_pseudo_labels(unlabelled.images, guesses.indices, guesses.probabilities, num_classes,
                                     options.pseudo.threshold, pseudo_caps);
            pseudo_labelled = selected.size();
            images.insert(images.end(), selected.begin(), selected.end());
            if (pseudo_labelled > 0) {
                with_pseudo_labels = std::make_unique<BatchLoader>(images, description.input, train_loading);
                loader = with_pseudo_labels.get();
            }
        }
        const std::uint64_t phase_first_epoch = phase == 2 ? static_cast<std::uint64_t>(options.epochs) + 1 : 1;
        const std::uint64_t epoch_start_step = (static_cast<std::uint64_t>(epoch) - phase_first_epoch) * steps_per_epoch;
        const std::uint64_t batches_this_epoch = batches_in(*loader);
        std::uint64_t batch_number = 0;
        std::vector<float> sample_weights;
        network->reseed_dropout(options.seed * 1000003u + static_cast<std::uint64_t>(epoch));
        loader->start_epoch(epoch);
        char label[64];
        std::snprintf(label, sizeof label, "epoch %d/%d", epoch, total_epochs);
        ProgressBar progress(label, loader->epoch_length(), "img");
        double loss_sum = 0.0;
        std::size_t correct = 0, seen = 0;
        float learning_rate = 0.0f;
        while (loader->next(batch)) {
            if (training_stop_requested()) break;
            sample_weights.clear();
            if (pseudo_labelled > 0)
                for (std::size_t index : batch.indices) sample_weights.push_back(index >= split.train.size() ? pseudo_weight : 1.0f);
            const Tensor& logits = network->forward(batch.images, Mode::Train);
            const double loss = softmax_cross_entropy(logits, batch.labels, class_weights, &dlogits, sample_weights);
            if (!std::isfinite(loss)) {
                progress.finish();
                diverged(epoch, "the loss became " + std::to_string(loss), options.output_path);
            }
            const int classes = logits.shape()[1];
            for (std::size_t n = 0; n < batch.labels.size(); ++n) {
                const float* row = logits.data() + n * static_cast<std::size_t>(classes);
                correct += (std::max_element(row, row + classes) - row) == batch.labels[n];
            }
            network->parameters().zero_gradients();
            network->backward(dlogits);
            const std::uint64_t schedule_step = epoch_start_step + batch_number++ * steps_per_epoch / batches_this_epoch;
            learning_rate = schedule.learning_rate_at(schedule_step) * callbacks.learning_rate_scale();
            optimizer.step(network->parameters().values(), network->parameters().gradients(), learning_rate, first_trainable);
            loss_sum += loss * static_cast<double>(batch.labels.size());
            seen += batch.labels.size();
            char detail[64];
            std::snprintf(detail, sizeof detail, "loss %.4f acc %.3f", loss_sum / static_cast<double>(seen),
                          static_cast<double>(correct) / static_cast<double>(seen));
            progress.update(seen + loader->skipped(), detail);
        }
        progress.finish();
        if (training_stop_requested()) {
            if (summary.epochs_done == 0)
                std::printf("stopped on request during epoch %d, before any epoch completed; nothing to resume\n", epoch);
            else
                std::printf("stopped on request during epoch %d; '%s' holds epoch %d, continue with --resume\n", epoch,
                            checkpoint_path.c_str(), summary.epochs_done);
            summary.interrupted = true;
            return summary;
        }
        if (seen == 0) throw Error("no training image could be decoded in epoch " + std::to_string(epoch));
        if (clean_training_loader) reestimate_batch_norm(*network, *clean_training_loader, epoch);

        EpochRecord record;
        record.epoch = epoch;
        record.train_loss = loss_sum / static_cast<double>(seen);
        record.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
        record.learning_rate = learning_rate;
        record.images_per_second = static_cast<double>(seen) / progress.seconds();
        record.pseudo_labelled = pseudo_labelled;
        // The last update can overflow weights without a non-finite loss having been seen; nothing such is saved.
        const ParameterArena& weights = network->parameters();
        if (!std::all_of(weights.values(), weights.values() + weights.size(), [](float v) { return std::isfinite(v); }))
            diverged(epoch, "the weights became non-finite", options.output_path);
        EpochDecision decision;
        if (!split.validation.empty()) {
            const InferenceResult validation = run_inference(*network, validation_loader, "validating");
            const ClassificationReport report = classification_report(validation.labels, validation.probabilities, description.class_names);
            record.validation_loss = validation.mean_loss;
            record.validation_accuracy = report.accuracy;
            record.validation_macro_f1 = report.macro_f1;
            decision = callbacks.end_epoch(monitored_value(options.callbacks.monitor, record));
        } else {
            decision.improved = true;  // without validation data the latest model is the one kept
        }
        record.seconds = progress.seconds();
        seconds_so_far += record.seconds;
        history.push_back(record);

        summary.epochs_done = epoch;
        if (decision.improved) {
            summary.best_epoch = epoch;
            summary.best_value = callbacks.best();
            save_model(options.output_path, network->to_model(description));
        }
        const bool ends_phase1 = decision.stop && phase == 1 && options.phase2_epochs > 0;
        const bool ends_run = decision.stop && !ends_phase1;
        phase1_stopped = phase1_stopped || ends_phase1;
        state.epochs_done = static_cast<std::uint32_t>(epoch);
        state.optimizer_steps = optimizer.steps();
        state.best_metric = summary.validated ? callbacks.best() : -1.0;
        state.best_epoch = static_cast<std::uint32_t>(summary.best_epoch);
        state.first_moment = optimizer.first_moment();
        state.second_moment = optimizer.second_moment();
        state.callbacks = callbacks.state();
        state.callbacks["phase1_stopped"] = phase1_stopped ? "1" : "0";
        state.callbacks["early_stopped"] = ends_run ? "1" : "0";
        save_model(checkpoint_path, network->to_model(description), &state);
        write_logs(options.output_path, description, history);

        const double eta = seconds_so_far / static_cast<double>(history.size()) * (total_epochs - epoch);
        std::printf("epoch %3d/%d  loss %.4f  acc %.4f", epoch, total_epochs, record.train_loss, record.train_accuracy);
        if (!split.validation.empty())
            std::printf("  | val loss %.4f  acc %.4f  macro-F1 %.4f", record.validation_loss,
                        record.validation_accuracy, record.validation_macro_f1);
        if (unlabelled_loader) std::printf("  | pseudo %zu (w %.2f)", pseudo_labelled, static_cast<double>(pseudo_weight));
        std::printf("  | lr %.2e  %.1f img/s  %.1fs  ETA %s%s%s\n", record.learning_rate, record.images_per_second,
                    record.seconds, format_duration(eta).c_str(), decision.improved && summary.validated ? "  *best" : "",
                    decision.reduced_lr ? "  lr reduced" : "");
        std::fflush(stdout);
        if (decision.stop) {
            std::printf("early stopping: no better %s for %d epochs%s\n", monitor_name(options.callbacks.monitor),
                        options.callbacks.early_stop_patience, ends_phase1 ? "; phase 1 ends here" : "");
            if (ends_run) {
                summary.early_stopped = true;
                break;
            }
            // Phase 2 continues from the last phase-1 weights, as Keras' fit() does after EarlyStopping
            // without restore_best_weights; the best model so far stays saved either way.
            epoch = options.epochs;  // the loop's increment enters phase 2
        }
    }
    if (!options.report_path.empty()) write_training_report(options, description, split, history, summary);
    return summary;
}

}  // namespace edgeqc
