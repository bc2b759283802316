// The network description language: a short spec string such as "c32bn-p-c64bn-p-fc" parsed into layer specs.
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

}  // namespace edgeqc
