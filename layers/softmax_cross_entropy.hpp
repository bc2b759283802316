// Softmax fused with cross-entropy: the loss head of every classifier. Fusing keeps it numerically stable
// (log-sum-exp with the row maximum subtracted) and makes the gradient the simple p - onehot.
#pragma once

#include <vector>

#include "engine/tensor.hpp"

namespace edgeqc {

// logits: N x K, labels: N values in [0, K), class_weights: empty (all 1) or K values, sample_weights: empty
// (all 1) or N values >= 0. Returns sum(c_n s_n l_n) / sum(c_n) with c_n = class_weights[y_n] and
// s_n = sample_weights[n]: with class weights only, PyTorch's CrossEntropyLoss(weight=...); sample weights scale
// rows without renormalising, so a batch of pseudo-labels at weight 0.2 counts 0.2 (Lee 2013's ramp-up).
// When dlogits is not null it receives dLoss/dlogits (N x K).
double softmax_cross_entropy(const Tensor& logits, const std::vector<int>& labels,
                             const std::vector<float>& class_weights, Tensor* dlogits,
                             const std::vector<float>& sample_weights = {});

// probabilities: N x K, each row the softmax of the matching logits row.
void softmax(const Tensor& logits, Tensor& probabilities);

}  // namespace edgeqc
