// Int8 inference speed against edgeqc's own float path, measured in the same run: the reference network's plans
// at batch 1 and 32 (a He-initialised model, quantized with min-max calibration on random inputs: speed does not
// depend on the weights), then each convolution layer alone at batch 1, so a slow layer shows. Prints figures and
// the ratios int8 / float, asserts nothing.
// Usage: edgeqc_quantized [ARCH] [SECONDS_PER_FIGURE] [HEIGHTxWIDTH]; OMP_NUM_THREADS sets the threads.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

#include "engine/conv2d_f32.hpp"
#include "engine/inference_plan.hpp"
#include "engine/input_format.hpp"
#include "engine/kernels.hpp"
#include "engine/layer_s8.hpp"
#include "engine/model_passes.hpp"
#include "layers/network.hpp"
#include "optim/calibration.hpp"
#include "reference_models.hpp"
#include "timing.hpp"

using namespace edgeqc;
using namespace edgeqc::bench;

namespace {

constexpr const char* kUsage =
    "usage: edgeqc_quantized [ARCH] [SECONDS_PER_FIGURE] [HEIGHTxWIDTH]\n"
    "  int8 against float inference img/s at batch 1 and 32, plan memory, and each conv layer at batch 1\n"
    "  defaults: the default network, 5 seconds per figure, 80x120; OMP_NUM_THREADS sets the threads\n";

void run(const std::string& architecture, double min_seconds, int height, int width) {
    const int batch = 32;
    const ReferenceModels models = reference_models(architecture, height, width, std::vector<std::string>(5));
    const Model& folded = models.folded;
    const Model& quantized = models.quantized;
    Rng rng(2);
    std::vector<float> images(static_cast<std::size_t>(batch) * height * width);
    for (float& v : images) v = rng.normal();
    std::printf("edgeqc int8 against float: %s, 1x%dx%d input, kernels %s, %d threads\n", architecture.c_str(), height,
                width, kernels().kernels_used.c_str(), omp_get_max_threads());
    std::printf("%-22s %12s %12s %8s\n", "figure", "float", "int8", "ratio");
    for (const int images_per_run : {1, batch}) {
        InferencePlan float_plan(folded, images_per_run), int8_plan(quantized, images_per_run);
        const double float_seconds = time_per_call([&] { float_plan.run(images.data(), images_per_run); }, min_seconds);
        const double int8_seconds = time_per_call([&] { int8_plan.run(images.data(), images_per_run); }, min_seconds);
        std::printf("infer_b%d_img_per_s %12.1f %12.1f %8.2f\n", images_per_run, images_per_run / float_seconds,
                    images_per_run / int8_seconds, float_seconds / int8_seconds);
        if (images_per_run == 1)
            std::printf("batch1_plan_mib        %12.1f %12.1f %8.2f\n", float_plan.memory().total() / 1048576.0,
                        int8_plan.memory().total() / 1048576.0,
                        static_cast<double>(int8_plan.memory().total()) / static_cast<double>(float_plan.memory().total()));
    }

    // Each conv layer alone, batch 1: milliseconds and the ratio float / int8.
    const ResolvedArchitecture resolved = folded.description.resolve();
    Shape shape = resolved.input;
    for (std::size_t i = 0; i < resolved.layers.size(); ++i) {
        const LayerSpec& layer = resolved.layers[i];
        const Shape out = resolved.outputs[i];
        if (layer.kind == LayerKind::Conv) {
            const ConvGeometry g{shape[0], shape[1], shape[2], layer.kernel, layer.stride, layer.padding, out[1], out[2]};
            const std::string weight = resolved.tensor_name(i, TensorRole::Weight), bias = resolved.tensor_name(i, TensorRole::Bias);
            const PackedConv2dF32 float_conv(kernels(), g, layer.units, folded.f32_values(weight, ""),
                                             folded.f32_values(bias, ""), true, 1,
                                             omp_get_max_threads());
            const int threads = omp_get_max_threads();
            const PackedLayerS8 int8_conv(kernels(), &g, layer.units, 0, quantized.tensor(weight), &quantized.tensor(bias),
                                          quantized.input_quantization(i), ActivationQuantization{}, true, threads,
                                          ConvAlgorithm::Winograd);
            const PackedLayerS8 int8_gemm(kernels(), &g, layer.units, 0, quantized.tensor(weight), &quantized.tensor(bias),
                                          quantized.input_quantization(i), ActivationQuantization{}, true, threads,
                                          ConvAlgorithm::Im2col);
            AlignedFloats x(shape.elements(), 0.5f), y(out.elements());
            AlignedFloats float_workspace(float_conv.workspace_floats(1, omp_get_max_threads()));
            std::vector<unsigned char, AlignedAllocator<unsigned char>> xq(shape.elements(), 40), yq(out.elements()),
                int8_workspace(std::max(int8_conv.workspace_bytes(1, omp_get_max_threads()),
                                        int8_gemm.workspace_bytes(1, omp_get_max_threads())));
            const double float_seconds = time_per_call(
                [&] { float_conv.run(x.data(), 1, y.data(), float_workspace.data(), omp_get_max_threads()); }, min_seconds / 4);
            const double int8_seconds = time_per_call(
                [&] { int8_conv.run(xq.data(), 1, yq.data(), int8_workspace.data(), omp_get_max_threads()); }, min_seconds / 4);
            // Both int8 ways (a plan times them and keeps the faster), to show where the Winograd pays.
            const double gemm_seconds = time_per_call(
                [&] { int8_gemm.run(xq.data(), 1, yq.data(), int8_workspace.data(), omp_get_max_threads()); }, min_seconds / 4);
            const double best = std::min(int8_seconds, gemm_seconds);
            std::printf("layer %zu conv %3dx%-3d %3d->%-3d float %s %8.3f ms, int8 %s %8.3f ms (im2col %.3f, winograd %s), "
                        "ratio %5.2f\n",
                        i, shape[1], shape[2], shape[0], layer.units, float_conv.uses_winograd() ? "winograd" : "im2col  ",
                        1e3 * float_seconds, gemm_seconds <= int8_seconds || !int8_conv.uses_winograd() ? "im2col  " : "winograd",
                        1e3 * best, 1e3 * gemm_seconds,
                        int8_conv.uses_winograd() ? std::to_string(1e3 * int8_seconds).substr(0, 5).c_str() : "-",
                        float_seconds / best);
        }
        shape = out;
    }
}

}  // namespace

int main(int argc, char** argv) { return network_benchmark_main(argc, argv, "edgeqc_quantized", kUsage, 5.0, run); }
