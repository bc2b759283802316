// Flatten forward and backward: both are copies with a new shape.
#include "layers/flatten.hpp"

#include <algorithm>

#include "engine/error.hpp"

namespace edgeqc {

Shape Flatten::output_shape(const Shape& input) const {
    if (input.rank() < 2) throw Error("flatten expects a batch of tensors, got " + input.str());
    return {input[0], static_cast<int>(input.elements() / static_cast<std::size_t>(input[0]))};
}

void Flatten::forward(const Tensor& x, Tensor& y, Mode) {
    y.resize(output_shape(x.shape()));
    std::copy(x.data(), x.data() + x.size(), y.data());
}

void Flatten::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
    if (!dx) return;
    dx->resize(x.shape());
    std::copy(dy.data(), dy.data() + dy.size(), dx->data());
}

}  // namespace edgeqc
