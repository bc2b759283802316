// Post-training quantization end to end: calibration images, statistics, layer choice, agreement.
#include "optim/quantization.hpp"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "data/dataset.hpp"
#include "data/image.hpp"
#include "data/preprocess.hpp"
#include "engine/error.hpp"
#include "engine/inference_plan.hpp"
#include "engine/model_passes.hpp"
#include "engine/rng.hpp"

namespace edgeqc {

std::string weighted_layer_name(const ResolvedArchitecture& architecture, std::size_t layer) {
    const LayerKind kind = architecture.layers[layer].kind;
    if (kind != LayerKind::Conv && kind != LayerKind::Dense) return {};
    const auto number = std::count_if(architecture.layers.begin(), architecture.layers.begin() + static_cast<std::ptrdiff_t>(layer) + 1,
                                      [kind](const LayerSpec& l) { return l.kind == kind; });
    return (kind == LayerKind::Conv ? "conv" : "fc") + std::to_string(number);
}

namespace {

// Preprocessed images, one after the other.
struct ImageSet {
    std::vector<float> values;
    int count = 0;
};

// Up to `wanted` images of the folder, drawn at random with the seed, decoded and preprocessed; corrupt ones
// skipped and counted.
ImageSet load_calibration_images(const QuantizeOptions& options, const InputFormat& format, QuantizeResult& result,
                                 ProgressObserver& observer) {
    FolderScan scan = scan_image_folder(options.calibration_dir);
    if (scan.images.empty()) throw Error("no image in calibration folder '" + options.calibration_dir + "'");
    Rng rng(options.seed);
    rng.shuffle(scan.images);
    result.requested_images = static_cast<std::size_t>(options.images);
    if (options.images_requested && scan.images.size() < static_cast<std::size_t>(options.images))
        observer.warning("calibration folder '" + options.calibration_dir + "' has " + std::to_string(scan.images.size()) +
                         " images, fewer than --images " + std::to_string(options.images) + ": using all of them");
    const std::size_t wanted = std::min(scan.images.size(), static_cast<std::size_t>(options.images));
    const std::size_t image_floats = input_floats(format);
    // The images are held preprocessed in memory (statistics take two passes, agreement more): bound it.
    constexpr double kMaxImageBytes = 1 << 30;
    if (static_cast<double>(wanted) * static_cast<double>(image_floats) * sizeof(float) > kMaxImageBytes)
        throw Error("--images " + std::to_string(options.images) + " at this input size would hold more than 1 GiB of " +
                    "calibration images in memory; use fewer (a few hundred are enough)");
    ImageSet set;
    set.values.reserve(wanted * image_floats);
    for (std::size_t i = 0; i < scan.images.size() && static_cast<std::size_t>(set.count) < wanted; ++i) {
        observer.progress("reading calibration images", static_cast<std::size_t>(set.count), wanted, "");
        try {
            const Image image = decode_image_file(scan.images[i].path);
            set.values.resize(set.values.size() + image_floats);
            preprocess_into(image, format, set.values.data() + set.values.size() - image_floats);
            ++set.count;
        } catch (const Error& e) {
            ++result.skipped_images;
            observer.warning(std::string("skipping calibration image: ") + e.what());
        }
    }
    observer.progress_end();
    if (set.count == 0) throw Error("no image in calibration folder '" + options.calibration_dir + "' could be decoded");
    return set;
}

// Logits of every image, in batches of the plan's size.
std::vector<float> logits_of(InferencePlan& plan, const float* images, int count) {
    const std::size_t image_floats = plan.input_floats_per_image();
    const int classes = plan.num_classes();
    std::vector<float> logits(static_cast<std::size_t>(count) * classes);
    for (int first = 0; first < count; first += plan.max_batch()) {
        const int n = std::min(plan.max_batch(), count - first);
        const float* out = plan.run(images + static_cast<std::size_t>(first) * image_floats, n);
        std::copy(out, out + static_cast<std::size_t>(n) * classes, logits.begin() + static_cast<std::ptrdiff_t>(first) * classes);
    }
    return logits;
}

struct Agreement {
    double top1 = 1.0;          // fraction of images whose top class is the float model's
    double logit_error = 0.0;   // relative RMS error of the logits
};

Agreement agreement(const std::vector<float>& reference, const std::vector<float>& logits, int classes) {
    const std::size_t images = reference.size() / static_cast<std::size_t>(classes);
    std::size_t same = 0;
    double error = 0.0, norm = 0.0;
    for (std::size_t n = 0; n < images; ++n) {
        const auto row = [&](const std::vector<float>& v) { return v.begin() + static_cast<std::ptrdiff_t>(n * classes); };
        same += std::max_element(row(reference), row(reference) + classes) - row(reference) ==
                std::max_element(row(logits), row(logits) + classes) - row(logits);
        for (int c = 0; c < classes; ++c) {
            const double d = logits[n * classes + c] - reference[n * classes + c];
            error += d * d;
            norm += static_cast<double>(reference[n * classes + c]) * reference[n * classes + c];
        }
    }
    return {images ? static_cast<double>(same) / images : 1.0, norm > 0.0 ? std::sqrt(error / norm) : 0.0};
}

}  // namespace

QuantizeResult quantize(const Model& model, const QuantizeOptions& options, ProgressObserver& observer) {
    if (!model.activations.empty()) throw Error("the model is already quantized (quantize its float original instead)");
    if (options.images < 1) throw Error("--images must be at least 1");
    if (options.batch < 1) throw Error("the calibration batch must be at least 1");
    if (!(options.agreement_target > 0.0 && options.agreement_target <= 1.0))
        throw Error("the agreement target must be in (0, 1]");
    QuantizeResult result;
    const Model folded = fold_batch_norm(model);
    const ResolvedArchitecture architecture = folded.description.resolve();
    // The layers by name, and the names asked to stay float.
    std::vector<std::size_t> weighted;
    for (std::size_t i = 0; i < architecture.layers.size(); ++i)
        if (!weighted_layer_name(architecture, i).empty()) weighted.push_back(i);
    std::vector<std::size_t> keep;
    for (const std::string& name : options.keep_fp32) {
        const auto found = name == "first" ? weighted.begin()
                                           : std::find_if(weighted.begin(), weighted.end(), [&](std::size_t i) {
                                                 return weighted_layer_name(architecture, i) == name;
                                             });
        if (found == weighted.end()) {
            std::string names;
            for (std::size_t i : weighted) names += (names.empty() ? "" : ", ") + weighted_layer_name(architecture, i);
            throw Error("--keep-fp32: the model has no layer '" + name + "' (its layers: " + names + ")");
        }
        keep.push_back(*found);
    }
    if (std::all_of(weighted.begin(), weighted.end(),
                    [&](std::size_t i) { return std::find(keep.begin(), keep.end(), i) != keep.end(); }))
        throw Error("--keep-fp32 keeps every layer in float: nothing would be quantized");

    ImageSet images = load_calibration_images(options, folded.description.input, result, observer);
    // A fifth of the images is held out to measure agreement; with fewer than five, agreement is measured on the
    // calibration images themselves (held_out_images stays 0 to say so).
    const int held_out = images.count >= 5 ? images.count / 5 : 0;
    const int calibration = images.count - held_out;
    result.calibration_images = static_cast<std::size_t>(calibration);
    result.held_out_images = static_cast<std::size_t>(held_out);
    const std::size_t image_floats = input_floats(folded.description.input);
    const int checked = held_out > 0 ? held_out : calibration;
    const float* checked_images = images.values.data() + static_cast<std::size_t>(images.count - checked) * image_floats;

    observer.info("calibrating on " + std::to_string(calibration) + " images (" + calibration_method_name(options.method) +
                  "), checking on " + std::to_string(held_out) + " held-out images");
    InferencePlan float_plan(folded, std::min(options.batch, calibration));
    const std::vector<ActivationHistogram> statistics =
        collect_activation_statistics(float_plan, images.values.data(), calibration);
    for (const ActivationHistogram& h : statistics) {
        LayerQuantization layer;
        layer.layer = h.layer;
        layer.name = weighted_layer_name(architecture, static_cast<std::size_t>(h.layer));
        layer.input = calibrated_quantization(h, options.method);
        layer.threshold = calibrated_range(h, options.method).second;
        layer.clipped = clipped_fraction(h, layer.threshold);
        result.layers.push_back(layer);
    }
    const auto quantized_except = [&](const std::vector<std::size_t>& floats) {
        std::vector<ActivationQuantization> inputs;
        for (const LayerQuantization& layer : result.layers)
            if (std::find(floats.begin(), floats.end(), static_cast<std::size_t>(layer.layer)) == floats.end())
                inputs.push_back(layer.input);
        return quantize_model(folded, inputs);
    };
    const int classes = folded.description.num_classes();
    const std::vector<float> reference = logits_of(float_plan, checked_images, checked);
    const auto measure = [&](const Model& candidate) {
        InferencePlan plan(candidate, float_plan.max_batch());
        return agreement(reference, logits_of(plan, checked_images, checked), classes);
    };

    Model quantized = quantized_except(keep);
    Agreement achieved = measure(quantized);
    if (options.auto_keep) {
        // Each layer alone in int8 (reported even when all in int8 meet the target); then the worst kept in float,
        // one at a time, until the target is met.
        for (std::size_t l = 0; l < result.layers.size(); ++l) {
            observer.progress("sensitivity analysis", l, result.layers.size(), result.layers[l].name);
            std::vector<std::size_t> others = weighted;
            others.erase(std::find(others.begin(), others.end(), static_cast<std::size_t>(result.layers[l].layer)));
            const Agreement alone = measure(quantized_except(others));
            result.layers[l].sensitivity = 1.0 - alone.top1;
            result.layers[l].logit_error = alone.logit_error;
        }
        observer.progress_end();
        std::vector<const LayerQuantization*> worst_first;
        for (const LayerQuantization& layer : result.layers) worst_first.push_back(&layer);
        std::sort(worst_first.begin(), worst_first.end(), [](const LayerQuantization* a, const LayerQuantization* b) {
            return std::tie(a->sensitivity, a->logit_error) > std::tie(b->sensitivity, b->logit_error);
        });
        for (const LayerQuantization* layer : worst_first) {
            if (achieved.top1 >= options.agreement_target) break;
            const auto index = static_cast<std::size_t>(layer->layer);
            if (std::find(keep.begin(), keep.end(), index) != keep.end()) continue;
            keep.push_back(index);
            if (keep.size() == weighted.size()) break;  // nothing left in int8: not a quantized model
            quantized = quantized_except(keep);
            achieved = measure(quantized);
            observer.info("keeping " + layer->name + " in float: agreement " + std::to_string(achieved.top1));
        }
        result.target_met = achieved.top1 >= options.agreement_target;
    }
    for (LayerQuantization& layer : result.layers) {
        layer.quantized = quantized.is_quantized(architecture, static_cast<std::size_t>(layer.layer));
        if (!layer.quantized) continue;
        const std::vector<float>& scales = quantized.tensor(architecture.tensor_name(static_cast<std::size_t>(layer.layer), TensorRole::Weight)).scales;
        layer.weight_scale_min = *std::min_element(scales.begin(), scales.end());
        layer.weight_scale_max = *std::max_element(scales.begin(), scales.end());
    }
    result.agreement = achieved.top1;
    result.model = std::move(quantized);
    return result;
}

}  // namespace edgeqc
