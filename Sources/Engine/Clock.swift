import Foundation

/// Monotonic seconds, for step timings (never goes back when the wall clock is adjusted, and
/// needs no MPI, so the engine and in-process tests can time too).
@inline(__always)
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
