// A sequential network built from layer specs: owns its layers, the parameter and buffer arenas and the
// activations of the last forward pass, which backward reuses. Not thread-safe; one network per thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/architecture.hpp"
#include "engine/parameter_arena.hpp"
#include "layers/layer.hpp"

namespace edgeqc {

class Network {
public:
    // input: C x H x W of one image. Throws edgeqc::Error when the layers do not fit the input (for example
    // too many pooling layers for a small image) or num_classes < 1. A network that is not trainable keeps no
    // gradient arena (inference on the edge needs one copy of the weights, not two).
    Network(const std::string& architecture, const Shape& input, int num_classes, bool trainable = true);
    Network(std::vector<LayerSpec> layers, const Shape& input, int num_classes, bool trainable = true);

    // Floats of parameters and buffers such a network stores, computed without allocating them, so a model
    // file can be checked against its claimed architecture before memory is committed to it.
    static std::size_t stored_floats(const std::string& architecture, const Shape& input, int num_classes);
    Network(Network&&) = default;
    Network& operator=(Network&&) = default;

    void initialize(InitScheme scheme, std::uint64_t seed);
    // Restarts the random streams of stochastic layers (dropout), so that a resumed epoch draws the same masks.
    void reseed_dropout(std::uint64_t seed);
    // The momentum of every batch-norm layer's running statistics (BatchNorm::kMomentum in normal training).
    void set_batch_norm_momentum(float momentum);
    bool has_batch_norm() const;

    // Freezes the first `layers` layers for transfer learning: a training forward runs them in inference mode
    // (batch norm uses and keeps its running statistics, dropout is off) and backward stops above them, so
    // they get no gradient and cost no backward time. 0 unfreezes everything.
    void freeze_leading_layers(std::size_t layers);
    std::size_t frozen_layers() const { return frozen_layers_; }
    // Layers of the first `blocks` conv blocks; a block is a conv and every layer up to the next conv (or up
    // to the first dense layer). Throws Error when the network has fewer conv blocks.
    std::size_t layers_in_conv_blocks(int blocks) const;
    int conv_blocks() const;
    // First parameter float of the layers that train: the arena holds the layers' parameters in order, so
    // an optimizer that starts here leaves the frozen ones untouched.
    std::size_t first_trainable_parameter() const;

    // x: N x C x H x W -> logits N x K. x must stay alive until backward() has run.
    const Tensor& forward(const Tensor& x, Mode mode);
    // Adds dLoss/dparameters to the gradient arena given dLoss/dlogits of the last (training) forward.
    // With want_input_gradient the gradient w.r.t. the input is kept and returned by input_gradient().
    void backward(const Tensor& dlogits, bool want_input_gradient = false);
    const Tensor& input_gradient() const { return input_gradient_; }

    ParameterArena& parameters() { return *parameters_; }
    const ParameterArena& parameters() const { return *parameters_; }
    ParameterArena& buffers() { return *buffers_; }
    const ParameterArena& buffers() const { return *buffers_; }
    const std::vector<LayerSpec>& layer_specs() const { return specs_; }
    const Shape& input_shape() const { return input_shape_; }
    int num_classes() const { return num_classes_; }

    // The same function for inference (not trainable) with every batch norm folded into the conv before it:
    // w' = w * gamma / sqrt(var + eps), b' = beta + (b - mean) * gamma / sqrt(var + eps).
    Network folded_for_inference() const;

    // Multiply-adds x 2 for one image's forward pass (convolutions and dense layers only).
    double flops_per_image() const;
    // A human-readable table: layer, output shape, parameter count.
    std::string summary() const;

private:
    enum class Storage { Trainable, InferenceOnly, None };
    Network(std::vector<LayerSpec> layers, const Shape& input, int num_classes, Storage storage);

    std::vector<LayerSpec> specs_;
    Shape input_shape_;
    int num_classes_ = 0;
    std::vector<Shape> output_shapes_;  // per layer, for batch 1
    std::vector<std::unique_ptr<Layer>> layers_;
    std::vector<bool> fused_into_previous_;  // per layer: a ReLU an inference-only conv before it already applies
    std::size_t frozen_layers_ = 0;
    // Held by pointer so that layers' references to the arenas survive moving the network.
    std::unique_ptr<ParameterArena> parameters_;
    std::unique_ptr<ParameterArena> buffers_;
    const Tensor* last_input_ = nullptr;  // input of the last training forward; null after an inference forward
    std::vector<Tensor> activations_;
    Tensor gradient_a_, gradient_b_, input_gradient_;
};

}  // namespace edgeqc
