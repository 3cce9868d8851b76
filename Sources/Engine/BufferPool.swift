/// A cache of Float buffers keyed by element count.
///
/// A training step allocates the same activation and gradient shapes every step; handing freed
/// buffers back to the next request of the same size removes malloc/mmap and first-touch page
/// faults from the steady state without a general-purpose arena. Single-threaded by design
/// (the engine runs on the main thread; BLAS owns any threading below it).
public enum BufferPool {
    nonisolated(unsafe) private static var free: [Int: [UnsafeMutablePointer<Float>]] = [:]
    nonisolated(unsafe) public private(set) static var liveFloats = 0
    nonisolated(unsafe) public private(set) static var cachedFloats = 0
    nonisolated(unsafe) public private(set) static var peakFloats = 0

    @inline(__always)
    public static func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        let n = max(count, 1)
        liveFloats += n
        if liveFloats + cachedFloats > peakFloats { peakFloats = liveFloats + cachedFloats }
        if var list = free[n], let p = list.popLast() {
            free[n] = list
            cachedFloats -= n
            return p
        }
        // 64-byte alignment suits AVX-512 loads and BLAS packing.
        let raw = UnsafeMutableRawPointer.allocate(byteCount: n * MemoryLayout<Float>.stride, alignment: 64)
        return raw.bindMemory(to: Float.self, capacity: n)
    }

    @inline(__always)
    public static func give(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
        let n = max(count, 1)
        liveFloats -= n
        cachedFloats += n
        free[n, default: []].append(p)
    }

    /// Returns every cached buffer to the system (e.g. between benchmark phases).
    public static func drain() {
        for (_, list) in free { for p in list { p.deallocate() } }
        free.removeAll()
        cachedFloats = 0
    }
}

/// A pooled buffer owned by whoever holds this object (e.g. a backward closure's saved
/// statistics): released when the last reference goes, whether or not backward ever ran.
public final class Scratch {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    public init(_ count: Int) { self.count = count; pointer = BufferPool.take(count) }
    deinit { BufferPool.give(pointer, count) }
}
