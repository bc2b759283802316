// Which training images an epoch visits and in which order, and the class weights of the loss: the two
// ways edgeqc balances an imbalanced set (--balance oversample | weights).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace edgeqc {

enum class Balance { None, Oversample, Weights };
Balance parse_balance(const std::string& name);  // "none" | "oversample" | "weights"; throws edgeqc::Error
const char* balance_name(Balance balance);

// Indices into labels for one epoch, a function of (seed, epoch) only. Without oversampling every image
// once (shuffled or in order). With oversampling every class is brought up to the largest class's count:
// all of its images once, then extra copies drawn without repetition until the class is exhausted, then
// again; classes without images stay empty. Labels must be >= 0.
std::vector<std::size_t> epoch_order(const std::vector<int>& labels, bool shuffle, bool oversample,
                                     std::uint64_t seed, int epoch);

// Weights n / (K * n_k) with K the classes that have images (scikit-learn's "balanced"): a class's weight
// times its count is the same for all classes, and the weights average to 1 over the images. Classes
// without images get weight 0.
std::vector<float> inverse_frequency_weights(const std::vector<std::size_t>& class_counts);

}  // namespace edgeqc
