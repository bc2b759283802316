// The training run, step by step (set-up, epoch, validation, callbacks, checkpoint), and its bookkeeping (logs,
// resume). It reports through a ProgressObserver and prints nothing.
#include "optim/trainer.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
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
#include "engine/json_output.hpp"
#include "engine/metrics.hpp"
#include "engine/model_file.hpp"
#include "layers/batch_norm.hpp"
#include "layers/softmax_cross_entropy.hpp"
#include "optim/evaluation.hpp"
#include "optim/recipe.hpp"
#include "optim/training_kernels.hpp"

namespace edgeqc {

const char* train_precision_name(TrainPrecision precision) {
    return precision == TrainPrecision::BF16 ? "bf16" : "f32";
}

TrainPrecision parse_train_precision(const std::string& name) {
    if (name == "f32") return TrainPrecision::F32;
    if (name == "bf16") return TrainPrecision::BF16;
    throw Error("unknown precision '" + name + "' (use f32 or bf16)");
}

const KernelTable* product_kernels_for(TrainPrecision precision) {
    return precision == TrainPrecision::BF16 ? &bf16_product_kernels() : nullptr;
}

namespace {

// While alive, `network` computes in f32: the kept model runs in f32 once trained, so its batch-norm statistics and
// its validation scores come from f32 products even when training's are bf16.
class F32Products {
public:
    F32Products(Network& network, const KernelTable* training_products)
        : network_(network), training_products_(training_products) {
        network.compute_with(nullptr);
    }
    ~F32Products() { network_.compute_with(training_products_); }
    F32Products(const F32Products&) = delete;
    F32Products& operator=(const F32Products&) = delete;

private:
    Network& network_;
    const KernelTable* training_products_;
};

std::string stem_of(const std::string& output_path) {
    const std::filesystem::path path(output_path);
    return (path.parent_path() / path.stem()).string();
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

std::vector<EpochRecord> read_history(const std::string& output_path, int epochs_done, ProgressObserver& observer) {
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
        observer.warning("the previous training log could not be read; it restarts from this epoch");
        history.clear();
    }
    return history;
}

// best_epoch: the epoch of the model this run saved at output_path, 0 when it saved none (an older file there is
// not this run's).
[[noreturn]] void diverged(int epoch, const std::string& what, const std::string& output_path, int best_epoch) {
    const std::string kept = best_epoch > 0 ? "'" + output_path + "' keeps this run's best model (epoch " +
                                                  std::to_string(best_epoch) + ")"
                                            : "no model was written";
    throw Error("training diverged in epoch " + std::to_string(epoch) + " (" + what + "); " + kept +
                "; try a lower --lr or more --warmup-epochs");
}

// printf into a std::string, for the lines a run reports.
template <class... Args>
std::string text_of(const char* format, Args... args) {
    char line[512];
    std::snprintf(line, sizeof line, format, args...);
    return line;
}

void report_data(const FolderScan& scan, const std::string& root, ProgressObserver& observer) {
    std::string line = text_of("data: %s: %zu images in %zu classes", root.c_str(), scan.images.size(), scan.class_names.size());
    if (scan.skipped_hidden || scan.skipped_non_image)
        line += text_of(" (skipped %zu hidden and %zu non-image entries)", scan.skipped_hidden, scan.skipped_non_image);
    observer.info(line);
    for (std::size_t k = 0; k < scan.class_names.size(); ++k)
        observer.info(text_of("  %-24s %6zu", scan.class_names[k].c_str(), scan.class_counts[k]));
}

std::vector<std::size_t> class_counts(const std::vector<LabelledImage>& images, std::size_t num_classes) {
    std::vector<std::size_t> counts(num_classes, 0);
    for (const LabelledImage& image : images) ++counts[static_cast<std::size_t>(image.label)];
    return counts;
}

// Reports what --balance does to this training split; returns the loss's class weights (empty unless "weights").
std::vector<float> report_balancing(const std::vector<LabelledImage>& train, const std::vector<std::string>& classes,
                                    Balance balance, ProgressObserver& observer) {
    const std::vector<std::size_t> counts = class_counts(train, classes.size());
    if (balance == Balance::None) {
        observer.info("balance: none");
        return {};
    }
    if (balance == Balance::Oversample) {
        const std::size_t largest = *std::max_element(counts.begin(), counts.end());
        std::string line = text_of("balance: oversample, every class drawn %zu times per epoch:", largest);
        for (std::size_t k = 0; k < classes.size(); ++k)
            line += text_of(" %s x%.2f", classes[k].c_str(), counts[k] ? static_cast<double>(largest) / counts[k] : 0.0);
        observer.info(line);
        return {};
    }
    const std::vector<float> weights = inverse_frequency_weights(counts);
    std::string line = "balance: class weights in the loss (n / (K n_k)):";
    for (std::size_t k = 0; k < classes.size(); ++k) line += text_of(" %s %.3f", classes[k].c_str(), weights[k]);
    observer.info(line);
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

// Network slimming (Liu et al. 2017): the subgradient of penalty x sum |gamma| over every batch-norm scale, added to
// the loss's gradient, drives the scales of unneeded channels towards zero, where `prune --criterion bn-gamma`
// removes them at little cost.
void add_sparsity_gradient(ParameterArena& parameters, float penalty) {
    for (std::size_t slot = 0; slot < parameters.slots().size(); ++slot) {
        const std::string& name = parameters.slots()[slot].name;
        if (name.size() < 6 || name.compare(name.size() - 6, 6, ".gamma") != 0) continue;
        const TensorView gamma = parameters.value(slot), gradient = parameters.gradient(slot);
        for (std::size_t i = 0; i < gamma.size(); ++i)
            gradient[i] += gamma[i] > 0.0f ? penalty : gamma[i] < 0.0f ? -penalty : 0.0f;
    }
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
                           const std::vector<EpochRecord>& history, const TrainSummary& summary,
                           ProgressObserver& observer) {
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
        const Evaluation evaluation =
            evaluate_images(kept, split.validation, o.batch_size, o.strict, "the validation split", observer);
        content.has_evaluation = true;
        content.evaluated_on = "the validation split (" + std::to_string(evaluation.labels.size()) + " images), kept epoch " +
                               std::to_string(summary.best_epoch);
        content.report = evaluation.report;
        content.image_paths = evaluation.image_paths;
        content.labels = evaluation.labels;
        content.probabilities = evaluation.probabilities;
    }
    write_html_report(o.report_path, content);
    observer.info("report written to '" + o.report_path + "'");
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
    return curves_of(read_history(output_path, std::numeric_limits<int>::max(), silent_observer()));
}

std::string checkpoint_path_for(const std::string& output_path) { return stem_of(output_path) + ".last.eqc"; }

std::string log_path_for(const std::string& output_path, const std::string& extension) {
    return stem_of(output_path) + ".log." + extension;
}

std::atomic<bool>& training_stop_requested() {
    static std::atomic<bool> requested{false};
    return requested;
}

namespace {

// One training run, in the steps `train` takes: set-up (options, data, the model to start from, optimizer and
// callbacks, loaders), then per epoch the training pass, validation, callbacks and checkpoint. Everything it has to
// say goes to the observer.
class TrainingRun {
public:
    TrainingRun(const TrainOptions& requested, ProgressObserver& observer);
    TrainSummary run();

private:
    // Set-up, in this order.
    void read_checkpoint();
    void read_data();
    void start_model();
    void start_optimizer_and_callbacks();
    void make_loaders();
    // Per epoch.
    void enter_phase(int phase);
    BatchLoader& loader_for(float pseudo_weight, std::size_t& pseudo_labelled);
    bool train_epoch(int epoch, int phase, EpochRecord& record, float pseudo_weight);  // false: stopped on request
    EpochDecision validate(EpochRecord& record);
    void save(int epoch, const EpochDecision& decision, bool ends_run);

