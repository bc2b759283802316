// Sums in a fixed order whatever vector width the compiler picks: the reductions of training (batch norm's statistics
// and gradients, a convolution's bias gradient) give the same bits on every machine and thread count.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>

namespace edgeqc {

// Sums of term(0) ... term(n - 1), one per term function, each in a fixed order whatever vector width the compiler
// picks, so a model trains the same on every machine: 8 interleaved float lanes (one AVX2 register, two SSE/NEON
// ones) over blocks of 1024 terms, the lanes added in a fixed order and the blocks in double. Accurate, and
// vectorised, where one double running sum is bound by add latency. Several sums in one pass read shared operands
// once.
template <class... Terms>
std::array<double, sizeof...(Terms)> ordered_sums(std::size_t n, const Terms&... terms) {
    constexpr std::size_t kSums = sizeof...(Terms), kLanes = 8, kBlock = 1024;
    std::array<double, kSums> totals{};
    for (std::size_t start = 0; start < n; start += kBlock) {
        const std::size_t end = std::min(n, start + kBlock);
        float lanes[kSums][kLanes] = {};
        std::size_t i = start;
        for (; i + kLanes <= end; i += kLanes) {
#pragma omp simd
            for (std::size_t lane = 0; lane < kLanes; ++lane) {
                const float values[kSums] = {terms(i + lane)...};
                for (std::size_t sum = 0; sum < kSums; ++sum) lanes[sum][lane] += values[sum];
            }
        }
        std::array<float, kSums> blocks{};
        for (std::size_t sum = 0; sum < kSums; ++sum)
            for (const float lane : lanes[sum]) blocks[sum] += lane;
        for (; i < end; ++i) {
            const float values[kSums] = {terms(i)...};
            for (std::size_t sum = 0; sum < kSums; ++sum) blocks[sum] += values[sum];
        }
        for (std::size_t sum = 0; sum < kSums; ++sum) totals[sum] += blocks[sum];
    }
    return totals;
}

}  // namespace edgeqc
