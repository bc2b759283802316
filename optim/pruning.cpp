// Filter scores, the choice of filters to remove, and the prune / fine-tune schedule.
#include "optim/pruning.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "data/dataset.hpp"
#include "engine/error.hpp"
#include "engine/inference_plan.hpp"
#include "engine/model_file.hpp"
#include "engine/model_passes.hpp"
#include "optim/recipe.hpp"

namespace edgeqc {

PruneCriterion parse_prune_criterion(const std::string& name) {
    if (name == "l1") return PruneCriterion::L1;
    if (name == "l2") return PruneCriterion::L2;
    if (name == "bn-gamma") return PruneCriterion::BatchNormGamma;
    throw Error("unknown pruning criterion '" + name + "' (l1, l2 or bn-gamma)");
}

const char* prune_criterion_name(PruneCriterion criterion) {
    switch (criterion) {
        case PruneCriterion::L2: return "l2";
        case PruneCriterion::BatchNormGamma: return "bn-gamma";
        default: return "l1";
    }
}

namespace {

// The conv layers of an architecture, in order (their indices in ResolvedArchitecture::layers).
std::vector<std::size_t> conv_layers(const ResolvedArchitecture& architecture) {
    std::vector<std::size_t> convs;
    for (std::size_t i = 0; i < architecture.layers.size(); ++i)
        if (architecture.layers[i].kind == LayerKind::Conv) convs.push_back(i);
    return convs;
}

bool batch_norm_after(const ResolvedArchitecture& architecture, std::size_t layer) {
    return layer + 1 < architecture.layers.size() && architecture.layers[layer + 1].kind == LayerKind::BatchNorm;
}

void check_share(double share, const std::string& what) {
    if (!(share > 0.0 && share < 1.0))
        throw Error(what + " must lie strictly between 0 and 1, not " + std::to_string(share));
}

}  // namespace

PruneCriterion default_prune_criterion(const Model& model) {
    const ResolvedArchitecture architecture = model.description.resolve();
    const std::vector<std::size_t> convs = conv_layers(architecture);
    const bool all_normalised = !convs.empty() && std::all_of(convs.begin(), convs.end(), [&](std::size_t layer) {
        return batch_norm_after(architecture, layer);
    });
    return all_normalised ? PruneCriterion::BatchNormGamma : PruneCriterion::L1;
}

std::map<std::size_t, std::vector<double>> filter_scores(const Model& model, PruneCriterion criterion) {
    const ResolvedArchitecture architecture = model.description.resolve();
    std::map<std::size_t, std::vector<double>> scores;
    for (const std::size_t layer : conv_layers(architecture)) {
        const int filters = architecture.layers[layer].units;
        std::vector<double>& layer_scores = scores[layer];
        if (criterion == PruneCriterion::BatchNormGamma) {
            if (!batch_norm_after(architecture, layer))
                throw Error("--criterion bn-gamma needs batch norm after every conv, and conv " +
                            std::to_string(layer) + " of '" + model.description.architecture +
                            "' has none (use l1 or l2)");
            const float* gamma = model.f32_values(architecture.tensor_name(layer + 1, TensorRole::Gamma),
                                                  "pruning needs a float model");
            for (int f = 0; f < filters; ++f) layer_scores.push_back(std::abs(gamma[f]));
            continue;
        }
        const std::string name = architecture.tensor_name(layer, TensorRole::Weight);
        const float* weights = model.f32_values(name, "pruning needs a float model");
        const std::size_t per_filter = model.tensor(name).elements() / static_cast<std::size_t>(filters);
        for (int f = 0; f < filters; ++f) {
            double sum = 0.0;
            for (std::size_t k = 0; k < per_filter; ++k) {
                const double w = weights[static_cast<std::size_t>(f) * per_filter + k];
                sum += criterion == PruneCriterion::L1 ? std::abs(w) : w * w;
            }
            layer_scores.push_back(criterion == PruneCriterion::L1 ? sum : std::sqrt(sum));
        }
    }
    return scores;
}

std::map<std::string, double> parse_per_layer_ratios(const std::string& text) {
    std::map<std::string, double> ratios;
    std::size_t start = 0;
    while (start <= text.size()) {
        const std::size_t end = std::min(text.find(',', start), text.size());
        const std::string entry = text.substr(start, end - start);
        const std::size_t equals = entry.find('=');
        char* parsed_end = nullptr;
        const double ratio = equals == std::string::npos ? NAN : std::strtod(entry.c_str() + equals + 1, &parsed_end);
        if (equals == std::string::npos || entry.rfind('c', 0) != 0 || parsed_end == entry.c_str() + equals + 1 ||
            *parsed_end != '\0')
            throw Error("--per-layer: '" + entry + "' is not LAYER=RATIO (e.g. c3=0.75)");
        check_share(ratio, "--per-layer: the ratio of " + entry.substr(0, equals));
        ratios[entry.substr(0, equals)] = ratio;
        start = end + 1;
    }
    return ratios;
}

std::map<std::size_t, std::vector<int>> choose_filters(const Model& original, const Model& model,
                                                       const std::map<std::size_t, std::vector<double>>& scores,
                                                       const PruneTarget& target, double progress,
                                                       bool* target_met) {
    const ResolvedArchitecture original_architecture = original.description.resolve();
    const ResolvedArchitecture architecture = model.description.resolve();
    const std::vector<std::size_t> convs = conv_layers(architecture);
    if (conv_layers(original_architecture) != convs)
        throw Error("the model to prune and its original have different conv layers");

    // Filters each layer keeps at most (PerLayer), or the total to keep (FilterRatio), at this progress.
    std::map<std::size_t, int> layer_limit;
    int total_limit = 0;
    if (target.kind == PruneTarget::Kind::PerLayer) {
        for (const auto& [name, ratio] : target.per_layer) {
            check_share(ratio, "the ratio of " + name);
            int ordinal = 0;
            const char* digits_end = name.data() + name.size();
            const auto [end, error] = std::from_chars(name.data() + std::min<std::size_t>(1, name.size()), digits_end, ordinal);
            if (name.size() < 2 || error != std::errc() || end != digits_end || ordinal < 1 ||
                ordinal > static_cast<int>(convs.size()) || name != "c" + std::to_string(ordinal))
                throw Error("--per-layer: no conv layer '" + name + "' (this model has c1 to c" +
                            std::to_string(convs.size()) + ")");
            const std::size_t layer = convs[static_cast<std::size_t>(ordinal - 1)];
            const int filters = original_architecture.layers[layer].units;
            layer_limit[layer] = std::max(1, static_cast<int>(std::ceil(filters * (1.0 - ratio * progress) - 1e-9)));
        }
    } else {
        check_share(target.value, target.kind == PruneTarget::Kind::FilterRatio ? "--ratio" : "--target-flops");
        int total = 0;
        for (const std::size_t layer : convs) total += original_architecture.layers[layer].units;
        if (target.kind == PruneTarget::Kind::FilterRatio)
            total_limit = static_cast<int>(std::ceil(total * (1.0 - target.value * progress) - 1e-9));
    }
    const double flops_limit = target.kind == PruneTarget::Kind::FlopsKept
                                   ? flops_per_image(original_architecture) * (1.0 - (1.0 - target.value) * progress)
                                   : 0.0;

    // Every filter, least important first: its score over its layer's mean score (normalised per layer, so that
    // layers whose weights are larger are not spared for that alone). For a FLOP target, over the square root of the
    // FLOPs its removal saves as well (relative to the mean over the layers): the first conv's filters cost little,
    // the wide layers' much, and a FLOP budget is best spent where it buys most.
    struct Candidate {
        std::size_t layer;
        int filter;
        double normalised;
    };
    std::map<std::size_t, double> cost;
    const double flops = flops_per_image(architecture);
    for (const std::size_t layer : convs) {
        std::vector<LayerSpec> one_fewer = architecture.layers;
        --one_fewer[layer].units;
        cost[layer] = one_fewer[layer].units > 0 && target.kind == PruneTarget::Kind::FlopsKept
                          ? flops - flops_per_image(resolve_architecture(one_fewer, architecture.input,
                                                                         architecture.num_classes))
                          : 1.0;
    }
    double mean_cost = 0.0;
    for (const auto& [layer, flops_saved] : cost) mean_cost += flops_saved / static_cast<double>(cost.size());
    std::vector<Candidate> candidates;
    std::map<std::size_t, int> remaining;
    for (const std::size_t layer : convs) {
        const std::vector<double>& layer_scores = scores.at(layer);
        remaining[layer] = static_cast<int>(layer_scores.size());
        const double mean = std::accumulate(layer_scores.begin(), layer_scores.end(), 0.0) /
                            static_cast<double>(layer_scores.size());
        // The square root tempers the FLOP weighting: importance still counts for more than cost.
        const double relative_cost = cost[layer] > 0.0 ? std::sqrt(cost[layer] / mean_cost) : 1.0;
        for (std::size_t f = 0; f < layer_scores.size(); ++f)
            candidates.push_back(
                {layer, static_cast<int>(f), mean > 0.0 ? layer_scores[f] / mean / relative_cost : 0.0});
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Candidate& a, const Candidate& b) { return a.normalised < b.normalised; });

