// The training recipe as one table: every option of `edgeqc train` that shapes a run, with its key in a
// checkpoint's TRNS section, its command-line flag, help and group, the text a checkpoint written before the key
// existed ran with, and its check. The command line, option validation, checkpoints and --resume all read it, so an
// option is added in one place. Deliberately not here: the paths, --threads, --resume itself and the input format
// (--size, --channels, enhancement), which the model file's description carries.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "optim/trainer.hpp"

namespace edgeqc {

struct RecipeOption {
    std::string key;    // TRNS key, e.g. "lr"; empty for an option the model description holds (--arch)
    std::string flag;   // "--lr"; empty for a key without a flag of its own (init_model)
    std::string group;  // help group
    std::string help;
    const char* missing_means = nullptr;  // the value of a checkpoint older than the key; null: always stored
    bool is_switch = false;               // a flag without a value (--strict); its text is "1" or "0"
    bool decided_by_start_model = false;  // --init MODEL brings its own (its architecture)
    // For the options --resume may give to continue a run further (--epochs): whether `now` was given it.
    std::function<bool(const TrainOptions&)> given_on_resume;
    std::function<std::string(const TrainOptions&)> get;
    std::function<void(TrainOptions&, const std::string&)> set;  // throws edgeqc::Error on text it cannot read
    std::function<std::string(const TrainOptions&)> check;  // empty when the value is fine, else the message
};

// The table, in the order `edgeqc train --help` lists the options.
const std::vector<RecipeOption>& recipe_options();

// Throws edgeqc::Error with the message of the first option whose check fails, or of the first group of options
// (augmentation, callbacks, pseudo-labels) whose values do not fit together.
void validate_train_options(const TrainOptions& options);

// The recipe stored in a checkpoint: every keyed option's text, plus "data", the fingerprint of the training images.
std::map<std::string, std::string> recipe_of(const TrainOptions& options, const std::string& data_fingerprint);

// The options a resumed run continues with: the checkpoint's recipe over `now` (which keeps its paths, and the
// options that extend a run when they were given). Throws edgeqc::Error when the recipe is damaged or incomplete.
TrainOptions options_from_recipe(const TrainOptions& now, const std::map<std::string, std::string>& recipe);

// Enough digits that the number reads back to the same float or double (std::to_string keeps only six decimals).
std::string exact_text(double value);

}  // namespace edgeqc
