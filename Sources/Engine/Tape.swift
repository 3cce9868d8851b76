/// Reverse-mode autodiff on a tape of coarse ops.
///
/// Each op computes its forward result at once and, when recording and some input needs a
/// gradient, appends one closure that reads the output's gradient and writes its inputs'.
/// `backward` runs the closures newest-first and then drops them (and with them every
/// intermediate activation). Ops are coarse (a convolution, a batch norm, a loss), so the tape
/// holds a few dozen entries per step and the closure overhead is negligible.
public final class Tape {
    nonisolated(unsafe) public static var current = Tape()

    /// When false, ops run forward only (evaluation, peer forwards, no-grad blocks).
    public var isRecording = true
    private var entries: [(output: Tensor, backward: (UnsafeMutablePointer<Float>) -> Void)] = []

    public init() {}

    public var count: Int { entries.count }

    /// True if an op on these inputs must record a backward entry.
    @inline(__always)
    public static func needsGrad(_ inputs: Tensor?...) -> Bool {
        guard current.isRecording else { return false }
        for t in inputs where t?.requiresGrad == true { return true }
        return false
    }

    /// Appends a backward entry for `output`; it runs only if `output` received a gradient.
    public static func record(_ output: Tensor, _ backward: @escaping (_ gradOutput: UnsafeMutablePointer<Float>) -> Void) {
        output.requiresGrad = true
        current.entries.append((output, backward))
    }

    /// Back-propagates from `output` (seeded with ones, or with `seed`) through every recorded op.
    public func backward(_ output: Tensor, seed: [Float]? = nil) {
        let (g, acc) = output.gradForWrite()
        precondition(!acc || seed != nil || output.count == 1)
        if let seed {
            precondition(seed.count == output.count, "seed of \(seed.count) for \(output.count) values")
            for i in 0..<output.count { g[i] = (acc ? g[i] : 0) + seed[i] }
        } else {
            for i in 0..<output.count { g[i] = (acc ? g[i] : 0) + 1 }
        }
        // Popping each entry as it runs frees its saved activations and, unless the caller asked
        // to keep it, its output's gradient: peak memory falls as backward proceeds.
        while let (out, fn) = entries.popLast() {
            if out.gradIsSet, let g = out.grad { fn(g) }
            if !out.retainsGrad { out.releaseGrad() }
        }
    }

    /// Drops all recorded entries without running them.
    public func reset() {
        entries.removeAll(keepingCapacity: true)
    }
}

/// Runs `body` without recording: no backward entries, no saved activations.
@discardableResult
public func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
    let tape = Tape.current
    let was = tape.isRecording
    tape.isRecording = false
    defer { tape.isRecording = was }
    return try body()
}
