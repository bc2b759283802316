// The interface every layer implements: shape inference, parameter declaration, forward and backward.
// A flat hierarchy (Layer -> concrete layer); layers compute through a kernel table and hold no CPU-specific code.
#pragma once

#include <cstddef>
#include <string>

#include "engine/kernels.hpp"
#include "engine/winograd_f32.hpp"
#include "layers/parameter_arena.hpp"
#include "engine/rng.hpp"
#include "engine/tensor.hpp"

namespace edgeqc {

enum class Mode { Train, Infer };

// He: weights ~ N(0, sqrt(2/fan_in)), biases 0 (edgeqc's default).
// Torch: PyTorch's default, weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (the paper-exact setting).
enum class InitScheme { He, Torch };
InitScheme parse_init_scheme(const std::string& name);  // "he" | "torch"; throws edgeqc::Error
const char* init_scheme_name(InitScheme scheme);

// What the layers of one network share: scratch memory (they run one at a time, so one set, grown to the largest
// need and reused, bounds training's scratch by its largest layer) and the kernel table they compute with. A layer
// built on its own has a context of its own.
struct TrainingContext {
    ScratchBuffer columns, products, gemm, winograd, flipped, packed_weights;
    WinogradConv3x3 winograd_weights;  // re-prepared on every call: training's weights change every step
    const KernelTable* table = nullptr;  // null: the active table, kernels(); bf16 training sets its own
    const KernelTable& kernels() const { return table ? *table : edgeqc::kernels(); }
};

class Layer {
public:
    virtual ~Layer() = default;
    // The network's shared context, for the layers that need scratch or GEMMs.
    virtual void share_context(TrainingContext& /*context*/) {}

    // Output shape for an input shape (batch first); throws edgeqc::Error when the input does not fit.
    virtual Shape output_shape(const Shape& input) const = 0;
    // Reserves parameter slots (trainable, with gradients) and buffer slots (saved, not trained).
    virtual void declare(ParameterArena& /*parameters*/, ParameterArena& /*buffers*/, const std::string& /*prefix*/) {}
    virtual void initialize(InitScheme /*scheme*/, Rng& /*rng*/) {}
    // y is resized by the layer to output_shape(x.shape()).
    virtual void forward(const Tensor& x, Tensor& y, Mode mode) = 0;
    // Given x, y of the last forward and dy = dLoss/dy: adds dLoss/dparameters into the gradient arena and,
    // when dx is not null, writes dLoss/dx (resized to x's shape).
    virtual void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) = 0;
};

// Fills a weight tensor according to the scheme, fan_in being the inputs feeding one output.
void initialize_weights(const TensorView& weights, int fan_in, InitScheme scheme, Rng& rng);
void initialize_bias(const TensorView& bias, int fan_in, InitScheme scheme, Rng& rng);

}  // namespace edgeqc