    // Every layer keeps a filter; under a ranking across layers, an eighth of its original filters as well: a FLOP
    // target otherwise empties the layer whose filters cost most (measured on neu_steel: conv2 went from 64 filters to
    // 1, and 5 points of accuracy with it, while the layers after it kept nearly all of theirs).
    std::map<std::size_t, int> floor;
    for (const std::size_t layer : convs)
        floor[layer] = target.kind == PruneTarget::Kind::PerLayer
                           ? 1
                           : std::max(1, (original_architecture.layers[layer].units + 7) / 8);
    std::vector<LayerSpec> layers = architecture.layers;
    int kept_total = 0;
    for (const auto& [layer, count] : remaining) kept_total += count;
    std::map<std::size_t, std::vector<bool>> removed;
    for (const std::size_t layer : convs) removed[layer].assign(static_cast<std::size_t>(remaining[layer]), false);
    const auto done = [&] {
        switch (target.kind) {
            case PruneTarget::Kind::FilterRatio: return kept_total <= total_limit;
            case PruneTarget::Kind::FlopsKept:
                return flops_per_image(resolve_architecture(layers, architecture.input, architecture.num_classes)) <=
                       flops_limit;
            default:
                return std::all_of(layer_limit.begin(), layer_limit.end(),
                                   [&](const auto& limit) { return remaining[limit.first] <= limit.second; });
        }
    };
    for (const Candidate& c : candidates) {
        if (done()) break;
        if (remaining[c.layer] <= floor[c.layer]) continue;
        if (target.kind == PruneTarget::Kind::PerLayer &&
            (!layer_limit.count(c.layer) || remaining[c.layer] <= layer_limit[c.layer]))
            continue;
        removed[c.layer][static_cast<std::size_t>(c.filter)] = true;
        --remaining[c.layer];
        --kept_total;
        --layers[c.layer].units;
    }
    if (target_met) *target_met = done();
    std::map<std::size_t, std::vector<int>> kept;
    for (const auto& [layer, flags] : removed)
        for (std::size_t f = 0; f < flags.size(); ++f)
            if (!flags[f]) kept[layer].push_back(static_cast<int>(f));
    return kept;
}

