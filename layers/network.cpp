// Building a network from a resolved architecture, running it forward and backward, and converting it to and from
// a model.
#include "layers/network.hpp"

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

std::unique_ptr<Layer> make_layer(const LayerSpec& spec, const Shape& input) {
    switch (spec.kind) {
        case LayerKind::Conv:
            return std::make_unique<Conv2d>(
                Conv2dConfig{input[1], spec.units, spec.kernel, spec.stride, spec.padding, spec.bias});
        case LayerKind::BatchNorm: return std::make_unique<BatchNorm>(input[1]);
        case LayerKind::Relu: return std::make_unique<Relu>();
        case LayerKind::MaxPool: return std::make_unique<MaxPool>(spec.kernel, spec.stride);
        case LayerKind::GlobalAvgPool: return std::make_unique<GlobalAvgPool>();
        case LayerKind::Flatten: return std::make_unique<Flatten>();
        case LayerKind::Dense: return std::make_unique<Dense>(input[1], spec.units);
        case LayerKind::Dropout: return std::make_unique<Dropout>(spec.probability);
    }
    throw Error("unknown layer kind");
}

}  // namespace

Network::Network(const std::string& architecture, const Shape& input, int num_classes, bool trainable)
    : Network(parse_architecture(architecture), input, num_classes, trainable) {}


Network::Network(std::vector<LayerSpec> layers, const Shape& input, int num_classes, bool trainable)
    : architecture_(resolve_architecture(layers, input, num_classes)),
      input_shape_(input),
      num_classes_(num_classes),
      parameters_(std::make_unique<ParameterArena>(trainable)),
      buffers_(std::make_unique<ParameterArena>(false)),
      context_(std::make_unique<TrainingContext>()) {
    Shape shape{1, input[0], input[1], input[2]};
    for (const LayerSpec& spec : architecture_.layers) {
        layers_.push_back(make_layer(spec, shape));
        layers_.back()->share_context(*context_);
        shape = layers_.back()->output_shape(shape);
        layers_.back()->declare(*parameters_, *buffers_, std::to_string(layers_.size() - 1) + ".");
    }
    parameters_->allocate();
    buffers_->allocate();
    activations_.resize(layers_.size());
    // A ReLU right after a batch norm runs inside it: one pass over the activations fewer in each direction, and
    // one activation tensor fewer to keep.
    fused_relu_.assign(layers_.size(), false);
    for (std::size_t i = 1; i < layers_.size(); ++i) {
        const std::vector<LayerSpec>& specs = architecture_.layers;
        if (specs[i].kind != LayerKind::Relu || specs[i - 1].kind != LayerKind::BatchNorm) continue;
        static_cast<BatchNorm&>(*layers_[i - 1]).fuse_relu();
        fused_relu_[i] = true;
    }
    // A 2x2 stride-2 max pool after such a ReLU runs inside the batch norm too: y, the size of the batch norm's
    // input, is then neither written nor kept.
    fused_pool_.assign(layers_.size(), false);
    for (std::size_t i = 2; i < layers_.size(); ++i) {
        const LayerSpec& spec = architecture_.layers[i];
        if (spec.kind != LayerKind::MaxPool || spec.kernel != 2 || spec.stride != 2 || !fused_relu_[i - 1]) continue;
        static_cast<BatchNorm&>(*layers_[i - 2]).fuse_pool();
        fused_pool_[i] = true;
    }
}

BatchNorm* Network::pooling_batch_norm(std::size_t layer) const {
    return layer + 2 < layers_.size() && fused_pool_[layer + 2] ? static_cast<BatchNorm*>(layers_[layer].get())
                                                                 : nullptr;
}

const Tensor& Network::output_of(std::size_t layer) const {
    return fused_relu_[layer] ? activations_[layer - 1] : activations_[layer];
}

TensorView Network::tensor_values(std::size_t index) const {
    const std::size_t parameters = parameters_->slots().size();
    return index < parameters ? parameters_->value(index) : buffers_->value(index - parameters);
}

void Network::load_tensors(const Model& model) {
    for (std::size_t i = 0; i < architecture_.tensors.size(); ++i) {
        const TensorView target = tensor_values(i);
        const std::string& name = architecture_.tensors[i].name;
        const TypedTensor& source = model.tensor(name);
        if (source.type() != DataType::F32 || source.shape() != target.shape)
            throw Error("tensor '" + name + "' is not the f32 " + target.shape.str() + " tensor the network needs");
        std::copy(source.data<float>(), source.data<float>() + target.size(), target.data);
    }
}

std::unique_ptr<Network> Network::from_model(const Model& model, bool trainable) {
    std::unique_ptr<Network> network = build_network(model.description, trainable);
    network->load_tensors(model);
    return network;
}

