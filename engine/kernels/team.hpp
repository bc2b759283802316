// How the kernels' drivers open OpenMP teams: only where the work is worth more than one thread.
#pragma once

#include <omp.h>

namespace edgeqc {

// Runs body() on a team of the default size where `worth_threads` and no region is open yet; else on the calling
// thread alone. Where no region is open, alone means without one: a region that `if (false)` keeps to one thread
// still cost 2.6 us on a Zen 5 VM, more than a whole dense layer at batch 1. Inside an open region (one product per
// thread of an outer loop) it opens one of a single thread, so that the body's orphaned `omp for`s bind to that
// and not to the outer team.
template <class Body>
void run_in_team(bool worth_threads, const Body& body) {
    if (!worth_threads && !omp_in_parallel()) return body();
#pragma omp parallel if (worth_threads && !omp_in_parallel())
    body();
}

}  // namespace edgeqc
