// The trainable network: a sequence of layers built from a resolved architecture, owning the parameter and buffer
// arenas and the activations of the last forward pass, which backward reuses. It converts to and from the model
// (engine/model.hpp) that files, passes and the inference plan use. Not thread-safe; one network per thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/architecture.hpp"
#include "engine/model.hpp"
#include "layers/parameter_arena.hpp"
#include "layers/layer.hpp"

namespace edgeqc {

class BatchNorm;

class Network {
public:
    // input: C x H x W of one image. Throws edgeqc::Error when the layers do not fit the input (for example
    // too many pooling layers for a small image) or num_classes < 1. A network that is not trainable keeps no
    // gradient arena (it only runs forward, e.g. to check a model; inference proper runs an InferencePlan).
    Network(const std::string& architecture, const Shape& input, int num_classes, bool trainable = true);
    Network(std::vector<LayerSpec> layers, const Shape& input, int num_classes, bool trainable = true);

    // The network a model describes, with the model's weights (which must be f32: a trainable network is float).
    static std::unique_ptr<Network> from_model(const Model& model, bool trainable = true);
    // The model of this network's weights and statistics, under `description` (whose architecture should be
    // this network's).
    Model to_model(const ModelDescription& description) const;
    Network(Network&&) = default;
    Network& operator=(Network&&) = default;

    void initialize(InitScheme scheme, std::uint64_t seed);
    // Restarts the random streams of stochastic layers (dropout), so that a resumed epoch draws the same masks.
    void reseed_dropout(std::uint64_t seed);
    // The momentum of every batch-norm layer's running statistics (BatchNorm::kMomentum in normal training).
    void set_batch_norm_momentum(float momentum);
    // The kernel table the layers compute with from now on (bf16 training gives bf16_product_kernels()), which must
    // outlive the network; null, as until then, for the active table, kernels().
    void compute_with(const KernelTable* table) { context_->table = table; }
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
    const std::vector<LayerSpec>& layer_specs() const { return architecture_.layers; }
    const ResolvedArchitecture& architecture() const { return architecture_; }
    // The values of architecture().tensors[index], wherever its arena keeps them.
    TensorView tensor_values(std::size_t index) const;
    const Shape& input_shape() const { return input_shape_; }
    int num_classes() const { return num_classes_; }

    // Multiply-adds x 2 for one image's forward pass (convolutions and dense layers only).
    double flops_per_image() const { return edgeqc::flops_per_image(architecture_); }
    // A human-readable table: layer, output shape, parameter count.
    std::string summary() const;

private:
    void load_tensors(const Model& model);

    ResolvedArchitecture architecture_;  // its tensors in the order of the arenas' slots: parameters, then buffers
    Shape input_shape_;
    int num_classes_ = 0;
    std::vector<std::unique_ptr<Layer>> layers_;
    std::size_t frozen_layers_ = 0;
    // Held by pointer so that layers' references to the arenas survive moving the network.
    std::unique_ptr<ParameterArena> parameters_;
    std::unique_ptr<ParameterArena> buffers_;
    std::unique_ptr<TrainingContext> context_;  // shared by every layer; by pointer, so that moves keep it
    const Tensor* last_input_ = nullptr;  // input of the last training forward; null after an inference forward
    // The output of layer `layer`: its own activations, or, for a ReLU fused into the batch norm before it, those of
    // the batch norm (empty where that batch norm also pools: only the pool's output exists then).
    const Tensor& output_of(std::size_t layer) const;

    std::vector<Tensor> activations_;  // per layer; a fused ReLU's stays empty, and so does a pooling batch norm's
    std::vector<bool> fused_relu_;     // per layer: a ReLU its batch norm computes (BatchNorm::fuse_relu)
    std::vector<bool> fused_pool_;     // per layer: a max pool its batch norm computes (BatchNorm::fuse_pool)
    // The batch norm at `layer` if it computes the max pool two layers on (with the ReLU between), else null.
    BatchNorm* pooling_batch_norm(std::size_t layer) const;
    Tensor gradient_a_, gradient_b_, input_gradient_;
};

// The trainable network a description names (C x H x W from the input format), without weights.
std::unique_ptr<Network> build_network(const ModelDescription& description, bool trainable = true);

}  // namespace edgeqc
