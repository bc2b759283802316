// The recipe table and what reads it: validation, the checkpoint's recipe and --resume.
#include "optim/recipe.hpp"

#include <cmath>
#include <cstdio>
#include <limits>

#include "data/augment.hpp"
#include "engine/error.hpp"

namespace edgeqc {

std::string exact_text(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", value);
    return text;
}

namespace {

// Text of each field type, written as checkpoints have always stored it and read back strictly.
[[noreturn]] void unreadable(const std::string& text) { throw Error("'" + text + "' is not a value this option takes"); }

long long read_integer(const std::string& text, long long lowest, long long highest) {
    std::size_t used = 0;
    long long value = 0;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        unreadable(text);
    }
    if (used != text.size() || value < lowest || value > highest) unreadable(text);
    return value;
}

double read_real(const std::string& text) {
    std::size_t used = 0;
    double value = 0.0;
    try {
        value = std::stod(text, &used);
    } catch (const std::exception&) {
        unreadable(text);
    }
    if (used != text.size()) unreadable(text);
    return value;
}

RecipeOption described(std::string key, std::string flag, std::string group, std::string help,
                       const char* missing_means = nullptr) {
    RecipeOption option;
    option.key = std::move(key);
    option.flag = std::move(flag);
    option.group = std::move(group);
    option.help = std::move(help);
    option.missing_means = missing_means;
    return option;
}

template <class T>
using Access = T& (*)(TrainOptions&);

// A field read through a non-const accessor: get() does not write through it.
template <class T>
T& field(const TrainOptions& o, Access<T> access) {
    return access(const_cast<TrainOptions&>(o));
}

RecipeOption integer(RecipeOption base, Access<int> access) {
    base.get = [access](const TrainOptions& o) { return std::to_string(field(o, access)); };
    base.set = [access](TrainOptions& o, const std::string& text) {
        access(o) = static_cast<int>(read_integer(text, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
    };
    return base;
}

RecipeOption real(RecipeOption base, Access<float> access) {
    base.get = [access](const TrainOptions& o) { return exact_text(field(o, access)); };
    base.set = [access](TrainOptions& o, const std::string& text) {
        const double value = read_real(text);
        // Beyond float's range the conversion would be undefined, not just inexact.
        if (std::isfinite(value) && std::abs(value) > std::numeric_limits<float>::max()) unreadable(text);
        access(o) = static_cast<float>(value);
    };
    return base;
}

RecipeOption switch_option(RecipeOption base, Access<bool> access) {
    base.is_switch = true;
    base.get = [access](const TrainOptions& o) { return std::string(field(o, access) ? "1" : "0"); };
    base.set = [access](TrainOptions& o, const std::string& text) {
        if (text != "0" && text != "1") unreadable(text);
        access(o) = text == "1";
    };
    return base;
}

RecipeOption text(RecipeOption base, Access<std::string> access) {
    base.get = [access](const TrainOptions& o) { return field(o, access); };
    base.set = [access](TrainOptions& o, const std::string& value) { access(o) = value; };
    return base;
}

// An enumeration stored by name: name(value) and parse(name), as each option's module defines them.
template <class E>
RecipeOption named(RecipeOption base, Access<E> access, const char* (*name)(E), E (*parse)(const std::string&)) {
    base.get = [access, name](const TrainOptions& o) { return std::string(name(field(o, access))); };
    base.set = [access, parse](TrainOptions& o, const std::string& value) { access(o) = parse(value); };
    return base;
}

// A check that fails with `message` when `bad` holds.
// Far beyond any useful run, and small enough that epoch counts and their sums never overflow an int.
constexpr int kMaxEpochs = 100000;

std::function<std::string(const TrainOptions&)> unless(bool (*bad)(const TrainOptions&), const char* message) {
    return [bad, message](const TrainOptions& o) { return bad(o) ? std::string(message) : std::string(); };
}

bool not_positive(float value) { return !(value > 0.0f) || !std::isfinite(value); }

std::vector<RecipeOption> build_table() {
    const AugmentOptions augment = default_augmentation();
    auto with_default = [](const char* help, float value) {
        char text[200];
        std::snprintf(text, sizeof text, help, static_cast<double>(value));
        return std::string(text);
    };
    const std::string network = "Network and preprocessing", optimisation = "Optimisation", data = "Data and output",
                      transfer = "Transfer learning", callbacks = "Model selection and callbacks",
                      imbalance = "Imbalance and augmentation", pseudo = "Semi-supervised (pseudo-labels)";
    std::vector<RecipeOption> table;
    RecipeOption arch = text(described("", "--arch", network,
                              "Network spec, e.g. c32bn-p-c64bn-p-fc; the paper's exact network is " +
                                  std::string(kPaperArchitecture)),
                             [](TrainOptions& o) -> std::string& { return o.architecture; });
    arch.decided_by_start_model = true;
    table.push_back(arch);

    RecipeOption epochs = integer(described("epochs", "--epochs", optimisation, "Number of passes over the training images"),
                                  [](TrainOptions& o) -> int& { return o.epochs; });
    epochs.check = unless([](const TrainOptions& o) { return o.epochs < 1 || o.epochs > kMaxEpochs; },
                          "--epochs must be 1 to 100000");
    epochs.given_on_resume = [](const TrainOptions& o) { return o.epochs_given; };
    table.push_back(epochs);
    RecipeOption batch = integer(described("batch", "--batch", optimisation, "Images per optimizer step"),
                                 [](TrainOptions& o) -> int& { return o.batch_size; });
    batch.check = unless([](const TrainOptions& o) { return o.batch_size < 1; }, "--batch must be at least 1");
    table.push_back(batch);
    RecipeOption lr = real(described("lr", "--lr", optimisation, "Peak learning rate"),
                           [](TrainOptions& o) -> float& { return o.learning_rate; });
    lr.check = unless([](const TrainOptions& o) { return not_positive(o.learning_rate); }, "--lr must be a positive number");
    table.push_back(lr);
    table.push_back(named<OptimizerKind>(described("optimizer", "--optimizer", optimisation, "adam or sgd (momentum 0.9)"),
                                         [](TrainOptions& o) -> OptimizerKind& { return o.optimizer.kind; },
                                         optimizer_kind_name, parse_optimizer_kind));
    RecipeOption decay = real(described("weight_decay", "--weight-decay", optimisation, "Decoupled (AdamW) for adam, L2 for sgd"),
                              [](TrainOptions& o) -> float& { return o.optimizer.weight_decay; });
    decay.check = unless([](const TrainOptions& o) {
        return !(o.optimizer.weight_decay >= 0.0f) || !std::isfinite(o.optimizer.weight_decay);
    }, "--weight-decay must be a non-negative number");
    table.push_back(decay);
    RecipeOption sparsity = real(described("sparsity_l1", "--sparsity-l1", optimisation,
                                           "L1 penalty on the batch-norm scales (network slimming, Liu et al. 2017), so "
                                           "that a later `edgeqc prune --criterion bn-gamma` loses less (1e-4 with SGD as in the paper; "
                                           "under Adam a scale moves by at most about --lr per step)",
                                           "0"),
                                 [](TrainOptions& o) -> float& { return o.sparsity_l1; });
    sparsity.check = unless([](const TrainOptions& o) { return !(o.sparsity_l1 >= 0.0f) || !std::isfinite(o.sparsity_l1); },
                            "--sparsity-l1 must be a non-negative number");
    table.push_back(sparsity);
    // The recipe checks values, not this CPU: a run refuses bf16 where the CPU lacks it (product_kernels_for), and so
    // does a bf16 run resumed on such a CPU.
    table.push_back(named<TrainPrecision>(
        described("precision", "--precision", optimisation,
                  "Arithmetic of the convolutions' and dense layers' products: f32, or bf16 (bf16 operands, f32 sums; "
                  "weights, batch norm, loss and optimizer stay f32), on CPUs with AVX-512 BF16",
                  "f32"),
        [](TrainOptions& o) -> TrainPrecision& { return o.precision; }, train_precision_name, parse_train_precision));
    table.push_back(named<ScheduleKind>(described("schedule", "--schedule", optimisation,
                                         "Learning-rate decay after warm-up: constant, cosine or step"),
                                        [](TrainOptions& o) -> ScheduleKind& { return o.schedule; }, schedule_kind_name,
                                        parse_schedule_kind));
    RecipeOption step_epochs = integer(described("step_epochs", "--step-epochs", optimisation,
                                        "--schedule step: epochs between two decays, counted from the end of warm-up",
                                        "10"),
                                       [](TrainOptions& o) -> int& { return o.step_epochs; });
    step_epochs.check = unless([](const TrainOptions& o) { return o.step_epochs < 1; }, "--step-epochs must be at least 1");
    table.push_back(step_epochs);
    RecipeOption step_gamma = real(described("step_gamma", "--step-gamma", optimisation, "--schedule step: factor of each decay",
                                    "0.1"),
                                   [](TrainOptions& o) -> float& { return o.step_gamma; });
    step_gamma.check = unless([](const TrainOptions& o) { return !(o.step_gamma > 0.0f && o.step_gamma <= 1.0f); },
                              "--step-gamma must be in (0, 1]");
    table.push_back(step_gamma);
    RecipeOption warmup = integer(described("warmup_epochs", "--warmup-epochs", optimisation, "Epochs of linear learning-rate warm-up"),
                                  [](TrainOptions& o) -> int& { return o.warmup_epochs; });
    warmup.check = unless([](const TrainOptions& o) { return o.warmup_epochs < 0; }, "--warmup-epochs must not be negative");
    table.push_back(warmup);

    RecipeOption split = described("val_split", "--val-split", data, "Fraction of each class held out for validation");
    split.get = [](const TrainOptions& o) { return exact_text(o.validation_split); };
    split.set = [](TrainOptions& o, const std::string& value) { o.validation_split = read_real(value); };
    split.check = unless([](const TrainOptions& o) { return !(o.validation_split >= 0.0 && o.validation_split < 1.0); },
                         "--val-split must be in [0, 1)");
    table.push_back(split);
    table.push_back(text(described("validation_dir", "--val", data, "Validation folder (instead of --val-split)"),
                         [](TrainOptions& o) -> std::string& { return o.validation_dir; }));
    RecipeOption seed = described("seed", "--seed", data, "Seed for initialisation and shuffling");
    seed.get = [](const TrainOptions& o) { return std::to_string(o.seed); };
    seed.set = [](TrainOptions& o, const std::string& value) {
        if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) unreadable(value);
        try {
            o.seed = std::stoull(value);
        } catch (const std::exception&) {
            unreadable(value);
        }
    };
    table.push_back(seed);

    // --init also takes a model file; the command line routes that to init_model (below).
    table.push_back(named<InitScheme>(described("init", "--init", transfer,
                                       "Weight initialisation: he, torch (PyTorch's default), or a model file (.eqc) to "
                                       "fine-tune: its architecture, input format and weights are used, and its head "
                                       "is re-initialised when the classes differ"),
                                      [](TrainOptions& o) -> InitScheme& { return o.init; }, init_scheme_name,
                                      parse_init_scheme));
    table.push_back(text(described("init_model", "", transfer, "", ""),
                         [](TrainOptions& o) -> std::string& { return o.init_model; }));
    RecipeOption freeze = integer(described("freeze", "--freeze", transfer,
                                   "Leading conv blocks (conv + batch norm + ReLU + pool) kept frozen", "0"),
                                  [](TrainOptions& o) -> int& { return o.freeze_blocks; });
    freeze.check = unless([](const TrainOptions& o) { return o.freeze_blocks < 0; }, "--freeze must not be negative");
    table.push_back(freeze);
    RecipeOption phase2 = integer(described("phase2_epochs", "--phase2-epochs", transfer,
                                   "Epochs of a second, fine-tuning phase after --epochs (fresh optimizer, --phase2-lr, "
                                   "blocks unfrozen)",
                                   "0"),
                                  [](TrainOptions& o) -> int& { return o.phase2_epochs; });
    phase2.check = unless([](const TrainOptions& o) { return o.phase2_epochs < 0 || o.phase2_epochs > kMaxEpochs; },
                          "--phase2-epochs must be 0 to 100000");
    phase2.given_on_resume = [](const TrainOptions& o) { return o.phase2_epochs_given; };
    table.push_back(phase2);
    RecipeOption phase2_lr = real(described("phase2_lr", "--phase2-lr", transfer, "Peak learning rate of phase 2", "1e-4"),
                                  [](TrainOptions& o) -> float& { return o.phase2_learning_rate; });
    phase2_lr.check = unless([](const TrainOptions& o) { return not_positive(o.phase2_learning_rate); },
                             "--phase2-lr must be a positive number");
    table.push_back(phase2_lr);
    RecipeOption unfreeze = integer(described("unfreeze", "--unfreeze", transfer,
                                     "Frozen blocks released for phase 2, counted from the last one (default: all)", "-1"),
                                    [](TrainOptions& o) -> int& { return o.unfreeze_blocks; });
    unfreeze.check = unless([](const TrainOptions& o) { return o.unfreeze_blocks < -1; },
                            "--unfreeze must be a number of blocks (or omitted for all)");
    table.push_back(unfreeze);

    table.push_back(named<Monitor>(described("monitor", "--monitor", callbacks,
                                    "Validation metric that picks the best model and drives the callbacks: "
                                    "val_accuracy, val_loss or val_macro_f1",
                                    "val_accuracy"),
                                   [](TrainOptions& o) -> Monitor& { return o.callbacks.monitor; }, monitor_name,
                                   parse_monitor));
    table.push_back(integer(described("early_stop", "--early-stop", callbacks,
                             "Stop after this many epochs without a better --monitor value (0 = off)", "0"),
                            [](TrainOptions& o) -> int& { return o.callbacks.early_stop_patience; }));
    table.push_back(integer(described("plateau_patience", "--plateau-patience", callbacks,
                             "Reduce the learning rate after this many epochs without improvement (0 = off)", "0"),
                            [](TrainOptions& o) -> int& { return o.callbacks.plateau_patience; }));
    table.push_back(real(described("plateau_factor", "--plateau-factor", callbacks, "Factor of each plateau reduction", "0.5"),
                         [](TrainOptions& o) -> float& { return o.callbacks.plateau_factor; }));
    table.push_back(real(described("min_lr", "--min-lr", callbacks, "Lowest learning rate plateau reductions go to", "1e-6"),
                         [](TrainOptions& o) -> float& { return o.callbacks.min_learning_rate; }));

    table.push_back(named<Balance>(described("balance", "--balance", imbalance,
                                    "Imbalanced classes: none, oversample (minority classes repeated up to the largest "
                                    "each epoch) or weights (inverse-frequency loss weights)",
                                    "none"),
                                   [](TrainOptions& o) -> Balance& { return o.balance; }, balance_name, parse_balance));
    table.push_back(switch_option(described("augment_hflip", "--hflip", imbalance, "Random horizontal flips (--no-hflip: none)", "0"),
                                  [](TrainOptions& o) -> bool& { return o.augment.horizontal_flip; }));
    table.push_back(switch_option(described("augment_vflip", "--vflip", imbalance, "Random vertical flips (--no-vflip: none)", "0"),
                                  [](TrainOptions& o) -> bool& { return o.augment.vertical_flip; }));
    table.push_back(real(described("augment_rotation", "--rotation", imbalance,
                          with_default("Random rotation up to +-DEG degrees (0-180; --augment: %g)", augment.rotation_degrees),
                          "0"),
                         [](TrainOptions& o) -> float& { return o.augment.rotation_degrees; }));
    table.push_back(real(described("augment_zoom", "--zoom", imbalance,
                          with_default("Random zoom by up to +-F (0-0.9; --augment: %g)", augment.zoom), "0"),
                         [](TrainOptions& o) -> float& { return o.augment.zoom; }));
    table.push_back(real(described("augment_translate", "--translate", imbalance,
                          with_default("Random shift up to +-F of each side (0-0.5; --augment: %g)", augment.translate), "0"),
                         [](TrainOptions& o) -> float& { return o.augment.translate; }));
    table.push_back(real(described("augment_brightness", "--brightness", imbalance,
                          with_default("Random brightness factor in 1 +- F (0-1; --augment: %g)", augment.brightness), "0"),
                         [](TrainOptions& o) -> float& { return o.augment.brightness; }));
    table.push_back(real(described("augment_noise", "--noise", imbalance,
                          with_default("Gaussian noise of this stddev on [0, 1] intensities (0-1; --augment: %g)", augment.noise),
                          "0"),
                         [](TrainOptions& o) -> float& { return o.augment.noise; }));

    table.push_back(text(described("unlabelled_dir", "--unlabelled", pseudo,
                          "Folder of unlabelled images for pseudo-labelling: each epoch the model's confident guesses "
                          "join training",
                          ""),
                         [](TrainOptions& o) -> std::string& { return o.unlabelled_dir; }));
    table.push_back(real(described("pseudo_threshold", "--pseudo-threshold", pseudo, "Confidence a guess needs to be used", "0.95"),
                         [](TrainOptions& o) -> float& { return o.pseudo.threshold; }));
    table.push_back(integer(described("pseudo_start", "--pseudo-start", pseudo, "First epoch that uses pseudo-labels", "2"),
                            [](TrainOptions& o) -> int& { return o.pseudo.start_epoch; }));
    table.push_back(integer(described("pseudo_rampup", "--pseudo-rampup", pseudo, "Epochs over which their loss weight grows to 1",
                             "5"),
                            [](TrainOptions& o) -> int& { return o.pseudo.rampup_epochs; }));
    table.push_back(switch_option(described("pseudo_balance", "--pseudo-balance", pseudo,
                                   "Cap each class's pseudo-labels at its share of the labelled images (most confident "
                                   "first), so an over-predicted class cannot take over",
                                   "0"),
                                  [](TrainOptions& o) -> bool& { return o.pseudo.class_balanced; }));
    table.push_back(switch_option(described("strict", "--strict", data, "Stop on a corrupt image instead of skipping it"),
                                  [](TrainOptions& o) -> bool& { return o.strict; }));
    return table;
}

}  // namespace

const std::vector<RecipeOption>& recipe_options() {
    static const std::vector<RecipeOption> table = build_table();
    return table;
}

void validate_train_options(const TrainOptions& o) {
    if (o.output_path.empty()) throw Error("--out is required");
    for (const RecipeOption& option : recipe_options())
        if (option.check)
            if (const std::string message = option.check(o); !message.empty()) throw Error(message);
    validate_augment_options(o.augment);
    validate_callback_options(o.callbacks);
    validate_pseudo_label_options(o.pseudo);
}

std::map<std::string, std::string> recipe_of(const TrainOptions& o, const std::string& data_fingerprint) {
    std::map<std::string, std::string> recipe;
    for (const RecipeOption& option : recipe_options())
        if (!option.key.empty()) recipe[option.key] = option.get(o);
    recipe["data"] = data_fingerprint;
    return recipe;
}

TrainOptions options_from_recipe(const TrainOptions& now, const std::map<std::string, std::string>& recipe) {
    TrainOptions o = now;
    for (const RecipeOption& option : recipe_options()) {
        if (option.key.empty() || (option.given_on_resume && option.given_on_resume(now))) continue;
        const auto found = recipe.find(option.key);
        if (found == recipe.end() && !option.missing_means)
            throw Error("the checkpoint's training recipe is incomplete (no '" + option.key + "'); it cannot be resumed");
        try {
            option.set(o, found == recipe.end() ? option.missing_means : found->second);
        } catch (const Error&) {
            throw Error("the checkpoint's training recipe is damaged ('" + option.key + "'); it cannot be resumed");
        }
    }
    validate_train_options(o);
    return o;
}

}  // namespace edgeqc
