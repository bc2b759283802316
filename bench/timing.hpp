// Wall-clock helpers shared by the benchmarks: repeat a step until enough time has passed, peak RSS, and the
// checked parsing of their command-line arguments.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>

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

// Seconds to spend per figure, from a command-line argument; throws std::invalid_argument unless positive.
inline double seconds_argument(const char* text) {
    std::size_t parsed = 0;
    double seconds = 0.0;
    try {
        seconds = std::stod(text, &parsed);
    } catch (const std::exception&) {
        parsed = 0;
    }
    if (parsed == 0 || parsed != std::strlen(text) || !(seconds > 0.0 && seconds < 1e6))
        throw std::invalid_argument("seconds per figure must be a positive number, not '" + std::string(text) + "'");
    return seconds;
}

// True when the first argument asks for help.
inline bool wants_help(int argc, char** argv) {
    return argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0);
}

inline double peak_rss_mib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

}  // namespace edgeqc::bench