namespace {

std::size_t parameter_count(const Model& model) {
    std::size_t count = 0;
    for (const TensorSlot& slot : model.description.resolve().tensors)
        if (is_trainable(slot.role)) count += slot.shape.elements();
    return count;
}

// Median of repeated batch-1 float inferences of a random image, after a warm-up.
double batch1_latency_ms(const Model& model, double min_seconds) {
    InferencePlan plan(model, 1);
    std::vector<float> image(model.description.input_shape().elements(), 0.25f);
    plan.run(image.data(), 1);
    std::vector<double> times;
    const auto start = std::chrono::steady_clock::now();
    while (!training_stop_requested() &&
           (times.size() < 5 || (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
                                     min_seconds &&
                                 times.size() < 100000))) {
        const auto before = std::chrono::steady_clock::now();
        plan.run(image.data(), 1);
        times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - before).count());
    }
    std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2), times.end());
    return times[times.size() / 2];
}

// A step's figures of `model`, into s.
void describe(const Model& model, const std::string& path, double latency_seconds, PruneStep& s) {
    s.model_path = path;
    s.architecture = model.description.architecture;
    const ResolvedArchitecture architecture = model.description.resolve();
    for (const std::size_t layer : conv_layers(architecture)) s.filters.push_back(architecture.layers[layer].units);
    s.parameters = parameter_count(model);
    s.flops = flops_per_image(architecture);
    s.latency_ms = batch1_latency_ms(model, latency_seconds);
}