Model Network::to_model(const ModelDescription& description) const {
    Model model;
    model.description = description;
    for (std::size_t i = 0; i < architecture_.tensors.size(); ++i) {
        const TensorView values = tensor_values(i);
        TypedTensor t(DataType::F32, values.shape);
        std::copy(values.data, values.data + values.size(), t.data<float>());
        model.tensors.push_back({architecture_.tensors[i].name, std::move(t)});
    }
    return model;
}

std::unique_ptr<Network> build_network(const ModelDescription& description, bool trainable) {
    validate_input_format(description.input);
    return std::make_unique<Network>(description.architecture, description.input_shape(), description.num_classes(),
                                     trainable);
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
    return static_cast<int>(std::count_if(layer_specs().begin(), layer_specs().end(), [](const LayerSpec& s) { return s.kind == LayerKind::Conv; }));
}

std::size_t Network::layers_in_conv_blocks(int blocks) const {
    if (blocks < 0 || blocks > conv_blocks())
        throw Error("cannot freeze " + std::to_string(blocks) + " conv blocks: the network has " + std::to_string(conv_blocks()));
    if (blocks == 0) return 0;
    int seen = 0;
    for (std::size_t i = 0; i < layer_specs().size(); ++i) {
        const bool block_ends = layer_specs()[i].kind == LayerKind::Conv || layer_specs()[i].kind == LayerKind::Dense ||
                                layer_specs()[i].kind == LayerKind::Flatten || layer_specs()[i].kind == LayerKind::GlobalAvgPool;
        if (layer_specs()[i].kind == LayerKind::Conv) ++seen;
        if (seen > blocks || (seen == blocks && block_ends && layer_specs()[i].kind != LayerKind::Conv)) return i;
    }
    return layer_specs().size();
}

std::size_t Network::first_trainable_parameter() const {
    for (std::size_t i = 0; i < parameters_->slots().size(); ++i)
        if (static_cast<std::size_t>(architecture_.tensors[i].layer) >= frozen_layers_) return parameters_->slots()[i].offset;
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
    return std::any_of(layer_specs().begin(), layer_specs().end(), [](const LayerSpec& spec) { return spec.kind == LayerKind::BatchNorm; });
}

const Tensor& Network::forward(const Tensor& x, Mode mode) {
    const Shape& s = x.shape();
    if (s.rank() != 4 || s[0] < 1 || s[1] != input_shape_[0] || s[2] != input_shape_[1] || s[3] != input_shape_[2])
        throw Error("network expects N x " + input_shape_.str() + " input, got " + s.str());
    last_input_ = mode == Mode::Train ? &x : nullptr;
    const Tensor* current = &x;
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        if (fused_relu_[i] || fused_pool_[i]) continue;  // its batch norm applied it
        const Mode layer_mode = i < frozen_layers_ ? Mode::Infer : mode;
        if (BatchNorm* pooling = pooling_batch_norm(i)) {
            pooling->forward_pooled(*current, activations_[i + 2], layer_mode);
            current = &activations_[i + 2];
            continue;
        }
        layers_[i]->forward(*current, activations_[i], layer_mode);
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
    int next_buffer = 0;  // the one dy is not in
    for (std::size_t i = layers_.size(); i-- > frozen_layers_;) {
        if (fused_relu_[i] || fused_pool_[i]) continue;  // its batch norm's backward routes dy through it
        const Tensor& x = i == 0 ? *last_input_ : output_of(i - 1);
        Tensor* dx = i == frozen_layers_ ? (want_input_gradient ? &input_gradient_ : nullptr) : buffers[next_buffer];
        next_buffer ^= 1;
        if (BatchNorm* pooling = pooling_batch_norm(i))
            pooling->backward_pooled(x, activations_[i + 2], *dy, dx);
        else
            layers_[i]->backward(x, activations_[i], *dy, dx);
        dy = dx;
    }
}

std::string Network::summary() const {
    std::string text;
    char line[160];
    std::snprintf(line, sizeof line, "  %-4s %-10s %-16s %12s\n", "#", "layer", "output", "parameters");
    text += line;
    std::snprintf(line, sizeof line, "  %-4s %-10s %-16s %12s\n", "", "input", input_shape_.str().c_str(), "");
    text += line;
    for (std::size_t i = 0; i < layer_specs().size(); ++i) {
        std::size_t count = 0;
        for (const TensorSlot& slot : architecture_.tensors)
            if (slot.layer == static_cast<int>(i) && is_trainable(slot.role)) count += slot.shape.elements();
        std::snprintf(line, sizeof line, "  %-4zu %-10s %-16s %12zu\n", i, layer_kind_name(layer_specs()[i].kind),
                      architecture_.outputs[i].str().c_str(), count);
        text += line;
    }
    std::snprintf(line, sizeof line, "  total parameters %zu, %.3f GFLOP per image\n", parameters_->parameter_count(),
                  flops_per_image() * 1e-9);
    text += line;
    return text;
}

}  // namespace edgeqc
