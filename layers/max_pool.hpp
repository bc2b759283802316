// Max pooling over k x k windows with stride s, no padding, floor rounding (PyTorch's default).
// Remembers which input won each window; on ties the first (row-major) element wins, as in PyTorch.
#pragma once

#include <cstdint>
#include <vector>

#include "layers/layer.hpp"

namespace edgeqc {

class MaxPool : public Layer {
public:
    MaxPool(int kernel, int stride);

    // x: N x C x H x W -> y: N x C x ((H - k) / s + 1) x ((W - k) / s + 1)
    Shape output_shape(const Shape& input) const override;
    void forward(const Tensor& x, Tensor& y, Mode mode) override;
    void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;

private:
    int kernel_, stride_;
    std::vector<std::uint32_t> winner_;  // per output element: index of the winning input within its plane
};

}  // namespace edgeqc