// "dir/name.eqc" -> "dir/name.step2.eqc" (or "dir/name.step2.start.eqc" with the infix "start").
std::string step_path(const std::string& output_path, int step, const std::string& infix = "") {
    const std::filesystem::path path(output_path);
    std::filesystem::path stepped = path;
    stepped.replace_filename(path.stem().string() + ".step" + std::to_string(step) + (infix.empty() ? "" : "." + infix) +
                             path.extension().string());
    return stepped.string();
}

// Removes a file if it is there, quietly: clean-up must not replace the error that made it necessary.
void remove_quietly(const std::string& path) {
    std::error_code ignored;
    std::filesystem::remove(path, ignored);
}

}  // namespace

PruneResult prune(const Model& model, const PruneOptions& options, ProgressObserver& observer) {
    if (!model.activations.empty())
        throw Error("the model is quantized: prune the float model, then quantize the pruned one");
    if (options.steps < 1 || options.steps > 100) throw Error("--steps must be 1 to 100");
    if (options.finetune_epochs < 0 || options.finetune_epochs > 100000)
        throw Error("--finetune-epochs must be 0 to 100000");
    // Everything that can be refused is refused before any work: the criterion (bn-gamma without batch norm), the
    // target (layer names, shares), the fine-tuning options, and data of other classes, on which fine-tuning would
    // start a new head.
    choose_filters(model, model, filter_scores(model, options.criterion), options.target, 1.0);
    if (options.finetune_epochs > 0) {
        TrainOptions checked = options.finetune;
        checked.epochs = options.finetune_epochs;
        checked.output_path = step_path(options.output_path, 1);
        validate_train_options(checked);
    }
    const FolderScan scan = scan_labelled_folder(options.finetune.data_dir);
    if (scan.class_names != model.description.class_names)
        throw Error("the classes of '" + options.finetune.data_dir + "' differ from the model's; prune on the data the "
                    "model was trained on");

    PruneResult result;
    describe(model, "", options.latency_seconds, result.steps.emplace_back());
    Model current = model;
    for (int step = 1; step <= options.steps && !training_stop_requested(); ++step) {
        const double progress = static_cast<double>(step) / options.steps;
        const auto kept = choose_filters(model, current, filter_scores(current, options.criterion), options.target,
                                         progress, &result.target_reached);
        Model pruned = prune_filters(current, kept);
        const std::string path = step_path(options.output_path, step);
        observer.info("step " + std::to_string(step) + "/" + std::to_string(options.steps) + ": " +
                      pruned.description.architecture);
        PruneStep described;
        if (options.finetune_epochs == 0) {
            save_model(path, pruned);
            current = std::move(pruned);
        } else {
            // train() starts from a model file: the pruned model goes beside the output, and is removed after.
            const std::string start = step_path(options.output_path, step, "start");
            save_model(start, pruned);
            TrainOptions finetune = options.finetune;
            finetune.output_path = path;
            finetune.init_model = start;
            finetune.epochs = options.finetune_epochs;
            finetune.epochs_given = true;
            TrainSummary summary;
            try {
                summary = train(finetune, observer);
            } catch (...) {
                remove_quietly(start);
                throw;
            }
            remove_quietly(start);
            if (summary.interrupted) break;
            current = load_model(path);
            described.validated = summary.validated;
            described.monitor = monitor_name(summary.monitor);
            described.validation_value = summary.best_value;
        }
        describe(current, path, options.latency_seconds, described);
        described.step = step;
        result.steps.push_back(described);
        const PruneStep& first = result.steps.front();
        char line[160];
        std::snprintf(line, sizeof line, "step %d done: %zu parameters, %.0f %% of the FLOPs, batch-1 latency "
                      "%.3f ms (%.2fx faster)", step, described.parameters, 100.0 * described.flops / first.flops,
                      described.latency_ms, first.latency_ms / described.latency_ms);
        observer.info(std::string(line) +
                      (described.validated ? ", " + described.monitor + " " + std::to_string(described.validation_value)
                                           : std::string()) +
                      ", '" + path + "'");
    }
    result.interrupted = static_cast<int>(result.steps.size()) <= options.steps;
    if (result.interrupted) return result;
    // The output is written only once every step is done, so that it never holds a half-finished run's model.
    save_model(options.output_path, current);
    if (!result.target_reached)
        observer.warning("the target could not be reached: the layers it may shrink are down to one filter each");
    return result;
}

}  // namespace edgeqc
