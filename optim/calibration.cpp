// Activation statistics and the four calibration methods.
#include "optim/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>

#include "engine/error.hpp"
#include "engine/model_passes.hpp"

namespace edgeqc {

const char* calibration_method_name(CalibrationMethod method) {
    switch (method) {
        case CalibrationMethod::MinMax: return "minmax";
        case CalibrationMethod::Percentile: return "percentile";
        case CalibrationMethod::Entropy: return "kl";
        case CalibrationMethod::Mse: return "mse";
    }
    return "?";
}

CalibrationMethod parse_calibration_method(const std::string& name) {
    for (CalibrationMethod method : kCalibrationMethods)
        if (name == calibration_method_name(method)) return method;
    throw Error("unknown calibration method '" + name + "' (choose kl, percentile, mse or minmax)");
}

std::vector<ActivationHistogram> collect_activation_statistics(InferencePlan& plan, const float* images, int count) {
    std::map<int, ActivationHistogram> layers;
    const std::size_t image_floats = plan.input_floats_per_image();
    const auto each_batch = [&](const InferencePlan::LayerInputObserver& observer) {
        for (int first = 0; first < count; first += plan.max_batch()) {
            const int batch = std::min(plan.max_batch(), count - first);
            plan.run(images + static_cast<std::size_t>(first) * image_floats, batch, observer);
        }
    };
    each_batch([&](int layer, const float* values, std::size_t n) {
        ActivationHistogram& h = layers[layer];
        h.layer = layer;
        for (std::size_t i = 0; i < n; ++i) {
            h.low = std::min(h.low, values[i]);
            h.high = std::max(h.high, values[i]);
        }
    });
    for (auto& [layer, h] : layers) h.bins.assign(kHistogramBins, 0.0);
    each_batch([&](int layer, const float* values, std::size_t n) {
        ActivationHistogram& h = layers.at(layer);
        h.total += static_cast<double>(n);
        const double per_bin = h.high > 0.0f ? kHistogramBins / static_cast<double>(h.high) : 0.0;
        for (std::size_t i = 0; i < n; ++i) {
            if (values[i] == 0.0f) h.zeros += 1;
            else if (values[i] > 0.0f)
                h.bins[static_cast<std::size_t>(std::min<double>(values[i] * per_bin, kHistogramBins - 1))] += 1;
        }
    });
    std::vector<ActivationHistogram> result;
    for (auto& [layer, h] : layers) result.push_back(std::move(h));
    return result;
}

namespace {

// The smallest threshold (a bin edge) at or below which `fraction` of the values lie.
float percentile_threshold(const ActivationHistogram& h, double fraction) {
    double below = h.total - std::accumulate(h.bins.begin(), h.bins.end(), 0.0);  // zeros and negatives
    for (int b = 0; b < kHistogramBins; ++b) {
        below += h.bins[static_cast<std::size_t>(b)];
        if (below >= fraction * h.total) return static_cast<float>((b + 1) * h.bin_width());
    }
    return h.high;
}

// TensorRT's entropy calibration: for each candidate number of bins i (from one per level up), the clipped
// distribution P (the outliers added to its last bin) against Q, P merged into kActivationMax + 1 levels and spread
// back over the bins that were non-empty; the i with the least KL(P || Q) gives the threshold. Exact zeros (most of
// a ReLU's output) are left out: the grid represents them exactly, and in the first bin their mass, spread over
// the level's other bins, would favour the narrowest ranges.
float entropy_threshold(const ActivationHistogram& h) {
    constexpr int kLevels = kActivationMax + 1;
    const std::vector<double>& bins = h.bins;
    double best_divergence = std::numeric_limits<double>::infinity();
    int best_bins = kHistogramBins;
    std::vector<double> p, q;
    double outliers = std::accumulate(bins.begin() + kLevels, bins.end(), 0.0);
    for (int i = kLevels; i <= kHistogramBins; ++i) {
        p.assign(bins.begin(), bins.begin() + i);
        p.back() += outliers;
        if (i < kHistogramBins) outliers -= bins[static_cast<std::size_t>(i)];
        q.assign(static_cast<std::size_t>(i), 0.0);
        for (int level = 0; level < kLevels; ++level) {
            const int start = level * i / kLevels, end = (level + 1) * i / kLevels;
            double sum = 0.0;
            int non_empty = 0;
            for (int b = start; b < end; ++b) {
                sum += bins[static_cast<std::size_t>(b)];
                non_empty += bins[static_cast<std::size_t>(b)] > 0.0;
            }
            for (int b = start; b < end; ++b)
                if (bins[static_cast<std::size_t>(b)] > 0.0) q[static_cast<std::size_t>(b)] = sum / non_empty;
        }
        const double p_total = std::accumulate(p.begin(), p.end(), 0.0), q_total = std::accumulate(q.begin(), q.end(), 0.0);
        if (p_total <= 0.0 || q_total <= 0.0) continue;
        double divergence = 0.0;
        for (int b = 0; b < i; ++b) {
            const double pb = p[static_cast<std::size_t>(b)] / p_total;
            if (pb <= 0.0) continue;
            // An empty Q bin where P has mass (only the outlier bin can be one): a small floor keeps KL finite.
            const double qb = std::max(q[static_cast<std::size_t>(b)] / q_total, 1e-12);
            divergence += pb * std::log(pb / qb);
        }
        if (divergence < best_divergence) {
            best_divergence = divergence;
            best_bins = i;
        }
    }
    return static_cast<float>(best_bins * h.bin_width());
}

// The threshold with the least expected squared error: values above it are clipped to it, values below are
// rounded to a grid of step threshold / 127 (error step^2 / 12 each); exact zeros stay exact.
float mse_threshold(const ActivationHistogram& h) {
    const double width = h.bin_width();
    double best_error = std::numeric_limits<double>::infinity();
    int best_bins = kHistogramBins;
    for (int i = 1; i <= kHistogramBins; ++i) {
        const double threshold = i * width, step = threshold / kActivationMax;
        double error = 0.0;
        for (int b = 0; b < kHistogramBins; ++b) {
            const double count = h.bins[static_cast<std::size_t>(b)];
            if (count <= 0.0) continue;
            const double centre = (b + 0.5) * width;
            error += count * (centre > threshold ? (centre - threshold) * (centre - threshold) : step * step / 12.0);
        }
        if (error < best_error) {
            best_error = error;
            best_bins = i;
        }
    }
    return static_cast<float>(best_bins * width);
}

}  // namespace

float calibration_threshold(const ActivationHistogram& h, CalibrationMethod method) {
    if (!(h.high > 0.0f)) return 0.0f;
    switch (method) {
        case CalibrationMethod::MinMax: return h.high;
        case CalibrationMethod::Percentile: return percentile_threshold(h, kCalibrationPercentile);
        case CalibrationMethod::Entropy: return entropy_threshold(h);
        case CalibrationMethod::Mse: return mse_threshold(h);
    }
    return h.high;
}

double clipped_fraction(const ActivationHistogram& h, float threshold) {
    if (h.total <= 0.0 || !(h.high > 0.0f)) return 0.0;
    const double width = h.bin_width();
    double clipped = 0.0;
    for (int b = 0; b < kHistogramBins; ++b)
        if ((b + 0.5) * width > threshold) clipped += h.bins[static_cast<std::size_t>(b)];
    return clipped / h.total;
}

std::pair<float, float> calibrated_range(const ActivationHistogram& h, CalibrationMethod method) {
    if (h.low < 0.0f) return {h.low, h.high};
    return {0.0f, calibration_threshold(h, method)};
}

ActivationQuantization calibrated_quantization(const ActivationHistogram& h, CalibrationMethod method) {
    const auto [low, high] = calibrated_range(h, method);
    return activation_quantization(h.layer, low, high);
}

}  // namespace edgeqc
