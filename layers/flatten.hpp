// Flatten: N x C x H x W -> N x (C*H*W) in C, H, W order (torch.flatten(x, 1)); a copy, no arithmetic.
#pragma once

#include "layers/layer.hpp"

namespace edgeqc {

class Flatten : public Layer {
public:
    // x: N x ... -> y: N x (product of the rest)
    Shape output_shape(const Shape& input) const override;
    void forward(const Tensor& x, Tensor& y, Mode mode) override;
    void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
};

}  // namespace edgeqc
