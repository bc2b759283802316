// Building a network from specs, running it forward and backward, and folding batch norm for inference.
#include "engine/network.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "engine/error.hpp"
#include "layers/batch_norm.hpp"
#include "layers/conv2d.hpp"
#include "layers/dense.hpp"
#include "layers/dropout.hpp"
#include "layers/flatten.hpp"
#include "layers/global_avg_pool.hpp"
#include "layers/max_pool.hpp"
#include "layers/relu.hpp"

namespace edgeqc {

namespace {

std::unique_ptr<Layer> make_layer(LayerSpec& spec, const Shape& input, int num_classes) {
    switch (spec.kind) {
        case LayerKind::Conv:
            return std::make_unique<Conv2d>(
                Conv2dConfig{input[1], spec.units, spec.kernel, spec.stride, spec.padding, spec.bias});
        case LayerKind::BatchNorm: spec.units = input[1]; return std::make_unique<BatchNorm>(input[1]);
        case LayerKind::Relu: return std::make_unique<Relu>();
        case LayerKind::MaxPool: return std::make_unique<MaxPool>(spec.kernel, spec.stride);
        case LayerKind::GlobalAvgPool: return std::make_unique<GlobalAvgPool>();
        case LayerKind::Flatten: return std::make_unique<Flatten>();
        case LayerKind::Dense:
            if (spec.units == kClassCount) spec.units = num_classes;
            return std::make_unique<Dense>(input[1], spec.units);
        case LayerKind::Dropout: return std::make_unique<Dropout>(spec.probability);
    }
    throw Error("unknown layer kind");
}

const char* kind_name(LayerKind kind) {
    switch (kind) {
        case LayerKind::Conv: return "conv";
        case LayerKind::BatchNorm: return "batchnorm";
        case LayerKind::Relu: return "relu";
        case LayerKind::MaxPool: return "maxpool";
        case LayerKind::GlobalAvgPool: return "gap";
        case LayerKind::Flatten: return "flatten";
        case LayerKind::Dense: return "dense";
        case LayerKind::Dropout: return "dropout";
    }
    return "?";
}

}  // namespace

Network::Network(const std::string& architecture, const Shape& input, int num_classes, bool trainable)
    : Network(parse_architecture(architecture), input, num_classes, trainable) {}

Network::Network(std::vector<LayerSpec> layers, const Shape& input, int num_classes, bool trainable)
    : Network(std::move(layers), input, num_classes, trainable ? Storage::Trainable : Storage::InferenceOnly) {}

std::size_t Network::stored_floats(const std::string& architecture, const Shape& input, int num_classes) {
    const Network probe(parse_architecture(architecture), input, num_classes, Storage::None);
    return probe.parameters_->parameter_count() + probe.buffers_->parameter_count();
}

Network::Network(std::vector<LayerSpec> layers, const Shape& input, int num_classes, Storage storage)
    : input_shape_(input),
      num_classes_(num_classes),
      parameters_(std::make_unique<ParameterArena>(storage == Storage::Trainable)),
      buffers_(std::make_unique<ParameterArena>(false)) {
    if (num_classes < 1) throw Error("a network needs at least one class");
    if (input.rank() != 3 || input[0] < 1 || input[1] < 1 || input[2] < 1)
        throw Error("network input must be C x H x W with positive sizes, got " + input.str());
    Shape shape{1, input[0], input[1], input[2]};
    for (LayerSpec& spec : layers) {
        if (spec.kind == LayerKind::Dense && shape.rank() == 4) {
            specs_.push_back({LayerKind::Flatten});
            layers_.push_back(std::make_unique<Flatten>());
            shape = layers_.back()->output_shape(shape);
            output_shapes_.push_back(shape);
        }
        layers_.push_back(make_layer(spec, shape, num_classes));
        specs_.push_back(spec);
        shape = layers_.back()->output_shape(shape);
        output_shapes_.push_back(shape);
        layers_.back()->declare(*parameters_, *buffers_, std::to_string(layers_.size() - 1) + ".");
    }
    if (shape.rank() != 2 || shape[1] != num_classes)
        throw Error("the network's last layer must output one logit per class");
    fused_into_previous_.assign(layers_.size(), false);
    if (storage == Storage::None) return;
    if (storage == Storage::InferenceOnly) {
        // Inference weights never change after loading or folding, so convolutions may pack them once and fuse
        // the ReLU that follows them into their GEMM.
        for (std::size_t i = 0; i < layers_.size(); ++i) {
            auto* conv = dynamic_cast<Conv2d*>(layers_[i].get());
            if (!conv) continue;
            const bool relu_follows = i + 1 < layers_.size() && specs_[i + 1].kind == LayerKind::Relu;
            conv->freeze_for_inference(relu_follows);
            if (relu_follows) fused_into_previous_[i + 1] = true;
        }
    }
    parameters_->allocate();
    buffers_->allocate();
    activations_.resize(layers_.size());
}

void Network::initialize(InitScheme scheme, std::uint64_t seed) {
    Rng rng(seed);
    for (auto& layer : layers_) layer->initialize(scheme, rng);
}

void Network::freeze_leading_layers(std::size_t layers) {
    if (layers > layers_.size()) throw std::logic_error("Network::freeze_leading_layers: more layers than the network has");
    frozen_layers_ = layers;
}

int Network::conv_blocks() const {
    return static_cast<int>(std::count_if(specs_.begin(), specs_.end(), [](const LayerSpec& s) { return s.kind == LayerKind::Conv; }));
}

std::size_t Network::layers_in_conv_blocks(int blocks) const {
    if (blocks < 0 || blocks > conv_blocks())
        throw Error("cannot freeze " + std::to_string(blocks) + " conv blocks: the network has " + std::to_string(conv_blocks()));
    if (blocks == 0) return 0;
    int seen = 0;
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        const bool block_ends = specs_[i].kind == LayerKind::Conv || specs_[i].kind == LayerKind::Dense ||
                                specs_[i].kind == LayerKind::Flatten || specs_[i].kind == LayerKind::GlobalAvgPool;
        if (specs_[i].kind == LayerKind::Conv) ++seen;
        if (seen > blocks || (seen == blocks && block_ends && specs_[i].kind != LayerKind::Conv)) return i;
    }
    return specs_.size();
}

