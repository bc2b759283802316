// Calibration for post-training quantization: statistics of the float activations entering each conv and dense
// layer over calibration images (range and histogram), and the methods that choose from them the range a layer's
// 7-bit input grid covers: min-max, percentile, KL divergence (entropy, as TensorRT and ncnn) and MSE.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "engine/inference_plan.hpp"
#include "engine/model.hpp"

namespace edgeqc {

enum class CalibrationMethod { MinMax, Percentile, Entropy, Mse };
inline constexpr CalibrationMethod kCalibrationMethods[] = {CalibrationMethod::MinMax, CalibrationMethod::Percentile,
                                                            CalibrationMethod::Entropy, CalibrationMethod::Mse};
const char* calibration_method_name(CalibrationMethod method);  // "minmax", "percentile", "kl", "mse"
// Throws edgeqc::Error naming the choices for an unknown name.
CalibrationMethod parse_calibration_method(const std::string& name);

// What percentile calibration keeps: values above the 99.99th percentile of a layer's input are clipped.
inline constexpr double kCalibrationPercentile = 0.9999;
inline constexpr int kHistogramBins = 2048;

// The float input of one layer over all calibration images.
struct ActivationHistogram {
    int layer = 0;
    float low = 0.0f, high = 0.0f;  // the smallest and largest value seen
    double zeros = 0;               // values exactly 0 (most of a ReLU's output), not in bins
    double total = 0;               // all values seen
    std::vector<double> bins;       // kHistogramBins counts of the positive values over (0, high]
    double bin_width() const { return high / kHistogramBins; }
};

// Statistics of every conv and dense layer's float input: images (count x the plan's input floats, preprocessed)
// go twice through a float plan, once for the ranges and once for the histograms.
std::vector<ActivationHistogram> collect_activation_statistics(InferencePlan& plan, const float* images, int count);

// The upper end of the range a layer's input grid covers, by method; values above it are clipped.
float calibration_threshold(const ActivationHistogram& histogram, CalibrationMethod method);
// The fraction of the layer's input values above `threshold`.
double clipped_fraction(const ActivationHistogram& histogram, float threshold);
// The range the layer's input grid covers: [0, threshold] for a non-negative input (after a ReLU); the full
// observed range for one with negative values (the normalised image entering the first layer, which has no
// outliers).
std::pair<float, float> calibrated_range(const ActivationHistogram& histogram, CalibrationMethod method);
// The quantization of the layer's input over that range.
ActivationQuantization calibrated_quantization(const ActivationHistogram& histogram, CalibrationMethod method);

}  // namespace edgeqc
