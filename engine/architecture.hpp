// The network description language: a short spec string such as "c32bn-p-c64bn-p-fc", its parser and writer,
// and the resolution of a spec for an input (layer shapes and the named tensors every layer owns), which the model
// file, the rewrite passes and the inference plan share without building a trainable network.
// Grammar (tokens joined by '-'):
//   c<N>[k<K>][s<S>][v][bn]  conv K x K (default 3), stride S (default 1), N filters, padding K/2 ('same')
//                            unless 'v' (valid); 'bn' adds batch norm (and drops the conv bias); always + ReLU
//   p[<K>][s<S>]             max-pool K x K (default 2), stride S (default K)
//   gap                      global average pool
//   fc<N>                    flatten if needed, dense with N outputs, ReLU
//   drop<P>                  dropout with probability P
//   fc                       flatten if needed, dense to the number of classes (logits); must be last
#pragma once

#include <string>
#include <vector>

#include "engine/tensor.hpp"

namespace edgeqc {

enum class LayerKind { Conv, BatchNorm, Relu, MaxPool, GlobalAvgPool, Flatten, Dense, Dropout };

struct LayerSpec {
    LayerKind kind = LayerKind::Relu;
    int units = 0;        // Conv: filters; Dense: outputs (kClassCount until resolved); BatchNorm: channels
    int kernel = 0;       // Conv, MaxPool
    int stride = 0;       // Conv, MaxPool
    int padding = 0;      // Conv
    bool bias = true;     // Conv
    float probability = 0.0f;  // Dropout
    bool operator==(const LayerSpec&) const = default;
};

// The paper's network (source paper 000, Fig. 4) exactly as written, and edgeqc's default, which adds batch
// norm to every conv block so it trains reliably on small, imbalanced sets (see bench/RESULTS.md).
inline constexpr const char* kPaperArchitecture = "c32-p-c64-p-c512-p-c512-p-c256-p-fc";
inline constexpr const char* kDefaultArchitecture = "c32bn-p-c64bn-p-c512bn-p-c512bn-p-c256bn-p-fc";

// Sentinel for Dense::units meaning "as many outputs as the model has classes".
inline constexpr int kClassCount = -1;

// Parses a spec; throws edgeqc::Error naming the offending token. Flatten layers are added before a dense
// layer whose input is still an image by the network builder, not here.
std::vector<LayerSpec> parse_architecture(const std::string& spec);

// The spec string of a layer list: write_architecture(parse_architecture(s)) parses back to the same layers.
// Flatten layers are left out (the builder re-inserts them). Throws edgeqc::Error for a list the grammar cannot
// express (a conv without a ReLU after it, padding other than 0 or k/2, a classifier that is not last).
std::string write_architecture(const std::vector<LayerSpec>& layers);

// What a tensor is to its layer; decides how the model file checks it and how passes rewrite it.
enum class TensorRole : std::uint8_t { Weight, Bias, Gamma, Beta, RunningMean, RunningVariance };
// Trained by the optimizer (weights, biases, batch-norm gamma and beta) rather than estimated (running statistics).
bool is_trainable(TensorRole role);

struct TensorSlot {
    std::string name;  // "<layer index>.<role>", e.g. "3.weight", as the model file stores it
    TensorRole role;
    Shape shape;       // Conv weight: Cout x Cin x k x k; Dense weight: out x in; the rest: one per channel
    int layer;         // index into ResolvedArchitecture::layers
};

// A spec bound to an input: flatten layers inserted before a dense layer fed an image, class counts and
// batch-norm channels filled in, the output shape of every layer, and every tensor in the order the model file
// stores them: all trainable tensors layer by layer, then all running statistics (the order of Network's arenas).
struct ResolvedArchitecture {
    std::vector<LayerSpec> layers;
    std::vector<Shape> outputs;  // per layer, for one image: C x H x W, or features
    std::vector<TensorSlot> tensors;
    Shape input;  // C x H x W
    int num_classes = 0;

    // The name of layer `layer`'s tensor of `role`; empty when the layer has none.
    std::string tensor_name(std::size_t layer, TensorRole role) const;
};
// Throws edgeqc::Error when the layers do not fit the input (too many pooling layers for a small image, say),
// or num_classes < 1.
ResolvedArchitecture resolve_architecture(const std::vector<LayerSpec>& layers, const Shape& input, int num_classes);
ResolvedArchitecture resolve_architecture(const std::string& spec, const Shape& input, int num_classes);

// Multiply-adds x 2 for one image's forward pass (convolutions and dense layers only).
double flops_per_image(const ResolvedArchitecture& architecture);
const char* layer_kind_name(LayerKind kind);  // "conv", "batchnorm", ...

}  // namespace edgeqc
