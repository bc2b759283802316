// Flatten forward and backward: both are copies with a new shape.
#include "layers/flatten.hpp"

#include <algorithm>
#include <limits>

#include "engine/error.hpp"

namespace edgeqc {

Shape Flatten::output_shape(const Shape& input) const {
    if (input.rank() < 2 || input[0] < 1) throw Error("flatten expects a batch of tensors, got " + input.str());
    const std::size_t features = input.elements() / static_cast<std::size_t>(input[0]);
    if (features > static_cast<std::size_t>(std::numeric_limits<int>::max()))
        throw Error("flatten: " + input.str() + " has too many features per image");
    return {input[0], static_cast<int>(features)};
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
