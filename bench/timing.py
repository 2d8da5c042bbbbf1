"""The one timing helper of the benchmarks: median wall time after a warm-up."""
import statistics
import time


def median_seconds(fn, reps: int) -> float:
    """Median wall time of `fn()` over `reps` runs after one warm-up call (allocator, oneDNN
    kernels and caches are warm; the median shrugs off a noisy neighbour)."""
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)
