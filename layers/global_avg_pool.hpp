// Global average pooling: the mean of each channel plane, turning N x C x H x W into N x C.
#pragma once

#include "layers/layer.hpp"

namespace edgeqc {

class GlobalAvgPool : public Layer {
public:
    // x: N x C x H x W -> y: N x C
    Shape output_shape(const Shape& input) const override;
    void forward(const Tensor& x, Tensor& y, Mode mode) override;
    void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
};

}  // namespace edgeqc
