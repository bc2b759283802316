// The numerically stable softmax of one row of logits, shared by the inference plan and the training loss.
#pragma once

#include <algorithm>
#include <cmath>

namespace edgeqc {

// Writes the softmax of logits[0 .. classes) into out (the maximum subtracted first, summed in double) and returns
// the log-partition log(sum(exp(logit - max))) + max, which the cross-entropy needs.
inline double softmax_f32(const float* logits, int classes, float* out) {
    const float maximum = *std::max_element(logits, logits + classes);
    double sum = 0.0;
    for (int k = 0; k < classes; ++k) sum += std::exp(static_cast<double>(logits[k] - maximum));
    for (int k = 0; k < classes; ++k)
        out[k] = static_cast<float>(std::exp(static_cast<double>(logits[k] - maximum)) / sum);
    return std::log(sum) + maximum;
}

}  // namespace edgeqc
