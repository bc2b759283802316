// Building and running inference plans: one step per layer that computes, each with its packed weights.
#include "engine/inference_plan.hpp"

#include <omp.h>

#include <algorithm>
#include <optional>

#include "engine/conv2d_f32.hpp"
#include "engine/error.hpp"
#include "engine/kernels.hpp"
#include "engine/model_passes.hpp"
#include "engine/layer_s8.hpp"
#include "engine/pooling.hpp"
#include "engine/softmax_f32.hpp"

namespace edgeqc {

// One step of the plan: a layer that computes, or the quantization of float activations entering an int8 layer.
// Dropout and flatten are no steps at all: inference leaves dropout out, and a flattened image is the same values
// in the same order. Steps on 7-bit activations (`quantized`) read bytes; an int8 layer writes bytes or floats.
struct InferencePlan::Step {
    enum class Kind { Conv, Dense, MaxPool, GlobalAvgPool, Quantize } kind;
    int layer = -1;  // index into the resolved architecture
    Shape in, out;   // per image: C x H x W, or features
    bool quantized = false;  // reads 7-bit activations
    bool relu = false;
    int kernel = 0, stride = 0;                // max pool
    std::unique_ptr<PackedConv2dF32> conv;     // float conv
    AlignedFloats packed_weights;              // float dense: W (out x in) packed as the GEMM's A
    std::vector<float> bias;                   // float dense
    std::unique_ptr<PackedLayerS8> s8;         // int8 conv or dense
    ActivationQuantization quantization;       // Quantize

    bool writes_quantized() const { return s8 ? s8->quantized_output() : quantized || kind == Kind::Quantize; }

    std::size_t workspace_floats(const KernelTable& table, int batch, int threads) const {
        if (s8) return aligned_floats((s8->workspace_bytes(batch, threads) + sizeof(float) - 1) / sizeof(float));
        if (kind == Kind::Conv) return conv->workspace_floats(batch, threads);
        if (kind == Kind::Dense)  // the product out x batch, then the GEMM's packing space
            return aligned_floats(static_cast<std::size_t>(out[0]) * batch) +
                   table.gemm_workspace_f32(out[0], batch, in[0], true);
        return 0;
    }

