// The golden end-to-end test against PyTorch: tests/golden/golden_v1.txt (written by make_golden.py with
// Debian's python3-torch, in float64) holds weights, inputs, logits, every gradient, batch-norm statistics
// and 10-step loss curves of Adam, AdamW and SGD for small networks of every trainable layer kind.
// The engine must reproduce all of it within the named tolerances, on every kernel path, and the folded
// inference network must give the same eval logits.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "engine/kernels.hpp"
#include "engine/inference_plan.hpp"
#include "layers/network.hpp"
#include "layers/softmax_cross_entropy.hpp"
#include "optim/optimizer.hpp"
#include "optim/training_kernels.hpp"
#include "test_support.hpp"

using namespace edgeqc;
using edgeqc::testing::cpu_runs_bf16_products;

namespace {

// float32 engine vs float64 reference; the generator measured float32 PyTorch within 1e-5 of the file.
constexpr double kAbsoluteTolerance = 1e-4;
constexpr double kRelativeTolerance = 1e-3;
constexpr int kCurveSteps = 10;

struct GoldenNet {
    std::string name, spec;
    int classes = 0;
    std::map<std::string, std::pair<std::vector<int>, std::vector<double>>> tensors;  // name -> (dims, values)

    const std::vector<double>& values(const std::string& tensor) const {
        const auto found = tensors.find(tensor);
        if (found == tensors.end()) FAIL("golden file lacks tensor " << tensor << " for net " << name);
        return found->second.second;
    }
    const std::vector<int>& dims(const std::string& tensor) const { return tensors.at(tensor).first; }
};

std::vector<GoldenNet> read_golden(const std::string& path) {
    std::ifstream in(path);
    REQUIRE_MESSAGE(in, "cannot open " << path);
    std::string line;
    std::getline(in, line);
    REQUIRE(line == "edgeqc-golden 1");
    std::vector<GoldenNet> nets;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string keyword;
        words >> keyword;
        if (keyword == "net") {
            nets.emplace_back();
            words >> nets.back().name >> nets.back().spec >> nets.back().classes;
        } else if (keyword == "tensor") {
            std::string name;
            int rank = 0;
            words >> name >> rank;
            std::vector<int> dims(static_cast<std::size_t>(rank));
            std::size_t count = 1;
            for (int& d : dims) {
                words >> d;
                count *= static_cast<std::size_t>(d);
            }
            std::getline(in, line);
            std::istringstream numbers(line);
            std::vector<double> values(count);
            for (double& v : values) numbers >> v;
            REQUIRE_MESSAGE(numbers, "tensor " << name << " is short");
            nets.back().tensors[name] = {dims, values};
        }
    }
    REQUIRE(nets.size() == 2);
    return nets;
}

void check_all_close(const float* actual, const std::vector<double>& expected, const std::string& what) {
    std::size_t bad = 0;
    double worst = 0.0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const double error = std::abs(actual[i] - expected[i]);
        if (error > kAbsoluteTolerance + kRelativeTolerance * std::abs(expected[i])) ++bad;
        worst = std::max(worst, error);
    }
    INFO(what << ": " << bad << " of " << expected.size() << " values out of tolerance, worst abs error " << worst);
    CHECK(bad == 0);
}

Tensor tensor_from(const GoldenNet& net, const std::string& name) {
    const std::vector<int>& d = net.dims(name);
    Tensor t(d.size() == 4 ? Shape{d[0], d[1], d[2], d[3]} : Shape{d[0], d[1]});
    const std::vector<double>& v = net.values(name);
    for (std::size_t i = 0; i < v.size(); ++i) t[i] = static_cast<float>(v[i]);
    return t;
}

// Fresh network with the golden initial parameters and PyTorch's initial running statistics.
Network network_from(const GoldenNet& net) {
    const std::vector<int>& d = net.dims("input");
    Network network(net.spec, Shape{d[1], d[2], d[3]}, net.classes);
    network.initialize(InitScheme::He, 0);  // sets running mean 0 / variance 1; weights are overwritten next
    REQUIRE(network.parameters().slots().size() ==
            static_cast<std::size_t>(std::count_if(net.tensors.begin(), net.tensors.end(), [](const auto& t) {
                return t.first.rfind("param.", 0) == 0;
            })));
    for (std::size_t i = 0; i < network.parameters().slots().size(); ++i) {
        const TensorView slot = network.parameters().value(i);
        const std::vector<double>& v = net.values("param." + std::to_string(i));
        REQUIRE(v.size() == slot.size());
        for (std::size_t k = 0; k < v.size(); ++k) slot[k] = static_cast<float>(v[k]);
    }
    return network;
}

