import Foundation

/// A dense Float32 tensor in row-major (NCHW) layout.
///
/// A tensor either owns its buffer (taken from `BufferPool`) or is a view into memory that
/// `owner` keeps alive: parameters are views into the parameter store's one contiguous buffer,
/// and `reshape` results are views of their input. The gradient follows the same rule.
///
/// Gradients are written without zero-filling: `gradIsSet == false` means the gradient buffer
/// holds nothing meaningful yet and the next backward kernel *assigns* instead of adding.
public final class Tensor {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>
    private let ownsData: Bool
    private let owner: AnyObject?

    /// Whether backward should produce a gradient for this tensor.
    public var requiresGrad: Bool
    public private(set) var grad: UnsafeMutablePointer<Float>?
    private var ownsGrad = false
    /// True once some backward kernel has written `grad` since the last `clearGrad()`.
    public var gradIsSet = false

    /// A new tensor with uninitialised contents.
    public init(uninitialized shape: [Int], requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = BufferPool.take(count)
        self.ownsData = true
        self.owner = nil
        self.requiresGrad = requiresGrad
    }

    public convenience init(zeros shape: [Int], requiresGrad: Bool = false) {
        self.init(uninitialized: shape, requiresGrad: requiresGrad)
        data.update(repeating: 0, count: count)
    }

    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        self.init(uninitialized: shape, requiresGrad: requiresGrad)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    public convenience init(repeating value: Float, shape: [Int], requiresGrad: Bool = false) {
        self.init(uninitialized: shape, requiresGrad: requiresGrad)
        data.update(repeating: value, count: count)
    }

    /// A view of external memory (`owner` keeps it alive); `grad`, if given, is a view too.
    public init(view data: UnsafeMutablePointer<Float>, shape: [Int], owner: AnyObject?,
                grad: UnsafeMutablePointer<Float>? = nil, requiresGrad: Bool = false) {
        self.shape = shape
        self.count = shape.reduce(1, *)
        self.data = data
        self.ownsData = false
        self.owner = owner
        self.grad = grad
        self.requiresGrad = requiresGrad
    }

    deinit {
        if ownsData { BufferPool.give(data, count) }
        if ownsGrad, let g = grad { BufferPool.give(g, count) }
    }

    public var rank: Int { shape.count }
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }
    public var gradArray: [Float]? {
        guard let g = grad, gradIsSet else { return nil }
        return Array(UnsafeBufferPointer(start: g, count: count))
    }
    public subscript(_ i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }
    public var scalar: Float { precondition(count == 1); return data[0] }

    /// The gradient buffer for a backward kernel to write, and whether it must accumulate
    /// (a value is already there) or may assign. Allocates the buffer on first use.
    @inline(__always)
    public func gradForWrite() -> (UnsafeMutablePointer<Float>, accumulate: Bool) {
        if grad == nil {
            grad = BufferPool.take(count)
            ownsGrad = true
        }
        let accumulate = gradIsSet
        gradIsSet = true
        return (grad!, accumulate)
    }

    /// Keep this intermediate's gradient after backward (leaves always keep theirs).
    public var retainsGrad = false

    /// Returns an owned gradient buffer to the pool.
    func releaseGrad() {
        if ownsGrad, let g = grad { BufferPool.give(g, count); grad = nil; ownsGrad = false }
        gradIsSet = false
    }

    /// Forget the gradient: the next write assigns. No memory is touched.
    public func clearGrad() { gradIsSet = false }

    /// Zero-fill the gradient if nothing wrote it (so consumers of a whole buffer see zeros).
    public func materializeGrad() {
        let (g, acc) = gradForWrite()
        if !acc { g.update(repeating: 0, count: count) }
    }

    /// A copy detached from any graph.
    public func copy() -> Tensor {
        let t = Tensor(uninitialized: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Shares this tensor's memory under another shape (used by `reshape`).
    func viewSharingData(shape newShape: [Int]) -> Tensor {
        Tensor(view: data, shape: newShape, owner: self)
    }

    public func fill(_ value: Float) { data.update(repeating: value, count: count) }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = array.prefix(8).map { String(format: "%.4f", Double($0)) }.joined(separator: ", ")
        return "Tensor(\(shape), [\(head)\(count > 8 ? ", ..." : "")])"
    }
}

extension Tensor {
    /// Uniform random values in [low, high) from `seed` (tests, benchmarks, latent codes).
    public static func uniform(_ shape: [Int], low: Float = -1, high: Float = 1, seed: UInt64,
                               requiresGrad: Bool = false) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let t = Tensor(uninitialized: shape, requiresGrad: requiresGrad)
        for i in 0..<t.count { t.data[i] = rng.uniform(low, high) }
        return t
    }

    /// Standard normal values from `seed`.
    public static func normal(_ shape: [Int], std: Float = 1, seed: UInt64, requiresGrad: Bool = false) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let t = Tensor(uninitialized: shape, requiresGrad: requiresGrad)
        for i in 0..<t.count { t.data[i] = std * rng.normal() }
        return t
    }
}
