// Epoch orders and balancing weights.
#include "data/sampling.hpp"

#include <algorithm>
#include <numeric>

#include "engine/error.hpp"
#include "engine/rng.hpp"

namespace edgeqc {

Balance parse_balance(const std::string& name) {
    if (name == "none") return Balance::None;
    if (name == "oversample") return Balance::Oversample;
    if (name == "weights") return Balance::Weights;
    throw Error("--balance must be none, oversample or weights, not '" + name + "'");
}

const char* balance_name(Balance balance) {
    switch (balance) {
        case Balance::Oversample: return "oversample";
        case Balance::Weights: return "weights";
        default: return "none";
    }
}

std::vector<std::size_t> epoch_order(const std::vector<int>& labels, bool shuffle, bool oversample,
                                     std::uint64_t seed, int epoch) {
    Rng rng(seed + 0x9E3779B97F4A7C15ull * (static_cast<std::uint64_t>(epoch) + 1));
    std::vector<std::size_t> order(labels.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    if (oversample && !labels.empty()) {
        std::vector<std::vector<std::size_t>> by_class(static_cast<std::size_t>(*std::max_element(labels.begin(), labels.end())) + 1);
        for (std::size_t i = 0; i < labels.size(); ++i) by_class[static_cast<std::size_t>(labels[i])].push_back(i);
        std::size_t largest = 0;
        for (const auto& members : by_class) largest = std::max(largest, members.size());
        for (const auto& members : by_class) {
            const std::size_t own = members.size();
            for (std::size_t extra = 0; own > 0 && extra < largest - own; extra += own) {
                std::vector<std::size_t> copies = members;
                rng.shuffle(copies);
                const std::size_t take = std::min(own, largest - own - extra);
                order.insert(order.end(), copies.begin(), copies.begin() + static_cast<std::ptrdiff_t>(take));
            }
        }
    }
    if (shuffle) rng.shuffle(order);
    return order;
}

std::vector<float> inverse_frequency_weights(const std::vector<std::size_t>& class_counts) {
    const std::size_t total = std::accumulate(class_counts.begin(), class_counts.end(), std::size_t{0});
    const auto present = static_cast<double>(std::count_if(class_counts.begin(), class_counts.end(),
                                                           [](std::size_t n) { return n > 0; }));
    std::vector<float> weights(class_counts.size(), 0.0f);
    for (std::size_t k = 0; k < class_counts.size(); ++k)
        if (class_counts[k] > 0)
            weights[k] = static_cast<float>(static_cast<double>(total) / (present * static_cast<double>(class_counts[k])));
    return weights;
}

}  // namespace edgeqc
