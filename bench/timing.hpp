// Wall-clock helpers shared by the benchmarks: repeat a step until enough time has passed, and peak RSS.
#pragma once

#include <sys/resource.h>

#include <chrono>

namespace edgeqc::bench {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs `step` until at least min_seconds have passed (after one warm-up call); returns seconds per call.
template <class Step>
double time_per_call(Step step, double min_seconds) {
    step();
    int calls = 0;
    const auto start = std::chrono::steady_clock::now();
    do {
        step();
        ++calls;
    } while (seconds_since(start) < min_seconds);
    return seconds_since(start) / calls;
}

inline double peak_rss_mib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

}  // namespace edgeqc::bench
