// Softmax fused with cross-entropy: the loss head of every classifier. Fusing keeps it numerically stable
// (log-sum-exp with the row maximum subtracted) and makes the gradient the simple p - onehot.
#pragma once

#include <vector>

#include "engine/tensor.hpp"

namespace edgeqc {

// logits: N x K, labels: N values in [0, K), class_weights: empty (all 1) or K values, sample_weights: empty
// (all 1) or N values >= 0 (pseudo-labelled images weigh less). Row n weighs w_n = class_weights[y_n] *
// sample_weights[n]. Returns the weighted mean loss sum(w_n * l_n) / sum(w_n), which with class weights only is
// PyTorch's CrossEntropyLoss(weight=...). When dlogits is not null it receives dLoss/dlogits (N x K).
double softmax_cross_entropy(const Tensor& logits, const std::vector<int>& labels,
                             const std::vector<float>& class_weights, Tensor* dlogits,
                             const std::vector<float>& sample_weights = {});

// probabilities: N x K, each row the softmax of the matching logits row.
void softmax(const Tensor& logits, Tensor& probabilities);

}  // namespace edgeqc
