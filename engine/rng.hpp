// Seeded, platform-independent random numbers (xoshiro256**), so a seed reproduces a run bit for bit.
// std::mt19937 is portable but std::*_distribution are not, so the distributions are written here too.
#pragma once

#include <cmath>
#include <cstdint>
#include <utility>

namespace edgeqc {

class Rng {
public:
    explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

    void reseed(std::uint64_t seed) {
        // splitmix64 spreads any seed (including 0) over the 256-bit state.
        for (auto& word : state_) {
            seed += 0x9E3779B97F4A7C15ull;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            word = z ^ (z >> 31);
        }
        has_spare_normal_ = false;
    }

    std::uint64_t next_u64() {
        const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
        const std::uint64_t t = state_[1] << 17;
        state_[2] ^= state_[0];
        state_[3] ^= state_[1];
        state_[1] ^= state_[2];
        state_[0] ^= state_[3];
        state_[2] ^= t;
        state_[3] = rotl(state_[3], 45);
        return result;
    }

    // Uniform in [0, 1) with 24 random bits: exactly representable as float.
    float uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }
    float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }

    // Uniform integer in [0, n); the modulo bias is below 2^-40 for any n a dataset can have.
    std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : next_u64() % n; }

    // Standard normal via Box-Muller, caching the second value.
    float normal() {
        if (has_spare_normal_) {
            has_spare_normal_ = false;
            return spare_normal_;
        }
        double u1 = 0.0;
        while (u1 <= 1e-300) u1 = static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
        const double u2 = static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
        const double radius = std::sqrt(-2.0 * std::log(u1));
        const double angle = 6.283185307179586 * u2;
        spare_normal_ = static_cast<float>(radius * std::sin(angle));
        has_spare_normal_ = true;
        return static_cast<float>(radius * std::cos(angle));
    }

    // Fisher-Yates shuffle of any random-access range.
    template <class Range>
    void shuffle(Range& range) {
        for (std::size_t i = range.size(); i > 1; --i) {
            std::size_t j = static_cast<std::size_t>(below(i));
            std::swap(range[i - 1], range[j]);
        }
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::uint64_t state_[4]{};
    float spare_normal_ = 0.0f;
    bool has_spare_normal_ = false;
};

}  // namespace edgeqc
