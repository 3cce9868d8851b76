/// FNV-1a, the one hash of the project: checksums of parameter snapshots (peer exchange, group
/// consistency checks) and the seeds of named random streams. Not cryptographic; it detects torn
/// or corrupted copies and disagreeing ranks, which is all it is asked to do.
public struct FNV1a {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    public init() {}

    @inline(__always)
    public mutating func combine(_ word: UInt64) { value = (value ^ word) &* 0x100_0000_01B3 }

    /// Hashes the bit patterns of `count` floats as 32-bit words (so -0 and 0, or two NaNs with
    /// different payloads, differ: equal hashes mean bitwise equal values).
    public mutating func combine(floats p: UnsafeRawPointer, count: Int) {
        let words = p.assumingMemoryBound(to: UInt32.self)
        for i in 0..<count { combine(UInt64(words[i])) }
    }

    public mutating func combine<S: Sequence>(bytes: S) where S.Element == UInt8 {
        for b in bytes { combine(UInt64(b)) }
    }

    /// The hash of `count` floats' bit patterns.
    public static func hash(floats p: UnsafeRawPointer, count: Int) -> UInt64 {
        var h = FNV1a()
        h.combine(floats: p, count: count)
        return h.value
    }
}
