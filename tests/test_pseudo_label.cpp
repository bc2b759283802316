// Pseudo-labelling: selection by confidence, the ramp-up weight, per-sample loss weights (worked out by hand),
// and training with --unlabelled end to end, including exact --resume and bad values.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>

#include "engine/error.hpp"
#include "engine/model_file.hpp"
#include "layers/network.hpp"
#include "layers/softmax_cross_entropy.hpp"
#include "optim/pseudo_label.hpp"
#include "optim/trainer.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using namespace edgeqc::testing;

namespace {

std::vector<std::size_t> logged_pseudo_counts(const std::string& model_path) {
    std::ifstream in(log_path_for(model_path, "json"));
    const nlohmann::json log = nlohmann::json::parse(in);
    std::vector<std::size_t> counts;
    for (const auto& epoch : log.at("epochs")) counts.push_back(epoch.at("pseudo_labelled").get<std::size_t>());
    return counts;
}

// Labelled images in data/, the same kinds of images without labels in unlabelled/ (flat).
void write_semi_supervised_fixture(const TempFolder& folder) {
    write_tiny_dataset(folder.file("data"), 6);
    write_tiny_dataset(folder.file("more"), 2);
    fs::create_directories(folder.file("unlabelled"));
    for (const auto& entry : fs::recursive_directory_iterator(folder.file("more")))
        if (entry.is_regular_file()) fs::copy_file(entry.path(), folder.file("unlabelled/" + entry.path().filename().string()));
}

TrainOptions tiny_options(const TempFolder& folder, const std::string& name) {
    TrainOptions o = tiny_train_options(folder.file("data"), folder.file(name));
    o.learning_rate = 1e-3f;
    o.epochs = 3;
    o.unlabelled_dir = folder.file("unlabelled");
    o.pseudo.start_epoch = 2;
    o.pseudo.rampup_epochs = 2;
    return o;
}

}  // namespace

TEST_CASE("pseudo-labels: confident guesses are kept with their class, by the unlabelled index") {
    const std::vector<LabelledImage> unlabelled = {{"a.png", 0}, {"b.png", 0}, {"c.png", 0}, {"d.png", 0}};
    // b.png failed to decode, so the rows belong to a, c, d.
    const std::vector<float> probabilities = {0.05f, 0.95f, 0.0f, 0.4f, 0.3f, 0.3f, 0.0f, 0.01f, 0.99f};
    const std::vector<LabelledImage> kept = select_pseudo_labels(unlabelled, {0, 2, 3}, probabilities, 3, 0.9f);
    REQUIRE(kept.size() == 2);
    CHECK(kept[0].path == "a.png");
    CHECK(kept[0].label == 1);
    CHECK(kept[1].path == "d.png");
    CHECK(kept[1].label == 2);
    CHECK(select_pseudo_labels(unlabelled, {0, 2, 3}, probabilities, 3, 1.0f).empty());
}