    void run(const KernelTable& table, const void* input, int batch, void* output, float* workspace,
             int threads) const {
        const auto* x = static_cast<const float*>(input);
        auto* y = static_cast<float*>(output);
        const auto* xq = static_cast<const std::uint8_t*>(input);
        auto* yq = static_cast<std::uint8_t*>(output);
        if (s8) {
            s8->run(xq, batch, output, reinterpret_cast<unsigned char*>(workspace), threads);
            return;
        }
        switch (kind) {
            case Kind::Conv: conv->run(x, batch, y, workspace, threads); return;
            case Kind::MaxPool:
                if (quantized) max_pool_u8(table, xq, batch * in[0], in[1], in[2], kernel, stride, yq);
                else max_pool_f32(table, x, batch * in[0], in[1], in[2], kernel, stride, y, nullptr);
                return;
            case Kind::GlobalAvgPool: {
                const std::size_t plane = static_cast<std::size_t>(in[1]) * in[2];
                if (quantized) global_avg_pool_u8(xq, batch * in[0], plane, yq);
                else global_avg_pool_f32(x, batch * in[0], plane, y);
                return;
            }
            case Kind::Quantize:
                table.quantize_u8(x, in.elements() * batch, quantization.scale, quantization.zero_point, yq);
                return;
            case Kind::Dense: {
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
        }
    }
};

namespace {

const float* f32_tensor(const Model& model, const std::string& name) {
    return model.f32_values(name, "a layer with float weights needs a float bias");
}

// The next layer after `layer` that multiplies (conv or dense), or none.
std::optional<std::size_t> next_compute_layer(const ResolvedArchitecture& architecture, std::size_t layer) {
    for (std::size_t j = layer + 1; j < architecture.layers.size(); ++j)
        if (architecture.layers[j].kind == LayerKind::Conv || architecture.layers[j].kind == LayerKind::Dense) return j;
    return std::nullopt;
}

// The layer after `layer` (and its ReLU) when it is a 2x2 max pool of stride 2, which a conv may take over.
std::optional<std::size_t> max_pool_2x2_after(const ResolvedArchitecture& architecture, std::size_t layer) {
    std::size_t j = layer + 1;
    if (j < architecture.layers.size() && architecture.layers[j].kind == LayerKind::Relu) ++j;
    if (j >= architecture.layers.size()) return std::nullopt;
    const LayerSpec& pool = architecture.layers[j];
    if (pool.kind != LayerKind::MaxPool || pool.kernel != 2 || pool.stride != 2) return std::nullopt;
    return j;
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
    bool quantized = false;  // whether the activations reaching layer i are 7-bit
    int fused_pool = -1;  // a max pool layer the conv step before it computes, or none
    Steps steps;
    const auto add_step = [&](std::unique_ptr<Step> step) {
        largest_activation = std::max(largest_activation, step->out.elements());
        workspace_floats = std::max(workspace_floats, step->workspace_floats(table, max_batch, threads_));
        quantized = step->writes_quantized();
        steps.push_back(std::move(step));
    };
    for (std::size_t i = 0; i < architecture.layers.size(); ++i) {
        const LayerSpec& layer = architecture.layers[i];
        const Shape out = architecture.outputs[i];
        const bool relu_follows = i + 1 < architecture.layers.size() && architecture.layers[i + 1].kind == LayerKind::Relu;
        const bool int8 = folded.is_quantized(architecture, i);
        if (int8 && !quantized) {  // float activations entering an int8 layer
            auto step = std::make_unique<Step>();
            step->kind = Step::Kind::Quantize;
            step->layer = static_cast<int>(i);
            step->in = step->out = shape;
            step->quantization = folded.input_quantization(i);
            add_step(std::move(step));
        }
        auto step = std::make_unique<Step>();
        step->layer = static_cast<int>(i);
        step->in = shape;
        step->out = out;
        step->quantized = quantized;
        step->relu = relu_follows;
        const std::string weight = architecture.tensor_name(i, TensorRole::Weight);
        const std::string bias = architecture.tensor_name(i, TensorRole::Bias);
        switch (layer.kind) {
            case LayerKind::Conv:
            case LayerKind::Dense: {
                const bool is_conv = layer.kind == LayerKind::Conv;
                step->kind = is_conv ? Step::Kind::Conv : Step::Kind::Dense;
                const ConvGeometry g{shape[0], shape[1], shape[2], layer.kernel, layer.stride, layer.padding, out[1], out[2]};
                // A pool that follows is computed on the way out where it can be: the full output never written.
                const std::optional<std::size_t> pool = max_pool_2x2_after(architecture, i);
                if (int8) {
                    const std::optional<std::size_t> next = next_compute_layer(architecture, i);
                    std::optional<ActivationQuantization> output;
                    if (next && folded.is_quantized(architecture, *next)) output = folded.input_quantization(*next);
                    step->s8 = std::make_unique<PackedLayerS8>(
                        table, is_conv ? &g : nullptr, layer.units, static_cast<int>(shape.elements()),
                        folded.tensor(weight), bias.empty() ? nullptr : &folded.tensor(bias), folded.input_quantization(i),
                        output, relu_follows, threads_, ConvAlgorithm::Fastest, is_conv && pool);
                } else if (is_conv) {
                    step->conv = std::make_unique<PackedConv2dF32>(table, g, layer.units, f32_tensor(folded, weight),
                                                                   bias.empty() ? nullptr : f32_tensor(folded, bias),
                                                                   relu_follows, max_batch, threads_);
                } else {
                    const float* bias_values = f32_tensor(folded, bias);
                    step->bias.assign(bias_values, bias_values + layer.units);
                    step->packed_weights.resize(table.gemm_pack_a_f32(false, layer.units, shape[0], nullptr, shape[0], nullptr));
                    table.gemm_pack_a_f32(false, layer.units, shape[0], f32_tensor(folded, weight), shape[0],
                                          step->packed_weights.data());
                }
                if (is_conv && pool && (int8 ? step->s8->pools() : step->conv->fuse_max_pool_2x2())) {
                    fused_pool = static_cast<int>(*pool);
                    step->out = architecture.outputs[*pool];
                }
                break;
            }
            case LayerKind::MaxPool:
                if (fused_pool == static_cast<int>(i)) {
                    shape = out;
                    continue;
                }
                step->kind = Step::Kind::MaxPool;
                step->kernel = layer.kernel;
                step->stride = layer.stride;
                break;
            case LayerKind::GlobalAvgPool: step->kind = Step::Kind::GlobalAvgPool; break;
            case LayerKind::Relu:  // the grammar puts every ReLU right after a conv or dense layer, which applies it
                // (Its conv step's output is the pooled one when it took over the pool right after.)
                if (steps.empty() || !steps.back()->relu ||
                    (steps.back()->out != shape && fused_pool != static_cast<int>(i) + 1))
                    throw std::logic_error("InferencePlan: a ReLU that follows no conv or dense layer");
                shape = out;
                continue;
            case LayerKind::Flatten:
            case LayerKind::Dropout: shape = out; continue;
            case LayerKind::BatchNorm: throw std::logic_error("InferencePlan: batch norm left after folding");
        }
        for (const TensorSlot& slot : architecture.tensors)  // packed now: the plain copy goes
            if (slot.layer == static_cast<int>(i)) folded.tensor(slot.name) = TypedTensor();
        add_step(std::move(step));
        shape = out;
    }
    if (quantized) throw std::logic_error("InferencePlan: the logits came out quantized");
    steps_ = std::make_shared<const Steps>(std::move(steps));
    for (AlignedFloats& buffer : activations_) buffer.assign(aligned_floats(largest_activation * max_batch), 0.0f);
    workspace_.assign(workspace_floats, 0.0f);
    probabilities_.resize(static_cast<std::size_t>(max_batch) * num_classes());
}

InferencePlan::~InferencePlan() = default;
InferencePlan::InferencePlan(InferencePlan&&) noexcept = default;
InferencePlan& InferencePlan::operator=(InferencePlan&&) noexcept = default;

InferencePlan InferencePlan::sharing_weights() const {
    InferencePlan plan;
    plan.description_ = description_;
    plan.table_ = table_;
    plan.max_batch_ = max_batch_;
    plan.threads_ = threads_;
    plan.steps_ = steps_;
    for (int i = 0; i < 2; ++i) plan.activations_[i].assign(activations_[i].size(), 0.0f);
    plan.workspace_.assign(workspace_.size(), 0.0f);
    plan.probabilities_.resize(probabilities_.size());
    return plan;
}

PlanMemory InferencePlan::memory() const {
    PlanMemory memory;
    for (const auto& step : *steps_) {
        if (step->conv) memory.weights += step->conv->packed_bytes() + step->out[0] * sizeof(float);
        if (step->s8) memory.weights += step->s8->packed_bytes();
        memory.weights += (step->packed_weights.size() + step->bias.size()) * sizeof(float);
    }
    memory.activations = (activations_[0].size() + activations_[1].size()) * sizeof(float);
    memory.workspace = workspace_.size() * sizeof(float);
    return memory;
}

const float* InferencePlan::run(const float* inputs, int batch, const LayerInputObserver& observer) {
    if (batch < 1 || batch > max_batch_)
        throw Error("this inference plan takes 1 to " + std::to_string(max_batch_) + " images at a time, not " +
                    std::to_string(batch));
    // The GEMM, im2col and pooling loops open OpenMP teams of the calling thread's default size: make it the plan's.
    const int caller_threads = omp_get_max_threads();
    omp_set_num_threads(threads_);
    const void* x = inputs;
    int next = 0;
    try {
        for (const auto& step : *steps_) {
            if (observer && !step->quantized && (step->kind == Step::Kind::Conv || step->kind == Step::Kind::Dense))
                observer(step->layer, static_cast<const float*>(x), step->in.elements() * batch);
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
    return static_cast<const float*>(x);
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
