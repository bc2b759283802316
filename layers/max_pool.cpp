// Max-pool forward (recording winners) and backward (routing each gradient to its winner).
#include "layers/max_pool.hpp"

#include <algorithm>
#include <stdexcept>

#include "engine/error.hpp"
#include "engine/kernels.hpp"
#include "engine/pooling.hpp"

namespace edgeqc {

MaxPool::MaxPool(int kernel, int stride) : kernel_(kernel), stride_(stride) {
    if (kernel < 1 || stride < 1) throw Error("max pool: kernel and stride must be positive");
}

Shape MaxPool::output_shape(const Shape& input) const {
    if (input.rank() != 4) throw Error("max pool expects N x C x H x W input, got " + input.str());
    if (input[2] < kernel_ || input[3] < kernel_)
        throw Error("max pool: input " + input.str() + " is smaller than its " + std::to_string(kernel_) + "x" +
                    std::to_string(kernel_) + " window; use a larger --size or fewer pooling layers");
    return {input[0], input[1], (input[2] - kernel_) / stride_ + 1, (input[3] - kernel_) / stride_ + 1};
}

void MaxPool::forward(const Tensor& x, Tensor& y, Mode mode) {
    y.resize(output_shape(x.shape()));
    const int planes = x.shape()[0] * x.shape()[1];
    const int height = x.shape()[2], width = x.shape()[3];
    // Only training needs the winners (for backward).
    winner_.resize(mode == Mode::Train ? y.size() : 0);
    max_pool_f32(kernels(), x.data(), planes, height, width, kernel_, stride_, y.data(),
                 mode == Mode::Train ? winner_.data() : nullptr);
}

void MaxPool::backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) {
    if (!dx) return;
    if (winner_.size() != dy.size())
        throw std::logic_error("MaxPool::backward needs the winners of a preceding training-mode forward");
    dx->resize(x.shape());
    const int planes = x.shape()[0] * x.shape()[1];
    const std::size_t in_plane = static_cast<std::size_t>(x.shape()[2]) * x.shape()[3];
    const std::size_t out_plane = static_cast<std::size_t>(y.shape()[2]) * y.shape()[3];
    // Overlapping windows (k > s) can share a winner, so accumulate; planes are independent across threads. Each plane
    // is zeroed by its thread just before, while it stays in cache (zeroing all of dx first took a pass of its own on
    // one thread).
#pragma omp parallel for schedule(static)
    for (int p = 0; p < planes; ++p) {
        float* target = dx->data() + static_cast<std::size_t>(p) * in_plane;
        std::fill_n(target, in_plane, 0.0f);
        for (std::size_t o = 0; o < out_plane; ++o) {
            const std::size_t k = static_cast<std::size_t>(p) * out_plane + o;
            target[winner_[k]] += dy[k];
        }
    }
}

}  // namespace edgeqc