std::size_t Network::first_trainable_parameter() const {
    for (const ParameterSlot& slot : parameters_->slots())
        if (std::stoul(slot.name.substr(0, slot.name.find('.'))) >= frozen_layers_) return slot.offset;
    return parameters_->size();
}

void Network::reseed_dropout(std::uint64_t seed) {
    Rng rng(seed);
    for (auto& layer : layers_)
        if (auto* dropout = dynamic_cast<Dropout*>(layer.get())) dropout->reseed(rng.next_u64());
}

void Network::set_batch_norm_momentum(float momentum) {
    for (auto& layer : layers_)
        if (auto* batch_norm = dynamic_cast<BatchNorm*>(layer.get())) batch_norm->set_momentum(momentum);
}

bool Network::has_batch_norm() const {
    return std::any_of(specs_.begin(), specs_.end(), [](const LayerSpec& spec) { return spec.kind == LayerKind::BatchNorm; });
}

const Tensor& Network::forward(const Tensor& x, Mode mode) {
    const Shape& s = x.shape();
    if (s.rank() != 4 || s[0] < 1 || s[1] != input_shape_[0] || s[2] != input_shape_[1] || s[3] != input_shape_[2])
        throw Error("network expects N x " + input_shape_.str() + " input, got " + s.str());
    last_input_ = mode == Mode::Train ? &x : nullptr;
    const Tensor* current = &x;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        if (fused_into_previous_[i]) continue;
        layers_[i]->forward(*current, activations_[i], i < frozen_layers_ ? Mode::Infer : mode);
        current = &activations_[i];
    }
    return *current;
}

void Network::backward(const Tensor& dlogits, bool want_input_gradient) {
    if (!last_input_) throw std::logic_error("Network::backward needs a preceding training-mode forward");
    if (!parameters_->has_gradients()) throw std::logic_error("Network::backward on an inference-only network");
    if (want_input_gradient && frozen_layers_ > 0)
        throw std::logic_error("Network::backward: no input gradient through frozen layers");
    const Tensor* dy = &dlogits;
    Tensor* buffers[2] = {&gradient_a_, &gradient_b_};
    for (std::size_t i = layers_.size(); i-- > frozen_layers_;) {
        const Tensor& x = i == 0 ? *last_input_ : activations_[i - 1];
        Tensor* dx = i == frozen_layers_ ? (want_input_gradient ? &input_gradient_ : nullptr) : buffers[i % 2];
        layers_[i]->backward(x, activations_[i], *dy, dx);
        dy = dx;
    }
}

