// Rectified linear unit, elementwise on any shape. The gradient at exactly 0 is taken as 0 (as PyTorch does).
#pragma once

#include "layers/layer.hpp"

namespace edgeqc {

class Relu : public Layer {
public:
    // x: any shape -> y: same shape
    Shape output_shape(const Shape& input) const override { return input; }
    void forward(const Tensor& x, Tensor& y, Mode mode) override;
    void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
};

}  // namespace edgeqc
