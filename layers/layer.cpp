// Weight initialisation shared by the layers that own weights (conv2d, dense).
#include "layers/layer.hpp"

#include <cmath>

#include "engine/error.hpp"

namespace edgeqc {

InitScheme parse_init_scheme(const std::string& name) {
    if (name == "he") return InitScheme::He;
    if (name == "torch") return InitScheme::Torch;
    throw Error("unknown initialisation '" + name + "' (use he or torch)");
}

const char* init_scheme_name(InitScheme scheme) { return scheme == InitScheme::He ? "he" : "torch"; }

void initialize_weights(const TensorView& weights, int fan_in, InitScheme scheme, Rng& rng) {
    if (scheme == InitScheme::He) {
        const float stddev = std::sqrt(2.0f / static_cast<float>(fan_in));
        for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = stddev * rng.normal();
    } else {
        const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
        for (std::size_t i = 0; i < weights.size(); ++i) weights[i] = rng.uniform(-bound, bound);
    }
}

void initialize_bias(const TensorView& bias, int fan_in, InitScheme scheme, Rng& rng) {
    if (scheme == InitScheme::He) {
        bias.fill(0.0f);
    } else {
        const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
        for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = rng.uniform(-bound, bound);
    }
}

}  // namespace edgeqc
