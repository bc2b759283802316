// Dense forward and backward as GEMMs through the kernel table.
#include "layers/dense.hpp"

#include "engine/error.hpp"
#include "engine/kernels.hpp"

namespace edgeqc {

Dense::Dense(int inputs, int outputs) : inputs_(inputs), outputs_(outputs) {
    if (inputs < 1 || outputs < 1) throw Error("dense layer needs at least one input and one output");
}

Shape Dense::output_shape(const Shape& input) const {
    if (input.rank() != 2 || input[1] != inputs_)
        throw Error("dense layer expects N x " + std::to_string(inputs_) + " input, got " + input.str());
    return {input[0], outputs_};
}

void Dense::declare(ParameterArena& parameters, ParameterArena&, const std::string& prefix) {
    parameters_ = &parameters;
    weight_slot_ = parameters.reserve(prefix + "weight", {outputs_, inputs_});
    bias_slot_ = parameters.reserve(prefix + "bias", {outputs_});
}

void Dense::initialize(InitScheme scheme, Rng& rng) {
    initialize_weights(weight(), inputs_, scheme, rng);
    initialize_bias(bias(), inputs_, scheme, rng);
}

float* Dense::scratch(int m, int n, int k) {
    return context_->gemm.floats(context_->kernels().gemm_workspace_f32(m, n, k, false));
}

void Dense::forward(const Tensor& x, Tensor& y, Mode) {
    y.resize(output_shape(x.shape()));
    const int batch = x.shape()[0];
    const float* b = bias().data;
    for (int n = 0; n < batch; ++n)
        for (int o = 0; o < outputs_; ++o) y[static_cast<std::size_t>(n) * outputs_ + o] = b[o];
    context_->kernels().gemm_f32(false, true, batch, outputs_, inputs_, 1.0f, x.data(), inputs_, weight().data, inputs_,
                                 1.0f, y.data(), outputs_, {}, scratch(batch, outputs_, inputs_));
}

void Dense::backward(const Tensor& x, const Tensor&, const Tensor& dy, Tensor* dx) {
    const int batch = x.shape()[0];
    float* dw = parameters_->gradient(weight_slot_).data;
    float* db = parameters_->gradient(bias_slot_).data;
    for (int o = 0; o < outputs_; ++o) {
        double sum = 0.0;
        for (int n = 0; n < batch; ++n) sum += dy[static_cast<std::size_t>(n) * outputs_ + o];
        db[o] += static_cast<float>(sum);
    }
    // dW[out x in] += dy^T[out x N] * x[N x in]
    const GemmF32 gemm = context_->kernels().gemm_f32;
    gemm(true, false, outputs_, inputs_, batch, 1.0f, dy.data(), outputs_, x.data(), inputs_, 1.0f, dw, inputs_, {},
         scratch(outputs_, inputs_, batch));
    if (dx) {
        dx->resize(x.shape());
        gemm(false, false, batch, inputs_, outputs_, 1.0f, dy.data(), outputs_, weight().data, inputs_, 0.0f, dx->data(),
             inputs_, {}, scratch(batch, inputs_, outputs_));
    }
}

}  // namespace edgeqc
