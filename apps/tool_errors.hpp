// How the command-line tools end on an error: one line "<tool>: error: ...", exit status 1, whatever was thrown.
#pragma once

#include <cstdio>
#include <exception>
#include <new>

#include "engine/error.hpp"

namespace edgeqc {

// Runs body() and returns its exit status; an exception becomes one error line on stderr and status 1.
// out_of_memory_hint follows "out of memory" (e.g. what to try instead).
template <class Body>
int exit_status_of(const char* tool, const char* out_of_memory_hint, Body body) {
    try {
        return body();
    } catch (const Error& e) {
        std::fprintf(stderr, "%s: error: %s\n", tool, e.what());
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "%s: error: out of memory%s\n", tool, out_of_memory_hint);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s: error: internal error: %s\n", tool, e.what());
    }
    return 1;
}

}  // namespace edgeqc
