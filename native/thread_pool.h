// A persistent pool of std::threads (hardware_concurrency, GRADCAM_THREADS to override) with a
// blocking parallel-for. The calling thread works on its own job while the pool's threads help
// the oldest pending job, so concurrent callers (async kernels on libuv threads) never wait on
// each other's locks. A parallel-for started from inside a pool task runs serially there.
#pragma once
#include <cstddef>
#include <functional>

namespace gradcam {

/** Calls fn(begin, end) over [0, count) in chunks of `grain` items, on every pool thread. */
void parallelFor(size_t count, size_t grain, const std::function<void(size_t, size_t)>& fn);

/** A grain that gives each thread a few chunks of `count` items costing `costPerItem` each. */
size_t grainFor(size_t count, size_t costPerItem);

unsigned poolThreads();

}  // namespace gradcam
