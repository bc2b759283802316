// Building and running inference plans: one step per layer that computes, each with its packed weights.
#include "engine/inference_plan.hpp"

#include <omp.h>

#include <algorithm>

#include "engine/conv2d_f32.hpp"
#include "engine/error.hpp"
#include "engine/kernels.hpp"
#include "engine/model_passes.hpp"
#include "engine/pooling_f32.hpp"
#include "engine/softmax_f32.hpp"

namespace edgeqc {

// One layer that computes. Dropout and flatten are no steps at all: inference leaves dropout out, and a flattened
// image is the same floats in the same order.
struct InferencePlan::Step {
    LayerKind kind;
    Shape in, out;  // per image: C x H x W, or features
    bool relu = false;
    int kernel = 0, stride = 0;                // max pool
    std::unique_ptr<PackedConv2dF32> conv;     // conv
    AlignedFloats packed_weights;              // dense: W (out x in) packed as the GEMM's A
    std::vector<float> bias;                   // dense

    std::size_t workspace_floats(const KernelTable& table, int batch, int threads) const {
        if (kind == LayerKind::Conv) return conv->workspace_floats(batch, threads);
        if (kind == LayerKind::Dense)  // the product out x batch, then the GEMM's packing space
            return aligned_floats(static_cast<std::size_t>(out[0]) * batch) +
                   table.gemm_workspace_f32(out[0], batch, in[0], true);
        return 0;
    }

