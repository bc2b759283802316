// Wall-clock helpers shared by the benchmarks: repeat a step until enough time has passed, peak RSS, and the
// checked parsing of their command-line arguments.
#pragma once

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <cstring>
#include <stdexcept>
#include <string>

#include "engine/architecture.hpp"
#include "engine/input_format.hpp"

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

// The main() of the benchmarks that take [ARCH] [SECONDS_PER_FIGURE] [HEIGHTxWIDTH]: usage on --help or too many
// arguments, then run(architecture, seconds, height, width) with the defaults filled in; errors end in one line.
template <class Run>
int network_benchmark_main(int argc, char** argv, const char* name, const char* usage, double default_seconds, Run run) {
    if (wants_help(argc, argv) || argc > 4) {
        std::fputs(usage, wants_help(argc, argv) ? stdout : stderr);
        return wants_help(argc, argv) ? 0 : 2;
    }
    try {
        int height = 80, width = 120;
        if (argc > 3) edgeqc::parse_input_size(argv[3], height, width);
        run(argc > 1 ? argv[1] : edgeqc::kDefaultArchitecture, argc > 2 ? seconds_argument(argv[2]) : default_seconds,
            height, width);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: %s\n", name, e.what());
        return 1;
    }
    return 0;
}

inline double peak_rss_mib() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

}  // namespace edgeqc::bench
