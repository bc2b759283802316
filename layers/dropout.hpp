// Inverted dropout: in training each element is zeroed with probability p and the rest scaled by 1/(1-p);
// at inference it is the identity. The mask comes from the layer's own seeded generator.
#pragma once

#include <vector>

#include "layers/layer.hpp"

namespace edgeqc {

class Dropout : public Layer {
public:
    explicit Dropout(float probability);

    // x: any shape -> y: same shape
    Shape output_shape(const Shape& input) const override { return input; }
    void initialize(InitScheme scheme, Rng& rng) override;
    void forward(const Tensor& x, Tensor& y, Mode mode) override;
    void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;

    float probability() const { return probability_; }
    // Restarts the mask stream, so that a resumed epoch draws the same masks as an uninterrupted one.
    void reseed(std::uint64_t seed) { rng_.reseed(seed); }

private:
    float probability_;
    Rng rng_;
    std::vector<float> mask_;  // 0 or 1/(1-p) per element of the last training forward
};

}  // namespace edgeqc
