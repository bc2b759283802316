// Fully connected layer y = x W^T + b with W stored out x in (PyTorch's Linear layout).
#pragma once

#include "layers/layer.hpp"

namespace edgeqc {

class Dense : public Layer {
public:
    Dense(int inputs, int outputs);

    // x: N x in -> y: N x out
    Shape output_shape(const Shape& input) const override;
    void declare(ParameterArena& parameters, ParameterArena& buffers, const std::string& prefix) override;
    void initialize(InitScheme scheme, Rng& rng) override;
    void forward(const Tensor& x, Tensor& y, Mode mode) override;
    void backward(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx) override;
    void share_context(TrainingContext& context) override { context_ = &context; }

    int inputs() const { return inputs_; }
    int outputs() const { return outputs_; }
    TensorView weight() const { return parameters_->value(weight_slot_); }  // out x in
    TensorView bias() const { return parameters_->value(bias_slot_); }      // out

private:
    int inputs_, outputs_;
    float* scratch(int m, int n, int k);  // GEMM workspace for an m x n x k product
    ParameterArena* parameters_ = nullptr;
    std::size_t weight_slot_ = 0, bias_slot_ = 0;
    TrainingContext own_context_;  // unused once a network shares its context
    TrainingContext* context_ = &own_context_;
};

}  // namespace edgeqc
