// Global average pooling forward and backward.
#include "layers/global_avg_pool.hpp"

#include "engine/error.hpp"
#include "engine/pooling.hpp"

namespace edgeqc {

Shape GlobalAvgPool::output_shape(const Shape& input) const {
    if (input.rank() != 4) throw Error("global average pool expects N x C x H x W input, got " + input.str());
    return {input[0], input[1]};
}

void GlobalAvgPool::forward(const Tensor& x, Tensor& y, Mode) {
    y.resize(output_shape(x.shape()));
    const int planes = x.shape()[0] * x.shape()[1];
    const std::size_t plane = static_cast<std::size_t>(x.shape()[2]) * x.shape()[3];
    global_avg_pool_f32(x.data(), planes, plane, y.data());
}

void GlobalAvgPool::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
    if (!dx) return;
    dx->resize(x.shape());
    const int planes = x.shape()[0] * x.shape()[1];
    const std::size_t plane = static_cast<std::size_t>(x.shape()[2]) * x.shape()[3];
#pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; ++p) {
        const float share = dy[static_cast<std::size_t>(p)] / static_cast<float>(plane);
        float* out = dx->data() + static_cast<std::size_t>(p) * plane;
        for (std::size_t i = 0; i < plane; ++i) out[i] = share;
    }
}

}  // namespace edgeqc