std::vector<int> labels_of(const GoldenNet& net) {
    std::vector<int> labels;
    for (double v : net.values("labels")) labels.push_back(static_cast<int>(v));
    return labels;
}

// Runs 10 optimizer steps on the golden batch and returns the loss before each step.
std::vector<double> loss_curve(const GoldenNet& net, Network& network, const OptimizerConfig& config, float lr) {
    const Tensor input = tensor_from(net, "input");
    const std::vector<int> labels = labels_of(net);
    Optimizer optimizer(config, network.parameters().size());
    Tensor dlogits;
    std::vector<double> curve;
    for (int step = 0; step < kCurveSteps; ++step) {
        curve.push_back(softmax_cross_entropy(network.forward(input, Mode::Train), labels, {}, &dlogits));
        network.parameters().zero_gradients();
        network.backward(dlogits);
        optimizer.step(network.parameters().values(), network.parameters().gradients(), lr);
    }
    return curve;
}

void check_curve(const std::vector<double>& actual, const std::vector<double>& expected, const std::string& what) {
    std::vector<float> as_float(actual.begin(), actual.end());
    check_all_close(as_float.data(), expected, what);
}

void check_net(const GoldenNet& net) {
    CAPTURE(net.name);
    const Tensor input = tensor_from(net, "input");
    const std::vector<int> labels = labels_of(net);
    Network network = network_from(net);
    Tensor dlogits;
    const Tensor& logits = network.forward(input, Mode::Train);
    check_all_close(logits.data(), net.values("logits"), "logits");
    const double loss = softmax_cross_entropy(logits, labels, {}, &dlogits);
    CHECK(loss == doctest::Approx(net.values("loss")[0]).epsilon(kRelativeTolerance));

    std::vector<float> class_weights;
    for (double w : net.values("class_weights")) class_weights.push_back(static_cast<float>(w));
    Tensor weighted_dlogits;
    const double weighted = softmax_cross_entropy(logits, labels, class_weights, &weighted_dlogits);
    CHECK(weighted == doctest::Approx(net.values("weighted_loss")[0]).epsilon(kRelativeTolerance));
    check_all_close(weighted_dlogits.data(), net.values("grad.weighted.logits"), "weighted dlogits");

    network.parameters().zero_gradients();
    network.backward(dlogits, true);
    for (std::size_t i = 0; i < network.parameters().slots().size(); ++i)
        check_all_close(network.parameters().gradient(i).data, net.values("grad.param." + std::to_string(i)),
                        "grad.param." + std::to_string(i));
    check_all_close(network.input_gradient().data(), net.values("grad.input"), "grad.input");
    for (std::size_t i = 0; i < network.buffers().slots().size(); ++i) {
        const std::string bn_name = "bn." + std::to_string(i / 2) + (i % 2 ? ".running_var" : ".running_mean");
        check_all_close(network.buffers().value(i).data, net.values(bn_name), bn_name);
    }

    OptimizerConfig adam;
    Network adam_network = network_from(net);
    check_curve(loss_curve(net, adam_network, adam, 1e-2f), net.values("curve.adam"), "curve.adam");
    for (std::size_t i = 0; i < adam_network.parameters().slots().size(); ++i)
        check_all_close(adam_network.parameters().value(i).data, net.values("adam.final.param." + std::to_string(i)),
                        "adam.final.param." + std::to_string(i));
    for (std::size_t i = 0; i < adam_network.buffers().slots().size(); ++i) {
        const std::string bn_name = "adam.final.bn." + std::to_string(i / 2) + (i % 2 ? ".running_var" : ".running_mean");
        check_all_close(adam_network.buffers().value(i).data, net.values(bn_name), bn_name);
    }
    Tensor eval_input = tensor_from(net, "input");
    check_all_close(adam_network.forward(eval_input, Mode::Infer).data(), net.values("eval_logits"), "eval logits");
    ModelDescription description;
    description.architecture = net.spec;
    description.class_names.resize(static_cast<std::size_t>(net.classes));
    description.input.channels = eval_input.shape()[1];
    description.input.height = eval_input.shape()[2];
    description.input.width = eval_input.shape()[3];
    // The inference plan (batch norm folded, weights packed, ReLU fused) against PyTorch's eval-mode logits.
    InferencePlan plan(adam_network.to_model(description), eval_input.shape()[0]);
    check_all_close(plan.run(eval_input.data(), eval_input.shape()[0]), net.values("eval_logits"), "plan eval logits");

    OptimizerConfig adamw;
    adamw.weight_decay = 0.1f;
    Network adamw_network = network_from(net);
    check_curve(loss_curve(net, adamw_network, adamw, 1e-2f), net.values("curve.adamw"), "curve.adamw");

    OptimizerConfig sgd;
    sgd.kind = OptimizerKind::Sgd;
    sgd.momentum = 0.9f;
    Network sgd_network = network_from(net);
    check_curve(loss_curve(net, sgd_network, sgd, 0.05f), net.values("curve.sgd"), "curve.sgd");
}

}  // namespace