    void run(const KernelTable& table, const float* x, int batch, float* y, float* workspace, int threads) const {
        switch (kind) {
            case LayerKind::Conv: conv->run(x, batch, y, workspace, threads); return;
            case LayerKind::MaxPool:
                max_pool_f32(table, x, batch * in[0], in[1], in[2], kernel, stride, y, nullptr);
                return;
            case LayerKind::GlobalAvgPool:
                global_avg_pool_f32(x, batch * in[0], static_cast<std::size_t>(in[1]) * in[2], y);
                return;
            case LayerKind::Dense: {
                // C (out x batch) = W x^T, bias and ReLU fused, then transposed into y (batch x out).
                const int outputs = out[0], inputs = in[0];
                float* product = workspace;
                table.gemm_packed_a_f32(true, outputs, batch, inputs, 1.0f, packed_weights.data(), x, inputs, 0.0f,
                                        product, batch, {bias.data(), relu},
                                        workspace + aligned_floats(static_cast<std::size_t>(outputs) * batch));
                for (int n = 0; n < batch; ++n)
                    for (int o = 0; o < outputs; ++o)
                        y[static_cast<std::size_t>(n) * outputs + o] = product[static_cast<std::size_t>(o) * batch + n];
                return;
            }
            default: throw std::logic_error("InferencePlan: a step of a kind that never computes");
        }
    }
};

namespace {

const float* f32_tensor(const Model& model, const std::string& name) {
    return model.f32_values(name, "this edgeqc runs float models only (quantized models come with `edgeqc quantize`)");
}

}  // namespace

InferencePlan::InferencePlan(Model model, int max_batch, int threads)
    : max_batch_(max_batch), threads_(threads > 0 ? threads : omp_get_max_threads()) {
    if (max_batch < 1) throw Error("an inference plan needs a batch of at least 1");
    validate_model(model);
    Model folded = fold_batch_norm(std::move(model));
    description_ = folded.description;
    const ResolvedArchitecture architecture = description_.resolve();
    table_ = &kernels();
    const KernelTable& table = *table_;
    std::size_t largest_activation = input_floats(description_.input);
    std::size_t workspace_floats = 0;
    Shape shape = architecture.input;
    for (std::size_t i = 0; i < architecture.layers.size(); ++i) {
        const LayerSpec& layer = architecture.layers[i];
        const Shape out = architecture.outputs[i];
        const bool relu_follows = i + 1 < architecture.layers.size() && architecture.layers[i + 1].kind == LayerKind::Relu;
        auto step = std::make_unique<Step>();
        step->kind = layer.kind;
        step->in = shape;
        step->out = out;
        switch (layer.kind) {
            case LayerKind::Conv: {
                const std::string bias = architecture.tensor_name(i, TensorRole::Bias);
                const ConvGeometry g{shape[0], shape[1], shape[2], layer.kernel, layer.stride, layer.padding, out[1], out[2]};
                step->relu = relu_follows;
                step->conv = std::make_unique<PackedConv2dF32>(table, g, layer.units,
                                                               f32_tensor(folded, architecture.tensor_name(i, TensorRole::Weight)),
                                                               bias.empty() ? nullptr : f32_tensor(folded, bias), relu_follows);
                break;
            }
            case LayerKind::Dense: {
                const float* weight = f32_tensor(folded, architecture.tensor_name(i, TensorRole::Weight));
                const float* bias = f32_tensor(folded, architecture.tensor_name(i, TensorRole::Bias));
                step->relu = relu_follows;
                step->bias.assign(bias, bias + layer.units);
                step->packed_weights.resize(table.gemm_pack_a_f32(false, layer.units, shape[0], nullptr, shape[0], nullptr));
                table.gemm_pack_a_f32(false, layer.units, shape[0], weight, shape[0], step->packed_weights.data());
                break;
            }
            case LayerKind::MaxPool:
                step->kernel = layer.kernel;
                step->stride = layer.stride;
                break;
            case LayerKind::GlobalAvgPool: break;
            case LayerKind::Relu:  // the grammar puts every ReLU right after a conv or dense layer, which applies it
                if (steps_.empty() || !steps_.back()->relu || steps_.back()->out != shape)
                    throw std::logic_error("InferencePlan: a ReLU that follows no conv or dense layer");
                shape = out;
                continue;
            case LayerKind::Flatten:
            case LayerKind::Dropout: shape = out; continue;
            case LayerKind::BatchNorm: throw std::logic_error("InferencePlan: batch norm left after folding");
        }
        for (const TensorSlot& slot : architecture.tensors)  // packed now: the plain copy goes
            if (slot.layer == static_cast<int>(i)) folded.tensor(slot.name) = TypedTensor();
        largest_activation = std::max(largest_activation, out.elements());
        workspace_floats = std::max(workspace_floats, step->workspace_floats(table, max_batch, threads_));
        steps_.push_back(std::move(step));
        shape = out;
    }
    for (AlignedFloats& buffer : activations_) buffer.assign(aligned_floats(largest_activation * max_batch), 0.0f);
    workspace_.assign(workspace_floats, 0.0f);
    probabilities_.resize(static_cast<std::size_t>(max_batch) * num_classes());
}

InferencePlan::~InferencePlan() = default;
InferencePlan::InferencePlan(InferencePlan&&) noexcept = default;
InferencePlan& InferencePlan::operator=(InferencePlan&&) noexcept = default;

PlanMemory InferencePlan::memory() const {
    PlanMemory memory;
    for (const auto& step : steps_) {
        if (step->conv) memory.weights += step->conv->packed_bytes() + step->out[0] * sizeof(float);
        memory.weights += (step->packed_weights.size() + step->bias.size()) * sizeof(float);
    }
    memory.activations = (activations_[0].size() + activations_[1].size()) * sizeof(float);
    memory.workspace = workspace_.size() * sizeof(float);
    return memory;
}

const float* InferencePlan::run(const float* inputs, int batch) {
    if (batch < 1 || batch > max_batch_)
        throw Error("this inference plan takes 1 to " + std::to_string(max_batch_) + " images at a time, not " +
                    std::to_string(batch));
    // The GEMM, im2col and pooling loops open OpenMP teams of the calling thread's default size: make it the plan's.
    const int caller_threads = omp_get_max_threads();
    omp_set_num_threads(threads_);
    const float* x = inputs;
    int next = 0;
    try {
        for (const auto& step : steps_) {
            float* y = activations_[next].data();
            step->run(*table_, x, batch, y, workspace_.data(), threads_);
            x = y;
            next = 1 - next;
        }
    } catch (...) {
        omp_set_num_threads(caller_threads);
        throw;
    }
    omp_set_num_threads(caller_threads);
    return x;
}

const float* InferencePlan::probabilities(const float* inputs, int batch) {
    const float* logits = run(inputs, batch);
    const int classes = num_classes();
    for (int n = 0; n < batch; ++n)
        softmax_f32(logits + static_cast<std::size_t>(n) * classes, classes,
                    probabilities_.data() + static_cast<std::size_t>(n) * classes);
    return probabilities_.data();
}

}  // namespace edgeqc