Network Network::folded_for_inference() const {
    std::vector<LayerSpec> folded_specs;
    std::vector<std::size_t> source_of;  // folded layer index -> original layer index
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        if (specs_[i].kind == LayerKind::BatchNorm) {
            // The grammar only puts batch norm right after a conv; anything else would lose its statistics here.
            if (i == 0 || specs_[i - 1].kind != LayerKind::Conv)
                throw std::logic_error("folded_for_inference: batch norm must follow a convolution");
            folded_specs.back().bias = true;
            continue;
        }
        if (specs_[i].kind == LayerKind::Flatten) continue;  // re-inserted by the constructor
        folded_specs.push_back(specs_[i]);
        source_of.push_back(i);
    }
    Network folded(folded_specs, input_shape_, num_classes_, Storage::InferenceOnly);
    std::size_t folded_index = 0;
    for (std::size_t f = 0; f < folded.layers_.size(); ++f) {
        if (folded.specs_[f].kind == LayerKind::Flatten) continue;
        const std::size_t i = source_of[folded_index++];
        if (auto* conv = dynamic_cast<Conv2d*>(folded.layers_[f].get())) {
            const auto& source = dynamic_cast<const Conv2d&>(*layers_[i]);
            const TensorView w = source.weight(), target_w = conv->weight(), target_b = conv->bias();
            const auto* bn = i + 1 < layers_.size() ? dynamic_cast<const BatchNorm*>(layers_[i + 1].get()) : nullptr;
            const std::size_t per_output = w.size() / static_cast<std::size_t>(conv->config().out_channels);
            for (int co = 0; co < conv->config().out_channels; ++co) {
                const auto c = static_cast<std::size_t>(co);
                const float bias = source.config().bias ? source.bias()[c] : 0.0f;
                float scale = 1.0f, shift = bias;
                if (bn) {
                    scale = bn->gamma()[c] / std::sqrt(bn->running_variance()[c] + BatchNorm::kEpsilon);
                    shift = bn->beta()[c] + (bias - bn->running_mean()[c]) * scale;
                }
                for (std::size_t k = 0; k < per_output; ++k) target_w[c * per_output + k] = w[c * per_output + k] * scale;
                target_b[c] = shift;
            }
        } else if (auto* dense = dynamic_cast<Dense*>(folded.layers_[f].get())) {
            const auto& source = dynamic_cast<const Dense&>(*layers_[i]);
            std::copy(source.weight().data, source.weight().data + source.weight().size(), dense->weight().data);
            std::copy(source.bias().data, source.bias().data + source.bias().size(), dense->bias().data);
        }
    }
    return folded;
}

double Network::flops_per_image() const {
    double flops = 0.0;
    Shape input{1, input_shape_[0], input_shape_[1], input_shape_[2]};
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        const Shape& out = output_shapes_[i];
        if (specs_[i].kind == LayerKind::Conv)
            flops += 2.0 * out[1] * out[2] * out[3] * input[1] * specs_[i].kernel * specs_[i].kernel;
        else if (specs_[i].kind == LayerKind::Dense)
            flops += 2.0 * out[1] * input[1];
        input = out;
    }
    return flops;
}

std::string Network::summary() const {
    std::string text;
    char line[160];
    std::snprintf(line, sizeof line, "  %-4s %-10s %-16s %12s\n", "#", "layer", "output", "parameters");
    text += line;
    std::snprintf(line, sizeof line, "  %-4s %-10s %-16s %12s\n", "", "input", input_shape_.str().c_str(), "");
    text += line;
    for (std::size_t i = 0; i < specs_.size(); ++i) {
        std::size_t count = 0;
        const std::string prefix = std::to_string(i) + ".";
        for (const ParameterSlot& slot : parameters_->slots())
            if (slot.name.compare(0, prefix.size(), prefix) == 0) count += slot.shape.elements();
        const Shape& s = output_shapes_[i];
        const std::string shape = s.rank() == 4 ? Shape{s[1], s[2], s[3]}.str() : Shape{s[1]}.str();
        std::snprintf(line, sizeof line, "  %-4zu %-10s %-16s %12zu\n", i, kind_name(specs_[i].kind), shape.c_str(), count);
        text += line;
    }
    std::snprintf(line, sizeof line, "  total parameters %zu, %.3f GFLOP per image\n", parameters_->parameter_count(),
                  flops_per_image() * 1e-9);
    text += line;
    return text;
}

}  // namespace edgeqc