TEST_CASE("golden: logits, gradients, batch-norm statistics and optimizer curves match PyTorch") {
    const std::vector<GoldenNet> nets = read_golden(std::string(EDGEQC_SOURCE_DIR) + "/tests/golden/golden_v1.txt");
    const std::string original = kernels().name;
    for (const KernelTable* table : available_kernel_tables()) {
        CAPTURE(table->name);
        select_kernels(table->name);
        for (const GoldenNet& net : nets) check_net(net);
    }
    select_kernels(original);
}

TEST_CASE("golden: bf16 training's 10-step loss curves stay within 2 % of the first loss of PyTorch's f32 curves") {
    // bf16 keeps 8 significant bits: each product's operands are off by up to 2^-9 (0.2 %) relative. Measured on
    // these nets, with AVX-512 BF16 and with the scalar reference alike, Adam and SGD with momentum: at most 0.76 %
    // (one net) and 0.14 % (the other) of the first loss off at any of the 10 steps, where the f32 test above holds the
    // same curves to 0.1 %. The loss falls towards 0, so the tolerance is a share of the first loss, not of each
    // step's. A curve computed in f32 would pass too, so the last check shows that the products are really rounded.
    constexpr double kBf16CurveTolerance = 2e-2;
    const std::vector<GoldenNet> nets = read_golden(std::string(EDGEQC_SOURCE_DIR) + "/tests/golden/golden_v1.txt");
    const std::string original = kernels().name;
    std::vector<std::string> arches{"scalar"};  // the reference's bf16 products everywhere, the CPU's where it has them
    if (cpu_runs_bf16_products()) arches.push_back(original);
    for (const std::string& arch : arches) {
        CAPTURE(arch);
        select_kernels(arch);
        for (const GoldenNet& net : nets) {
            CAPTURE(net.name);
            double worst_bf16_to_f32 = 0.0, worst_golden = 0.0;
            for (const bool sgd : {false, true}) {
                OptimizerConfig config;
                if (sgd) {
                    config.kind = OptimizerKind::Sgd;
                    config.momentum = 0.9f;
                }
                const float lr = sgd ? 0.05f : 1e-2f;
                Network bf16_network = network_from(net);
                bf16_network.compute_with(&bf16_product_kernels());
                const std::vector<double> bf16 = loss_curve(net, bf16_network, config, lr);
                Network f32_network = network_from(net);
                const std::vector<double> f32 = loss_curve(net, f32_network, config, lr);
                const std::vector<double>& golden = net.values(sgd ? "curve.sgd" : "curve.adam");
                for (int step = 0; step < kCurveSteps; ++step) {
                    CAPTURE(step);
                    CHECK(std::abs(bf16[step] - golden[step]) <= kBf16CurveTolerance * golden[0]);
                    worst_golden = std::max(worst_golden, std::abs(bf16[step] - golden[step]) / golden[0]);
                    worst_bf16_to_f32 = std::max(worst_bf16_to_f32, std::abs(bf16[step] - f32[step]) / golden[0]);
                }
            }
            MESSAGE("worst difference, as a share of the first loss: bf16 to PyTorch "
                    << worst_golden << ", bf16 to f32 " << worst_bf16_to_f32);
            CHECK(worst_bf16_to_f32 > 1e-4);
        }
    }
    select_kernels(original);
}
