import Foundation

/// xoshiro256** seeded through SplitMix64: fast, small state (four words, so a checkpoint can
/// store it exactly) and identical on every platform, which makes "same seed, same weights on
/// every rank" hold bit for bit.
public struct RandomGenerator {
    public var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var sm = seed
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitmix(&sm), splitmix(&sm), splitmix(&sm), splitmix(&sm))
    }

    /// A generator for a named sub-stream (e.g. one per parameter), independent of call order.
    public init(seed: UInt64, stream: String) {
        var h = FNV1a()
        h.combine(bytes: stream.utf8)
        self.init(seed: seed ^ h.value)
    }

    public var words: [UInt64] { [state.0, state.1, state.2, state.3] }
    public init(words: [UInt64]) {
        precondition(words.count == 4)
        state = (words[0], words[1], words[2], words[3])
    }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = (state.3 << 45) | (state.3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits (every Float in the range is reachable evenly).
    @inline(__always)
    public mutating func uniform() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    @inline(__always)
    public mutating func uniform(_ low: Float, _ high: Float) -> Float {
        low + (high - low) * uniform()
    }

    /// Standard normal by Box-Muller (computed in Double for accuracy in the tails).
    public mutating func normal() -> Float {
        let u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        let r = (-2.0 * log(max(u1, 1e-300))).squareRoot()
        return Float(r * cos(2.0 * Double.pi * u2))
    }

    /// Uniform integer in 0..<bound, without modulo bias.
    public mutating func int(below bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        let limit = UInt64.max - UInt64.max % b
        while true {
            let x = next()
            if x < limit { return Int(x % b) }
        }
    }

    /// Fisher-Yates shuffle of 0..<n.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                let j = int(below: i + 1)
                p.swapAt(i, j)
            }
        }
        return p
    }
}