TEST_CASE("pseudo-labels: class-balanced caps follow the labelled mix and keep each class's most confident") {
    // Labelled: three of class 0, one of class 1; eight unlabelled images -> caps ceil(8 x 3/4) = 6, ceil(8 / 4) = 2.
    const std::vector<LabelledImage> labelled = {{"l0", 0}, {"l1", 0}, {"l2", 1}, {"l3", 0}};
    CHECK(class_balanced_caps(labelled, 3, 8) == std::vector<std::size_t>{6, 2, 0});
    CHECK(class_balanced_caps(labelled, 2, 5) == std::vector<std::size_t>{4, 2});
    // Five confident guesses of class 1 (cap 2): the two most confident stay, in unlabelled order; class 0's one
    // guess is under its cap; nothing may go to class 2 (no labelled image).
    const std::vector<LabelledImage> unlabelled = {{"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}, {"e", 0}, {"f", 0}, {"g", 0}};
    const std::vector<float> probabilities = {0.0f, 0.96f, 0.04f,  0.0f,  0.99f, 0.01f, 0.97f, 0.03f, 0.0f,
                                              0.0f, 0.95f, 0.05f,  0.0f,  0.98f, 0.02f, 0.0f,  0.97f, 0.03f,
                                              0.0f, 0.01f, 0.99f};
    const std::vector<std::size_t> indices = {0, 1, 2, 3, 4, 5, 6};
    const std::vector<LabelledImage> capped =
        select_pseudo_labels(unlabelled, indices, probabilities, 3, 0.9f, class_balanced_caps(labelled, 3, 8));
    REQUIRE(capped.size() == 3);
    CHECK(capped[0].path == "b");
    CHECK(capped[0].label == 1);
    CHECK(capped[1].path == "c");
    CHECK(capped[1].label == 0);
    CHECK(capped[2].path == "e");
    CHECK(capped[2].label == 1);
    CHECK(select_pseudo_labels(unlabelled, indices, probabilities, 3, 0.9f).size() == 7);
}

TEST_CASE("pseudo-labels: the weight ramps from the start epoch, and bad settings name their flag") {
    PseudoLabelOptions options;
    options.start_epoch = 3;
    options.rampup_epochs = 4;
    CHECK(pseudo_label_weight(options, 2) == 0.0f);
    CHECK(pseudo_label_weight(options, 3) == 0.25f);
    CHECK(pseudo_label_weight(options, 4) == 0.5f);
    CHECK(pseudo_label_weight(options, 6) == 1.0f);
    CHECK(pseudo_label_weight(options, 40) == 1.0f);
    options.threshold = 0.0f;
    CHECK_THROWS_WITH_AS(validate_pseudo_label_options(options), doctest::Contains("--pseudo-threshold"), Error);
    options.threshold = 1.5f;
    CHECK_THROWS_WITH_AS(validate_pseudo_label_options(options), doctest::Contains("--pseudo-threshold"), Error);
    options = {};
    options.start_epoch = 0;
    CHECK_THROWS_WITH_AS(validate_pseudo_label_options(options), doctest::Contains("--pseudo-start"), Error);
    options = {};
    options.rampup_epochs = 0;
    CHECK_THROWS_WITH_AS(validate_pseudo_label_options(options), doctest::Contains("--pseudo-rampup"), Error);
}

TEST_CASE("cross-entropy with sample weights: rows scaled by their weight, not renormalised") {
    Tensor logits({2, 2});  // all zero: p = (0.5, 0.5), loss ln 2 per row
    std::fill(logits.data(), logits.data() + 4, 0.0f);
    Tensor dlogits;
    // (1 ln 2 + 0.5 ln 2) / 2 rows.
    const double loss = softmax_cross_entropy(logits, {0, 1}, {}, &dlogits, {1.0f, 0.5f});
    CHECK(loss == doctest::Approx(0.75 * std::log(2.0)));
    // Row 0 (label 0): (p - onehot) = (-0.5, 0.5) times 1 / 2; row 1 (label 1): (0.5, -0.5) times 0.5 / 2.
    CHECK(dlogits.data()[0] == doctest::Approx(-0.25));
    CHECK(dlogits.data()[1] == doctest::Approx(0.25));
    CHECK(dlogits.data()[2] == doctest::Approx(0.125));
    CHECK(dlogits.data()[3] == doctest::Approx(-0.125));
    // A batch of pseudo-labels only, at weight 0.2, counts 0.2 of a labelled batch.
    CHECK(softmax_cross_entropy(logits, {0, 1}, {}, nullptr, {0.2f, 0.2f}) == doctest::Approx(0.2 * std::log(2.0)));
    // Class weights still normalise: class 1 weighs 3 (sum 4); row 1 is scaled by 3 x 0.5.
    softmax_cross_entropy(logits, {0, 1}, {1.0f, 3.0f}, &dlogits, {1.0f, 0.5f});
    CHECK(dlogits.data()[0] == doctest::Approx(-0.5 / 4.0));
    CHECK(dlogits.data()[3] == doctest::Approx(-0.5 * 1.5 / 4.0));
    CHECK_THROWS_AS(softmax_cross_entropy(logits, {0, 1}, {}, &dlogits, {1.0f}), Error);
}

TEST_CASE("training with --unlabelled uses confident guesses from the start epoch and resumes exactly") {
    TempFolder folder;
    write_semi_supervised_fixture(folder);
    TrainOptions everything = tiny_options(folder, "all.eqc");
    everything.pseudo.threshold = 1e-6f;  // every guess is confident enough: all 10 unlabelled images join
    train(everything);
    const std::vector<std::size_t> counts = logged_pseudo_counts(everything.output_path);
    REQUIRE(counts.size() == 3);
    CHECK(counts[0] == 0);
    CHECK(counts[1] == 10);
    CHECK(counts[2] == 10);

    TrainOptions straight = tiny_options(folder, "straight.eqc");
    straight.pseudo.threshold = 0.3f;
    train(straight);
    TrainOptions resumed = tiny_options(folder, "resumed.eqc");
    resumed.pseudo.threshold = 0.3f;
    resumed.epochs = 1;  // the warm-up epoch, whose learning rates do not depend on the run's length
    train(resumed);
    resumed.epochs = 3;
    resumed.epochs_given = true;
    resumed.resume = true;
    train(resumed);
    const auto weights = [](const std::string& path) {
        const std::unique_ptr<Network> network = Network::from_model(load_model(path));
        const ParameterArena& p = network->parameters();
        return std::vector<float>(p.values(), p.values() + p.size());
    };
    CHECK(weights(checkpoint_path_for(straight.output_path)) == weights(checkpoint_path_for(resumed.output_path)));
    CHECK(logged_pseudo_counts(straight.output_path) == logged_pseudo_counts(resumed.output_path));

    TrainOptions missing = tiny_options(folder, "m.eqc");
    missing.unlabelled_dir = folder.file("nowhere");
    CHECK_THROWS_WITH_AS(train(missing), doctest::Contains("does not exist"), Error);
    fs::create_directories(folder.file("empty"));
    missing.unlabelled_dir = folder.file("empty");
    CHECK_THROWS_WITH_AS(train(missing), doctest::Contains("holds no images"), Error);
}

TEST_CASE("cli: --unlabelled reports its images per epoch; bad pseudo-label values are refused") {
    TempFolder folder;
    write_semi_supervised_fixture(folder);
    const std::string common = "train '" + folder.file("data") + "' --out '" + folder.file("m.eqc") +
                               "' --arch c4bn-p-c6-p-fc --size 16x20 --epochs 2 --batch 8 --unlabelled '" +
                               folder.file("unlabelled") + "'";
    const CommandResult run = run_edgeqc(common + " --pseudo-start 1 --pseudo-threshold 0.000001");
    INFO(run.output);
    CHECK(run.exit_code == 0);
    CHECK(run.output.find("unlabelled: 10 images") != std::string::npos);
    CHECK(run.output.find("pseudo 10 (w 0.20)") != std::string::npos);  // epoch 1 of a 5-epoch ramp
    // Five labelled classes of equal size: with caps each class takes at most ceil(10 / 5) = 2 guesses, and a
    // model after one epoch does not split its guesses evenly, so fewer than all 10 are used.
    const CommandResult balanced = run_edgeqc(common + " --pseudo-start 1 --pseudo-threshold 0.000001 --pseudo-balance");
    INFO(balanced.output);
    CHECK(balanced.exit_code == 0);
    CHECK(balanced.output.find("each class capped at its labelled share") != std::string::npos);
    CHECK(balanced.output.find("pseudo 10 (w") == std::string::npos);
    for (const char* bad : {" --pseudo-threshold 2", " --pseudo-start 0", " --pseudo-rampup -1"}) {
        CAPTURE(bad);
        const CommandResult refused = run_edgeqc(common + bad);
        CHECK(refused.exit_code != 0);
        CHECK(refused.output.find("error") != std::string::npos);
    }
}