    int frozen_blocks_of_phase(int phase) const;
    std::uint64_t batches_in(const BatchLoader& loader) const;
    int total_epochs() const { return options_.epochs + options_.phase2_epochs; }

    const TrainOptions requested_;
    ProgressObserver& observer_;
    TrainOptions options_;
    std::string checkpoint_path_;
    LoadedModel checkpoint_;
    FolderScan scan_;
    std::string fingerprint_;
    Split split_;
    std::vector<float> class_weights_;
    ModelDescription description_;
    std::unique_ptr<Network> network_;
    TrainingState state_;
    std::unique_ptr<Optimizer> optimizer_;
    std::unique_ptr<TrainingCallbacks> callbacks_;
    bool phase1_stopped_ = false;
    LoaderOptions train_loading_, validation_loading_;
    std::unique_ptr<BatchLoader> train_loader_, validation_loader_, clean_training_loader_, unlabelled_loader_;
    FolderScan unlabelled_;
    std::vector<std::size_t> pseudo_caps_;
    std::unique_ptr<BatchLoader> with_pseudo_labels_;
    std::uint64_t steps_per_epoch_ = 0;  // of the labelled epoch: the schedule runs on this count
    Schedule schedule_;
    std::vector<EpochRecord> history_;
    TrainSummary summary_;
    double seconds_so_far_ = 0.0;
    Batch batch_;
    Tensor dlogits_;
    const KernelTable* product_kernels_ = nullptr;  // bf16 training's table; null: the active one
};

TrainingRun::TrainingRun(const TrainOptions& requested, ProgressObserver& observer)
    : requested_(requested), observer_(observer) {
    validate_train_options(requested);
    check_distinct_outputs({{"--out", requested.output_path},
                            {"the checkpoint", checkpoint_path_for(requested.output_path)},
                            {"the training log", log_path_for(requested.output_path, "json")},
                            {"the training log", log_path_for(requested.output_path, "csv")},
                            {"--report", requested.report_path}});
    check_output_writable(requested.output_path);
    if (!requested.report_path.empty()) check_output_writable(requested.report_path, "the report");
    checkpoint_path_ = checkpoint_path_for(requested.output_path);
    read_checkpoint();
    product_kernels_ = product_kernels_for(options_.precision);  // refuses bf16 before the data is read
    read_data();
    start_model();
    start_optimizer_and_callbacks();
    make_loaders();
}

// --resume: the checkpoint, and the recipe the run continues with.
void TrainingRun::read_checkpoint() {
    if (requested_.resume) {
        if (!std::filesystem::exists(checkpoint_path_))
            throw Error("--resume: no checkpoint '" + checkpoint_path_ + "' (it is written after each completed epoch)");
        checkpoint_ = load_model(checkpoint_path_);
        if (!checkpoint_.has_training_state) throw Error("--resume: '" + checkpoint_path_ + "' holds no training state");
    }
    options_ = requested_.resume ? options_from_recipe(requested_, checkpoint_.training_state.recipe) : requested_;
    if (requested_.resume && requested_.epochs_given && options_.phase2_epochs > 0)
        throw Error("--resume of a two-phase run cannot change phase 1's length; drop --epochs (--phase2-epochs extends phase 2)");
    // Stored in the recipe, so they must not depend on the working folder.
    for (std::string* folder : {&options_.validation_dir, &options_.unlabelled_dir})
        if (!folder->empty()) *folder = std::filesystem::absolute(*folder).lexically_normal().string();
}

// The labelled images, their split and what balancing and augmentation do to them.
void TrainingRun::read_data() {
    scan_ = scan_labelled_folder(options_.data_dir);
    require_trainable(scan_, options_.data_dir);
    report_data(scan_, options_.data_dir, observer_);
    fingerprint_ = data_fingerprint(scan_, options_.data_dir);
    if (requested_.resume && checkpoint_.training_state.recipe["data"] != fingerprint_)
        throw Error("--resume: the images in '" + options_.data_dir +
                    "' are not the ones the checkpoint was trained on; start a new run instead");
    if (!requested_.resume && std::filesystem::exists(checkpoint_path_))
        observer_.info("note: this new run replaces the checkpoint '" + checkpoint_path_ + "' of an earlier run");
    const int num_classes = static_cast<int>(scan_.class_names.size());
    if (!options_.validation_dir.empty()) {
        split_.train = scan_.images;
        split_.validation = scan_with_classes(options_.validation_dir, scan_.class_names).images;
        if (split_.validation.empty()) throw Error("validation folder '" + options_.validation_dir + "' holds no images");
    } else {
        split_ = stratified_split(scan_.images, num_classes, options_.validation_split);
    }
    if (split_.validation.empty() && (options_.callbacks.early_stop_patience > 0 || options_.callbacks.plateau_patience > 0))
        throw Error("--early-stop and --plateau-patience watch the validation set; give --val-split > 0 or --val");
    observer_.info(text_of("split: %zu training, %zu validation images", split_.train.size(), split_.validation.size()));
    class_weights_ = report_balancing(split_.train, scan_.class_names, options_.balance, observer_);
    observer_.info("augmentation: " + describe_augmentation(options_.augment));
}

// The network to train: the checkpoint's (--resume), a start model's (--init MODEL), or a new one.
void TrainingRun::start_model() {
    if (requested_.resume) {
        description_ = checkpoint_.description;
        if (description_.class_names != scan_.class_names)
            throw Error("--resume: the classes in '" + options_.data_dir + "' differ from the checkpoint's");
        network_ = Network::from_model(checkpoint_);
        state_ = std::move(checkpoint_.training_state);
        if (static_cast<int>(state_.epochs_done) >= total_epochs())
            throw Error("--resume: the checkpoint already completed " + std::to_string(state_.epochs_done) +
                        " epochs; pass a larger --epochs to continue");
        observer_.info(text_of("resuming from '%s' after epoch %u of %d (recipe from the checkpoint)",
                               checkpoint_path_.c_str(), state_.epochs_done, total_epochs()));
    } else if (!options_.init_model.empty()) {
        LoadedModel start;
        try {
            start = load_model(options_.init_model);
        } catch (const Error& e) {
            throw Error(std::string("--init: ") + e.what());
        }
        if (!start.activations.empty())  // its int8 weights would be skipped, leaving those layers random
            throw Error("--init: '" + options_.init_model + "' is an int8 model; start from its float original");
        // The start model's input format (size, preprocessing, normalisation) is what its features expect.
        description_ = start.description;
        description_.class_names = scan_.class_names;
        network_ = build_network(description_);
        network_->initialize(options_.init, options_.seed);
        const bool same_classes = start.description.class_names == scan_.class_names;
        const auto [copied, total] = copy_matching_tensors(start, *network_, same_classes);
        std::string line = text_of("initialised from '%s': %zu of %zu tensors copied", options_.init_model.c_str(), copied, total);
        if (!same_classes)
            line += text_of("; its classes differ from these, so the head is re-initialised for %zu classes",
                            scan_.class_names.size());
        observer_.info(line);
    } else {
        description_.architecture = options_.architecture;
        description_.class_names = scan_.class_names;
        description_.input = options_.input;
        description_.input.mean.clear();
        description_.input.stddev.clear();
        validate_input_format(description_.input);
        estimate_normalization(split_.train, description_.input);
        network_ = build_network(description_);
        network_->initialize(options_.init, options_.seed);
    }
    network_->compute_with(product_kernels_);
    network_->layers_in_conv_blocks(options_.freeze_blocks);  // throws now, not after the first phase, when too many
    if (options_.freeze_blocks > 0 && options_.init_model.empty() && !requested_.resume)
        observer_.warning(text_of("--freeze %d without --init MODEL keeps randomly initialised blocks fixed",
                                  options_.freeze_blocks));
    std::string summary = network_->summary();
    if (!summary.empty() && summary.back() == '\n') summary.pop_back();
    observer_.info(text_of("model: %s, input %dx%dx%d (CxHxW)", description_.architecture.c_str(),
                           description_.input.channels, description_.input.height, description_.input.width) +
                   "\n" + summary);
}

// A fresh optimizer and callbacks, or a resumed run's moments and counters.
void TrainingRun::start_optimizer_and_callbacks() {
    optimizer_ = std::make_unique<Optimizer>(options_.optimizer, network_->parameters().size());
    if (requested_.resume) {
        if (state_.first_moment.size() != optimizer_->first_moment().size() ||
            state_.second_moment.size() != optimizer_->second_moment().size())
            throw Error("--resume: the checkpoint's optimizer state does not fit its network; it cannot be resumed");
        optimizer_->first_moment() = state_.first_moment;
        optimizer_->second_moment() = state_.second_moment;
        optimizer_->set_steps(state_.optimizer_steps);
    }
    const bool resuming_in_phase2 = requested_.resume && static_cast<int>(state_.epochs_done) > options_.epochs;
    callbacks_ = std::make_unique<TrainingCallbacks>(
        options_.callbacks, resuming_in_phase2 ? options_.phase2_learning_rate : options_.learning_rate);
    if (requested_.resume && !state_.callbacks.empty()) {
        if (state_.callbacks["early_stopped"] == "1")
            throw Error("--resume: the run ended by early stopping after epoch " + std::to_string(state_.epochs_done) +
                        "; '" + requested_.output_path + "' holds its best model. Start a new run to train further");
        callbacks_->restore(state_.callbacks);
        phase1_stopped_ = state_.callbacks["phase1_stopped"] == "1";
    } else if (requested_.resume && state_.best_epoch > 0) {  // a checkpoint from before the callbacks: accuracy was kept
        callbacks_->restore({{"has_best", "1"}, {"best", exact_text(state_.best_metric)}, {"epochs_without_improvement", "0"},
                             {"plateau_wait", "0"}, {"lr_scale", "1"}});
    }
    state_.recipe = recipe_of(options_, fingerprint_);
}

void TrainingRun::make_loaders() {
    // A corrupt image is reported by the loader that meets it first; the others skip it silently.
    const auto warn = [this](const std::string& line) { observer_.warning(line); };
    train_loading_ = {.batch_size = options_.batch_size, .shuffle = true, .seed = options_.seed, .strict = options_.strict,
                      .oversample = options_.balance == Balance::Oversample, .augment = options_.augment, .warn = warn};
    train_loader_ = std::make_unique<BatchLoader>(split_.train, description_.input, train_loading_);
    validation_loading_ = {.batch_size = options_.batch_size, .shuffle = false, .strict = options_.strict, .augment = {},
                           .warn = warn};
    validation_loader_ = std::make_unique<BatchLoader>(split_.validation, description_.input, validation_loading_);
    // Running statistics gathered on augmented batches do not fit the clean images that validation and
    // inference see (added noise, for one, inflates the first layers' variance), so after each augmented epoch
    // they are re-estimated on the unaugmented training images ("precise BN", Wu & Johnson 2021).
    if (options_.augment.enabled() && network_->has_batch_norm()) {
        LoaderOptions clean_loading = validation_loading_;
        clean_loading.warn = nullptr;  // the training loader already reports the same images
        clean_training_loader_ = std::make_unique<BatchLoader>(split_.train, description_.input, clean_loading);
        observer_.info(text_of(
            "batch norm: running statistics re-estimated on the %zu unaugmented training images after each epoch",
            split_.train.size()));
    }
    // Pseudo-labelling: the unlabelled images keep one loader (and cache) for the whole run; each epoch that
    // uses them trains on a fresh loader over the labelled images followed by the selected ones.
    if (!options_.unlabelled_dir.empty()) {
        unlabelled_ = scan_image_folder(options_.unlabelled_dir);
        if (unlabelled_.images.empty()) throw Error("--unlabelled: '" + options_.unlabelled_dir + "' holds no images");
        unlabelled_loader_ = std::make_unique<BatchLoader>(unlabelled_.images, description_.input, validation_loading_);
        observer_.info(text_of("unlabelled: %zu images in '%s', pseudo-labels from epoch %d at confidence >= %g%s",
                               unlabelled_.images.size(), options_.unlabelled_dir.c_str(), options_.pseudo.start_epoch,
                               static_cast<double>(options_.pseudo.threshold),
                               options_.pseudo.class_balanced ? ", each class capped at its labelled share" : ""));
    }
    if (options_.pseudo.class_balanced)
        pseudo_caps_ = class_balanced_caps(split_.train, static_cast<int>(scan_.class_names.size()), unlabelled_.images.size());
    steps_per_epoch_ = batches_in(*train_loader_);
}

std::uint64_t TrainingRun::batches_in(const BatchLoader& loader) const {
    return (loader.epoch_length() + static_cast<std::size_t>(options_.batch_size) - 1) /
           static_cast<std::size_t>(options_.batch_size);
}

int TrainingRun::frozen_blocks_of_phase(int phase) const {
    if (phase == 1) return options_.freeze_blocks;
    return options_.unfreeze_blocks < 0 ? 0 : std::max(0, options_.freeze_blocks - options_.unfreeze_blocks);
}

// Phase 2 restarts the optimizer, so its schedule counts from the optimizer's step 0 again, without warm-up.
void TrainingRun::enter_phase(int phase) {
    if (phase == 2 && summary_.epochs_done <= options_.epochs) {  // entering phase 2 (not resuming inside it)
        optimizer_ = std::make_unique<Optimizer>(options_.optimizer, network_->parameters().size());
        callbacks_->start_phase(options_.phase2_learning_rate);
        observer_.info(text_of("phase 2: fine-tuning for %d epochs at lr %g with %d of %d conv blocks frozen",
                               options_.phase2_epochs, static_cast<double>(options_.phase2_learning_rate),
                               frozen_blocks_of_phase(2), network_->conv_blocks()));
    }
    network_->freeze_leading_layers(network_->layers_in_conv_blocks(frozen_blocks_of_phase(phase)));
    const auto steps_of = [this](int epochs) { return steps_per_epoch_ * static_cast<std::uint64_t>(epochs); };
    schedule_ = phase == 1 ? Schedule{options_.schedule, options_.learning_rate, steps_of(options_.warmup_epochs),
                                      steps_of(options_.epochs), steps_of(options_.step_epochs), options_.step_gamma}
                           : Schedule{options_.schedule, options_.phase2_learning_rate, 0, steps_of(options_.phase2_epochs),
                                      steps_of(options_.step_epochs), options_.step_gamma};
}

// The epoch's training images: the labelled ones, and the unlabelled ones the model now labels confidently.
BatchLoader& TrainingRun::loader_for(float pseudo_weight, std::size_t& pseudo_labelled) {
    pseudo_labelled = 0;
    with_pseudo_labels_.reset();
    if (pseudo_weight <= 0.0f) return *train_loader_;
    const InferenceResult guesses = run_inference(*network_, *unlabelled_loader_, "pseudo-labelling", observer_);
    std::vector<LabelledImage> images = split_.train;
    const std::vector<LabelledImage> selected =
        select_pseudo_labels(unlabelled_.images, guesses.indices, guesses.probabilities,
                             static_cast<int>(scan_.class_names.size()), options_.pseudo.threshold, pseudo_caps_);
    pseudo_labelled = selected.size();
    if (pseudo_labelled == 0) return *train_loader_;
    images.insert(images.end(), selected.begin(), selected.end());
    with_pseudo_labels_ = std::make_unique<BatchLoader>(images, description_.input, train_loading_);
    return *with_pseudo_labels_;
}

bool TrainingRun::train_epoch(int epoch, int phase, EpochRecord& record, float pseudo_weight) {
    const std::size_t first_trainable = network_->first_trainable_parameter();
    std::size_t pseudo_labelled = 0;
    BatchLoader& loader = loader_for(pseudo_weight, pseudo_labelled);
    // The schedule runs on the labelled epoch's step count; an epoch with pseudo-labels has more batches, and
    // maps them onto the same stretch of the schedule.
    const std::uint64_t phase_first_epoch = phase == 2 ? static_cast<std::uint64_t>(options_.epochs) + 1 : 1;
    const std::uint64_t epoch_start_step = (static_cast<std::uint64_t>(epoch) - phase_first_epoch) * steps_per_epoch_;
    const std::uint64_t batches_this_epoch = batches_in(loader);
    std::uint64_t batch_number = 0;
    std::vector<float> sample_weights;
    network_->reseed_dropout(options_.seed * 1000003u + static_cast<std::uint64_t>(epoch));
    loader.start_epoch(epoch);
    const std::string task = text_of("epoch %d/%d", epoch, total_epochs());
    const auto start = std::chrono::steady_clock::now();
    double loss_sum = 0.0;
    std::size_t correct = 0, seen = 0;
    float learning_rate = 0.0f;
    while (loader.next(batch_)) {
        if (training_stop_requested()) break;
        sample_weights.clear();
        if (pseudo_labelled > 0)
            for (std::size_t index : batch_.indices) sample_weights.push_back(index >= split_.train.size() ? pseudo_weight : 1.0f);
        const Tensor& logits = network_->forward(batch_.images, Mode::Train);
        const double loss = softmax_cross_entropy(logits, batch_.labels, class_weights_, &dlogits_, sample_weights);
        if (!std::isfinite(loss)) {
            observer_.progress_end();
            diverged(epoch, "the loss became " + std::to_string(loss), options_.output_path, summary_.best_epoch);
        }
        const int classes = logits.shape()[1];
        for (std::size_t n = 0; n < batch_.labels.size(); ++n) {
            const float* row = logits.data() + n * static_cast<std::size_t>(classes);
            correct += (std::max_element(row, row + classes) - row) == batch_.labels[n];
        }
        network_->parameters().zero_gradients();
        network_->backward(dlogits_);
        if (options_.sparsity_l1 > 0.0f) add_sparsity_gradient(network_->parameters(), options_.sparsity_l1);
        const std::uint64_t schedule_step = epoch_start_step + batch_number++ * steps_per_epoch_ / batches_this_epoch;
        learning_rate = schedule_.learning_rate_at(schedule_step) * callbacks_->learning_rate_scale();
        optimizer_->step(network_->parameters().values(), network_->parameters().gradients(), learning_rate, first_trainable);
        loss_sum += loss * static_cast<double>(batch_.labels.size());
        seen += batch_.labels.size();
        observer_.progress(task, seen + loader.skipped(), loader.epoch_length(),
                           text_of("loss %.4f acc %.3f", loss_sum / static_cast<double>(seen),
                                   static_cast<double>(correct) / static_cast<double>(seen)));
    }
    observer_.progress_end();
    if (training_stop_requested()) {
        if (summary_.epochs_done == 0)
            observer_.info(text_of("stopped on request during epoch %d, before any epoch completed; nothing to resume", epoch));
        else
            observer_.info(text_of("stopped on request during epoch %d; '%s' holds epoch %d, continue with --resume", epoch,
                                   checkpoint_path_.c_str(), summary_.epochs_done));
        return false;
    }
    if (seen == 0) throw Error("no training image could be decoded in epoch " + std::to_string(epoch));
    if (clean_training_loader_) {
        const F32Products f32(*network_, product_kernels_);
        reestimate_batch_norm(*network_, *clean_training_loader_, epoch);
    }
    record.epoch = epoch;
    record.train_loss = loss_sum / static_cast<double>(seen);
    record.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
    record.learning_rate = learning_rate;
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    record.images_per_second = static_cast<double>(seen) / record.seconds;
    record.pseudo_labelled = pseudo_labelled;
    // The last update can overflow weights without a non-finite loss having been seen; nothing such is saved.
    const ParameterArena& weights = network_->parameters();
    if (!std::all_of(weights.values(), weights.values() + weights.size(), [](float v) { return std::isfinite(v); }))
        diverged(epoch, "the weights became non-finite", options_.output_path, summary_.best_epoch);
    return true;
}

EpochDecision TrainingRun::validate(EpochRecord& record) {
    EpochDecision decision;
    if (split_.validation.empty()) {
        decision.improved = true;  // without validation data the latest model is the one kept
        return decision;
    }
    const auto start = std::chrono::steady_clock::now();
    const InferenceResult validation = [&] {
        const F32Products f32(*network_, product_kernels_);
        return run_inference(*network_, *validation_loader_, "validating", observer_);
    }();
    const ClassificationReport report =
        classification_report(validation.labels, validation.probabilities, description_.class_names);
    record.validation_loss = validation.mean_loss;
    record.validation_accuracy = report.accuracy;
    record.validation_macro_f1 = report.macro_f1;
    record.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return callbacks_->end_epoch(monitored_value(options_.callbacks.monitor, record));
}

// The best model when this epoch improved it, and always the checkpoint and the logs.
void TrainingRun::save(int epoch, const EpochDecision& decision, bool ends_run) {
    summary_.epochs_done = epoch;
    if (decision.improved) {
        summary_.best_epoch = epoch;
        summary_.best_value = callbacks_->best();
        save_model(options_.output_path, network_->to_model(description_));
    }
    state_.epochs_done = static_cast<std::uint32_t>(epoch);
    state_.optimizer_steps = optimizer_->steps();
    state_.best_metric = summary_.validated ? callbacks_->best() : -1.0;
    state_.best_epoch = static_cast<std::uint32_t>(summary_.best_epoch);
    state_.first_moment = optimizer_->first_moment();
    state_.second_moment = optimizer_->second_moment();
    state_.callbacks = callbacks_->state();
    // Moved in as strings: assigning the literals trips GCC 12's false -Wrestrict warning.
    state_.callbacks["phase1_stopped"] = std::string(phase1_stopped_ ? "1" : "0");
    state_.callbacks["early_stopped"] = std::string(ends_run ? "1" : "0");
    save_model(checkpoint_path_, network_->to_model(description_), &state_);
    write_logs(options_.output_path, description_, history_);
}

TrainSummary TrainingRun::run() {
    history_ = requested_.resume ? read_history(requested_.output_path, static_cast<int>(state_.epochs_done), observer_)
                                 : std::vector<EpochRecord>{};
    summary_.epochs_done = static_cast<int>(state_.epochs_done);
    summary_.best_epoch = static_cast<int>(state_.best_epoch);
    summary_.validated = !split_.validation.empty();
    summary_.monitor = options_.callbacks.monitor;
    summary_.best_value = callbacks_->best();
    for (const EpochRecord& r : history_) seconds_so_far_ += r.seconds;

    int current_phase = 0;
    int epoch = summary_.epochs_done + 1;
    if (phase1_stopped_ && epoch <= options_.epochs) epoch = options_.epochs + 1;
    for (; epoch <= total_epochs(); ++epoch) {
        const int phase = epoch > options_.epochs ? 2 : 1;
        if (phase != current_phase) {
            enter_phase(phase);
            current_phase = phase;
        }
        const float pseudo_weight = unlabelled_loader_ ? pseudo_label_weight(options_.pseudo, epoch) : 0.0f;
        EpochRecord record;
        if (!train_epoch(epoch, phase, record, pseudo_weight)) {
            summary_.interrupted = true;
            return summary_;
        }
        const EpochDecision decision = validate(record);
        seconds_so_far_ += record.seconds;
        history_.push_back(record);
        const bool ends_phase1 = decision.stop && phase == 1 && options_.phase2_epochs > 0;
        const bool ends_run = decision.stop && !ends_phase1;
        phase1_stopped_ = phase1_stopped_ || ends_phase1;
        save(epoch, decision, ends_run);

        EpochReport report;
        report.record = record;
        report.total_epochs = total_epochs();
        report.validated = summary_.validated;
        report.improved = decision.improved;
        report.reduced_lr = decision.reduced_lr;
        report.pseudo_labelling = unlabelled_loader_ != nullptr;
        report.pseudo_weight = pseudo_weight;
        report.eta_seconds = seconds_so_far_ / static_cast<double>(history_.size()) * (total_epochs() - epoch);
        observer_.epoch_end(report);
        if (decision.stop) {
            observer_.info(text_of("early stopping: no better %s for %d epochs%s", monitor_name(options_.callbacks.monitor),
                                   options_.callbacks.early_stop_patience, ends_phase1 ? "; phase 1 ends here" : ""));
            if (ends_run) {
                summary_.early_stopped = true;
                break;
            }
            // Phase 2 continues from the last phase-1 weights, as Keras' fit() does after EarlyStopping
            // without restore_best_weights; the best model so far stays saved either way.
            epoch = options_.epochs;  // the loop's increment enters phase 2
        }
    }
    if (!options_.report_path.empty())
        write_training_report(options_, description_, split_, history_, summary_, observer_);
    return summary_;
}

}  // namespace

TrainSummary train(const TrainOptions& options, ProgressObserver& observer) {
    return TrainingRun(options, observer).run();
}

}  // namespace edgeqc
