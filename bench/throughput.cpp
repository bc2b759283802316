// Throughput benchmark of the reference network: training img/s (forward + backward + Adam) at batch 32, in f32
// and, where the CPU has AVX-512 BF16, with bf16 products (train --precision bf16); inference img/s at batch 1 and
// 32, achieved GFLOP/s and peak RSS (of f32 training). Prints figures, asserts nothing.
// Usage: edgeqc_throughput [--figure train|infer|all] [ARCH] [SECONDS_PER_FIGURE] [HEIGHTxWIDTH]; OMP_NUM_THREADS
// sets the threads.
#include <omp.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "engine/architecture.hpp"
#include "engine/kernels.hpp"
#include "engine/inference_plan.hpp"
#include "engine/input_format.hpp"
#include "layers/network.hpp"
#include "layers/softmax_cross_entropy.hpp"
#include "optim/optimizer.hpp"
#include "optim/training_kernels.hpp"
#include "timing.hpp"

using namespace edgeqc;
using namespace edgeqc::bench;

namespace {

constexpr const char* kUsage =
    "usage: edgeqc_throughput [--figure train|infer|all] [ARCH] [SECONDS_PER_FIGURE] [HEIGHTxWIDTH]\n"
    "  training img/s (batch 32, forward + backward + Adam), inference img/s at batch 1 and 32, GFLOP/s, peak RSS\n"
    "  defaults: all figures, the default network, 10 seconds per figure, 80x120; OMP_NUM_THREADS sets the threads\n";

// Which figures to measure: bench/throughput.sh alternates them with PyTorch's, one kind at a time.
bool measure_training = true, measure_inference = true;

// Seconds per training step (forward, backward, Adam) of a fresh network on `images`, computing with `table` (null:
// the active one).
double training_step_seconds(const std::string& architecture, const Tensor& images, const std::vector<int>& labels,
                             int classes, const KernelTable* table, double min_seconds) {
    Network network(architecture, Shape{images.shape()[1], images.shape()[2], images.shape()[3]}, classes);
    network.initialize(InitScheme::He, 1);
    network.compute_with(table);
    Optimizer adam(OptimizerConfig{}, network.parameters().size());
    Tensor dlogits;
    return time_per_call([&] {
        softmax_cross_entropy(network.forward(images, Mode::Train), labels, {}, &dlogits);
        network.parameters().zero_gradients();
        network.backward(dlogits);
        adam.step(network.parameters().values(), network.parameters().gradients(), 1e-4f);
    }, min_seconds);
}

void run(const std::string& architecture, double min_seconds, int height, int width) {
    const int classes = 5, batch = 32;
    Network network(architecture, Shape{1, height, width}, classes);
    network.initialize(InitScheme::He, 1);
    Rng rng(2);
    Tensor images({batch, 1, height, width}), single({1, 1, height, width});
    for (std::size_t i = 0; i < images.size(); ++i) images[i] = rng.normal();
    for (std::size_t i = 0; i < single.size(); ++i) single[i] = images[i];
    std::vector<int> labels(batch);
    for (int n = 0; n < batch; ++n) labels[static_cast<std::size_t>(n)] = n % classes;

    const double gflop = network.flops_per_image() * 1e-9;
    std::printf("edgeqc throughput: %s, 1x%dx%d input, %.3f GFLOP/image forward, kernels %s, %s, %d threads\n",
                architecture.c_str(), height, width, gflop, kernels().kernels_used.c_str(),
                training_kernels().kernels_used.c_str(), omp_get_max_threads());
    if (measure_training) {
        const double train_seconds = training_step_seconds(architecture, images, labels, classes, nullptr, min_seconds);
        const double train_rss = peak_rss_mib();
        std::printf("train_img_per_s %.2f  (%.1f GFLOP/s counting backward as 2x forward)\n", batch / train_seconds,
                    3.0 * gflop * batch / train_seconds);
        if (training_kernels().gemm_bf16 != reference_training_kernels().gemm_bf16) {
            const double bf16_seconds =
                training_step_seconds(architecture, images, labels, classes, &bf16_product_kernels(), min_seconds);
            std::printf("train_bf16_img_per_s %.2f  (%.2fx f32 training)\n", batch / bf16_seconds,
                        train_seconds / bf16_seconds);
        }
        std::printf("peak_rss_mib_after_training %.0f\n", train_rss);
    }
    if (!measure_inference) return;
    ModelDescription description;
    description.architecture = architecture;
    description.class_names.resize(classes);
    description.input.height = height;
    description.input.width = width;
    const Model model = network.to_model(description);
    InferencePlan batch_plan(model, batch), single_plan(model, 1);
    const double batch_seconds = time_per_call([&] { batch_plan.run(images.data(), batch); }, min_seconds);
    const double single_seconds = time_per_call([&] { single_plan.run(single.data(), 1); }, min_seconds);
    std::printf("infer_b32_img_per_s %.2f  (%.1f GFLOP/s)\n", batch / batch_seconds, gflop * batch / batch_seconds);
    std::printf("infer_b1_img_per_s %.2f  (%.1f GFLOP/s)\n", 1.0 / single_seconds, gflop / single_seconds);
    std::printf("batch1_plan_mib %.1f  (weights %.1f, activations %.1f, workspace %.1f)\n",
                single_plan.memory().total() / 1048576.0, single_plan.memory().weights / 1048576.0,
                single_plan.memory().activations / 1048576.0, single_plan.memory().workspace / 1048576.0);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && std::strcmp(argv[1], "--figure") == 0) {
        const std::string figure = argc > 2 ? argv[2] : "";
        if (figure != "train" && figure != "infer" && figure != "all") {
            std::fprintf(stderr, "edgeqc_throughput: error: --figure takes train, infer or all, not '%s'\n",
                         figure.c_str());
            return 2;
        }
        measure_training = figure != "infer";
        measure_inference = figure != "train";
        argv[2] = argv[0];  // the arguments after the option, behind the program's name
        return network_benchmark_main(argc - 2, argv + 2, "edgeqc_throughput", kUsage, 10.0, run);
    }
    return network_benchmark_main(argc, argv, "edgeqc_throughput", kUsage, 10.0, run);
}
