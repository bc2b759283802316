// The recipe table: every keyed option survives the checkpoint's text form exactly, checkpoints that predate a key
// resume with the value that run used, damaged or incomplete recipes are refused, and every check names its flag.
#include <doctest/doctest.h>

#include <set>

#include "engine/error.hpp"
#include "optim/recipe.hpp"

using namespace edgeqc;

namespace {

// Options far from the defaults in every keyed field.
TrainOptions unusual_options() {
    TrainOptions o;
    o.output_path = "m.eqc";
    o.epochs = 17;
    o.batch_size = 7;
    o.learning_rate = 3.3e-4f;
    o.optimizer.kind = OptimizerKind::Sgd;
    o.optimizer.weight_decay = 0.0123f;
    o.schedule = ScheduleKind::Step;
    o.step_epochs = 4;
    o.step_gamma = 0.3f;
    o.warmup_epochs = 2;
    o.validation_split = 0.15;
    o.validation_dir = "/data/val";
    o.seed = 18446744073709551615ull;
    o.init = InitScheme::Torch;
    o.init_model = "/models/start.eqc";
    o.freeze_blocks = 2;
    o.phase2_epochs = 3;
    o.phase2_learning_rate = 2e-5f;
    o.unfreeze_blocks = 1;
    o.callbacks.monitor = Monitor::ValMacroF1;
    o.callbacks.early_stop_patience = 5;
    o.callbacks.plateau_patience = 2;
    o.callbacks.plateau_factor = 0.25f;
    o.callbacks.min_learning_rate = 1e-7f;
    o.balance = Balance::Oversample;
    o.augment = {true, false, 12.5f, 0.05f, 0.02f, 0.3f, 0.01f};
    o.unlabelled_dir = "/data/unlabelled";
    o.pseudo = {0.9f, 3, 4, true};
    o.strict = true;
    o.precision = TrainPrecision::BF16;
    return o;
}

}  // namespace

TEST_CASE("recipe table: keys and flags are unique, and every keyed option reads back what it wrote") {
    std::set<std::string> keys, flags;
    for (const RecipeOption& option : recipe_options()) {
        CAPTURE(option.key);
        if (!option.key.empty()) CHECK(keys.insert(option.key).second);
        if (!option.flag.empty()) CHECK(flags.insert(option.flag).second);
        CHECK((option.get && option.set));
    }
    CHECK(keys.size() > 35);
    const TrainOptions original = unusual_options();
    const std::map<std::string, std::string> recipe = recipe_of(original, "12-345");
    CHECK(recipe.at("data") == "12-345");
    TrainOptions fresh;
    fresh.output_path = "elsewhere.eqc";
    const TrainOptions restored = options_from_recipe(fresh, recipe);
    CHECK(recipe_of(restored, "12-345") == recipe);
    CHECK(restored.output_path == "elsewhere.eqc");  // paths are the resumed run's own
    CHECK(restored.seed == original.seed);
    CHECK(restored.learning_rate == original.learning_rate);  // bit for bit: floats are written with 17 digits
    CHECK(restored.augment == original.augment);
}

TEST_CASE("recipe table: a checkpoint older than a key resumes with what that run used; damage is refused") {
    std::map<std::string, std::string> recipe = recipe_of(unusual_options(), "1-1");
    for (const RecipeOption& option : recipe_options())
        if (option.missing_means) recipe.erase(option.key);
    TrainOptions now;
    now.output_path = "m.eqc";
    const TrainOptions old = options_from_recipe(now, recipe);
    CHECK(old.balance == Balance::None);
    CHECK(old.augment == AugmentOptions{});
    CHECK(old.step_epochs == 10);
    CHECK(old.unfreeze_blocks == -1);
    CHECK(old.precision == TrainPrecision::F32);
    CHECK(old.learning_rate == unusual_options().learning_rate);  // always stored: kept

    std::map<std::string, std::string> incomplete = recipe;
    incomplete.erase("lr");
    CHECK_THROWS_WITH_AS(options_from_recipe(now, incomplete), doctest::Contains("incomplete"), Error);
    std::map<std::string, std::string> damaged = recipe;
    damaged["batch"] = "seven";
    CHECK_THROWS_WITH_AS(options_from_recipe(now, damaged), doctest::Contains("damaged"), Error);
    damaged = recipe;
    damaged["optimizer"] = "rmsprop";
    CHECK_THROWS_WITH_AS(options_from_recipe(now, damaged), doctest::Contains("damaged"), Error);
    damaged = recipe;
    damaged["lr"] = "1e39";  // a double, but beyond float
    CHECK_THROWS_WITH_AS(options_from_recipe(now, damaged), doctest::Contains("damaged"), Error);
    damaged = recipe;
    damaged["batch"] = "0";  // readable, but fails its check
    CHECK_THROWS_WITH_AS(options_from_recipe(now, damaged), doctest::Contains("--batch"), Error);

    // Options that extend a run keep the value given now.
    now.epochs = 40;
    now.epochs_given = true;
    CHECK(options_from_recipe(now, recipe).epochs == 40);
}

TEST_CASE("recipe table: each check names its flag") {
    const std::pair<void (*)(TrainOptions&), const char*> cases[] = {
        {[](TrainOptions& o) { o.epochs = 0; }, "--epochs"},
        {[](TrainOptions& o) { o.epochs = 2147483647; }, "--epochs must be 1 to 100000"},  // epoch sums overflowed
        {[](TrainOptions& o) { o.phase2_epochs = 2147483647; }, "--phase2-epochs must be 0 to 100000"},
        {[](TrainOptions& o) { o.batch_size = 0; }, "--batch"},
        {[](TrainOptions& o) { o.learning_rate = -1.0f; }, "--lr"},
        {[](TrainOptions& o) { o.optimizer.weight_decay = -0.1f; }, "--weight-decay"},
        {[](TrainOptions& o) { o.step_gamma = 1.5f; }, "--step-gamma"},
        {[](TrainOptions& o) { o.validation_split = 1.0; }, "--val-split"},
        {[](TrainOptions& o) { o.freeze_blocks = -1; }, "--freeze"},
        {[](TrainOptions& o) { o.unfreeze_blocks = -2; }, "--unfreeze"},
        {[](TrainOptions& o) { o.augment.rotation_degrees = 400.0f; }, "--rotation"},
        {[](TrainOptions& o) { o.callbacks.early_stop_patience = -1; }, "--early-stop"},
        {[](TrainOptions& o) { o.output_path.clear(); }, "--out"},
    };
    for (const auto& spoiled : cases) {
        const auto& [spoil, flag] = spoiled;
        CAPTURE(spoiled.second);  // the binding itself: clang 14's CAPTURE cannot take it
        TrainOptions o;
        o.output_path = "m.eqc";
        validate_train_options(o);
        spoil(o);
        CHECK_THROWS_WITH_AS(validate_train_options(o), doctest::Contains(flag), Error);
    }
}
