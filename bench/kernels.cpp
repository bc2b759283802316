// Kernel micro-benchmark: the machine's FMA peak (measured here, per kernel table), then the GEMM and every conv
// layer of the reference network as GFLOP/s and % of that peak, with Eigen's GEMM as the outside reference (and
// the GEMM with bf16 products, where the CPU has it, against the same f32 peak).
// Prints figures, asserts nothing. Usage: edgeqc_kernels [SECONDS_PER_FIGURE]; OMP_NUM_THREADS sets the threads.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "engine/conv2d_f32.hpp"
#include "engine/kernels.hpp"
#include "engine/rng.hpp"
#include "layers/conv2d.hpp"
#include "optim/training_kernels.hpp"
#include "timing.hpp"

using namespace edgeqc;
using namespace edgeqc::bench;

namespace edgeqc {
void gemm_f32_eigen(bool transpose_a, bool transpose_b, int m, int n, int k, float alpha, const float* a, int lda,
                    const float* b, int ldb, float beta, float* c, int ldc, const GemmEpilogue& epilogue,
                    float* workspace);
}

namespace {

// The conv layers of the reference network at 1 x 80 x 120: input channels, filters, input height and width.
struct ConvLayerShape {
    int in_channels, out_channels, height, width;
};
constexpr ConvLayerShape kReferenceConvLayers[] = {
    {1, 32, 80, 120}, {32, 64, 40, 60}, {64, 512, 20, 30}, {512, 512, 10, 15}, {512, 256, 5, 7}};

// FLOP/s of the table's FMA probe with every OpenMP thread running it at once.
double fma_peak(const KernelTable& table, double min_seconds) {
    const long iterations = 20'000'000;
    double flops = 0.0;
    const double seconds = time_per_call([&] {
        double total = 0.0;
#pragma omp parallel reduction(+ : total)
        total += table.fma_peak_f32(iterations, 0.5f + 0.01f * omp_get_thread_num()).flops;
        flops = total;
    }, min_seconds);
    return flops / seconds;
}

std::vector<float> random_floats(std::size_t n, Rng& rng) {
    std::vector<float> values(n);
    for (float& v : values) v = rng.normal();
    return values;
}

void report(const char* what, double flops, double seconds, double peak) {
    const double rate = flops / seconds;
    std::printf("%-52s %8.1f GFLOP/s  %5.1f %% of peak  %9.3f ms\n", what, rate * 1e-9, 100.0 * rate / peak,
                seconds * 1e3);
}

// The GEMM a conv layer's forward runs, W[Cout x Cin*9] * columns[Cin*9 x positions].
// workspace_floats: the GEMM's workspace for these sizes (Eigen's own allocation counts as none).
void bench_gemm(const char* name, GemmF32 gemm, std::size_t (*workspace_floats)(int, int, int, bool),
                const ConvLayerShape& layer, int images, double peak, double min_seconds, Rng& rng) {
    const int m = layer.out_channels, k = layer.in_channels * 9, n = images * layer.height * layer.width;
    const std::vector<float> a = random_floats(static_cast<std::size_t>(m) * k, rng);
    const std::vector<float> b = random_floats(static_cast<std::size_t>(k) * n, rng);
    std::vector<float> c(static_cast<std::size_t>(m) * n);
    AlignedFloats workspace(workspace_floats ? workspace_floats(m, n, k, false) : 0);
    const double seconds = time_per_call(
        [&] { gemm(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n, {}, workspace.data()); },
        min_seconds);
    const std::string what = std::string("gemm ") + name + " " + std::to_string(m) + "x" + std::to_string(n) + "x" +
                             std::to_string(k);
    report(what.c_str(), 2.0 * m * n * k, seconds, peak);
}

// One conv layer of the reference network: training forward and backward (input gradient except for the first
// layer, which never needs one) and the packed inference conv with its fused ReLU, with Winograd on (each tile, for
// inference) or off. GFLOP/s count the direct convolution's multiply-adds, so Winograd's figures are effective rates
// and may exceed the FMA peak.
void bench_conv(const ConvLayerShape& layer, int batch, bool winograd, double peak, double min_seconds, Rng& rng) {
    Conv2dConfig config;
    config.in_channels = layer.in_channels;
    config.out_channels = layer.out_channels;
    config.winograd = winograd;
    Conv2d conv(config);
    ParameterArena parameters(true), buffers(false);
    conv.declare(parameters, buffers, "conv.");
    for (ParameterArena* arena : {&parameters, &buffers}) arena->allocate();
    conv.initialize(InitScheme::He, rng);
    const ConvGeometry geometry{layer.in_channels, layer.height, layer.width, 3, 1, 1, layer.height, layer.width};
    Tensor x({batch, layer.in_channels, layer.height, layer.width}), y, dy, dx;
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = rng.normal();
    const double flops = 2.0 * batch * layer.out_channels * layer.in_channels * 9.0 * layer.height * layer.width;
    const std::string shape = std::to_string(layer.in_channels) + "->" + std::to_string(layer.out_channels) + " " +
                              std::to_string(layer.height) + "x" + std::to_string(layer.width) + " b" +
                              std::to_string(batch) + (winograd ? " winograd" : " im2col");
    report(("conv train forward  " + shape).c_str(), flops,
           time_per_call([&] { conv.forward(x, y, Mode::Train); }, min_seconds), peak);
    dy.resize(y.shape());
    for (std::size_t i = 0; i < dy.size(); ++i) dy[i] = rng.normal();
    const bool input_gradient = layer.in_channels > 1;
    report(("conv train backward " + shape).c_str(), flops * (input_gradient ? 2.0 : 1.0),
           time_per_call([&] { conv.backward(x, y, dy, input_gradient ? &dx : nullptr); }, min_seconds), peak);
    // Inference: im2col, or Winograd with each output tile where Winograd suits the layer.
    std::vector<ConvAlgorithmF32> algorithms{ConvAlgorithmF32::Im2col};
    if (winograd) algorithms = {ConvAlgorithmF32::WinogradF2x2, ConvAlgorithmF32::WinogradF4x4};
    if (!winograd_suits(geometry)) algorithms.resize(1);
    for (const ConvAlgorithmF32 algorithm : algorithms) {
        const PackedConv2dF32 packed(kernels(), geometry, layer.out_channels, conv.weight().data, conv.bias().data,
                                     true, batch, omp_get_max_threads(), algorithm);
        AlignedFloats workspace(packed.workspace_floats(batch, omp_get_max_threads()));
        const char* tile = packed.algorithm() == ConvAlgorithmF32::WinogradF4x4 ? " 4x4"
                           : packed.uses_winograd()                               ? " 2x2"
                                                                                  : "";
        report(("conv inference      " + shape + tile).c_str(), flops,
               time_per_call([&] { packed.run(x.data(), batch, y.data(), workspace.data(), omp_get_max_threads()); },
                             min_seconds),
               peak);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (wants_help(argc, argv) || argc > 3) {
        std::fputs("usage: edgeqc_kernels [SECONDS_PER_FIGURE [ARCH]]\n  GEMM and conv kernels of every SIMD table "
                   "(or only ARCH's) against Eigen and the FMA peak (default 2 seconds per figure); OMP_NUM_THREADS "
                   "sets the threads\n",
                   wants_help(argc, argv) ? stdout : stderr);
        return wants_help(argc, argv) ? 0 : 2;
    }
    double min_seconds = 2.0;
    try {
        if (argc > 1) min_seconds = seconds_argument(argv[1]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "edgeqc_kernels: error: %s\n", e.what());
        return 1;
    }
    const std::string only_arch = argc > 2 ? argv[2] : "";
    if (!only_arch.empty() &&
        std::none_of(available_kernel_tables().begin(), available_kernel_tables().end(),
                     [&](const KernelTable* table) { return table->name == only_arch; })) {
        std::fprintf(stderr, "edgeqc_kernels: error: no kernel table '%s' on this CPU\n", only_arch.c_str());
        return 1;
    }
    Rng rng(1);
    std::printf("edgeqc kernel benchmark, %d threads\n", omp_get_max_threads());
    for (const KernelTable* table : available_kernel_tables()) {
        if (table->name == reference_kernels().name || (!only_arch.empty() && table->name != only_arch)) continue;
        select_kernels(table->name);
        const double peak = fma_peak(*table, min_seconds);
        std::printf("\n[%s] FMA peak %.1f GFLOP/s (%d threads)\n", table->name.c_str(), peak * 1e-9,
                    omp_get_max_threads());
        // bf16 products (train --precision bf16) where the CPU has them: up to twice the f32 FMA peak.
        const TrainingKernelTable& training = training_kernels();
        const bool bf16 = training.gemm_bf16 != reference_training_kernels().gemm_bf16;
        for (const ConvLayerShape& layer : kReferenceConvLayers) {
            bench_gemm(table->name.c_str(), table->gemm_f32, table->gemm_workspace_f32, layer, 1, peak, min_seconds, rng);
            if (bf16)
                bench_gemm("bf16", training.gemm_bf16, training.gemm_workspace_bf16, layer, 1, peak, min_seconds, rng);
            bench_gemm("eigen", gemm_f32_eigen, nullptr, layer, 1, peak, min_seconds, rng);
        }
        for (const int batch : {1, 32})
            for (const bool winograd : {false, true})
                for (const ConvLayerShape& layer : kReferenceConvLayers)
                    bench_conv(layer, batch, winograd, peak, min_seconds, rng);
    }
    return 0;
}
