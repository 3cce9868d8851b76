import Engine

/// All of a model's parameters in one contiguous Float buffer (after llm.c), with named views.
///
/// Gradients live in a second buffer of the same layout and BatchNorm running statistics in a
/// third. So gradient sync is one allreduce over `gradients`, a peer snapshot is one memcpy of
/// `values` and `buffers`, the optimizer's state is buffers of `trainableCount` floats, and a
/// checkpoint writes one dataset per view. Names and shapes are PyTorch's `state_dict` keys.
public final class ParameterStore {
    public struct View {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public let count: Int
    }

    public let trainable: [View]
    public let buffersLayout: [View]
    public let trainableCount: Int
    public let bufferCount: Int
    public let values: UnsafeMutablePointer<Float>
    public let gradients: UnsafeMutablePointer<Float>
    public let buffers: UnsafeMutablePointer<Float>
    /// The bound parameters, in the order of `trainable` and `buffersLayout`.
    public let trainableParameters: [Parameter]
    public let bufferParameters: [Parameter]
    public let batchNorms: [(String, BatchNorm)]

    /// Lays out `model`'s parameters, binds every `Parameter.tensor` to a view of the store and
    /// initialises the values from `seed`: each parameter draws from its own stream named after
    /// it, so the same seed gives bit-identical weights on every rank and in every build.
    public init(model: Module, seed: UInt64) {
        let named = model.namedParameters()
        var t: [View] = [], b: [View] = [], tp: [Parameter] = [], bp: [Parameter] = []
        var to = 0, bo = 0
        for (name, p) in named {
            switch p.kind {
            case .trainable:
                t.append(View(name: name, shape: p.shape, offset: to, count: p.count)); tp.append(p); to += p.count
            case .buffer:
                b.append(View(name: name, shape: p.shape, offset: bo, count: p.count)); bp.append(p); bo += p.count
            }
        }
        trainable = t; buffersLayout = b; trainableParameters = tp; bufferParameters = bp
        trainableCount = to; bufferCount = bo
        values = .allocate(capacity: max(to, 1))
        gradients = .allocate(capacity: max(to, 1))
        buffers = .allocate(capacity: max(bo, 1))
        gradients.update(repeating: 0, count: max(to, 1))
        batchNorms = model.namedModules().compactMap { name, m in (m as? BatchNorm).map { (name, $0) } }

        for (view, p) in zip(t, tp) {
            p.tensor = Tensor(view: values + view.offset, shape: view.shape, owner: self,
                              grad: gradients + view.offset, requiresGrad: true)
            Self.initialize(values + view.offset, count: view.count, p.initializer,
                            rng: RandomGenerator(seed: seed, stream: view.name))
        }
        for (view, p) in zip(b, bp) {
            p.tensor = Tensor(view: buffers + view.offset, shape: view.shape, owner: self)
            Self.initialize(buffers + view.offset, count: view.count, p.initializer,
                            rng: RandomGenerator(seed: seed, stream: view.name))
        }
    }

    deinit {
        values.deallocate(); gradients.deallocate(); buffers.deallocate()
    }

    static func initialize(_ p: UnsafeMutablePointer<Float>, count: Int, _ initializer: Parameter.Initializer,
                           rng: RandomGenerator) {
        var rng = rng
        switch initializer {
        case .zeros: p.update(repeating: 0, count: count)
        case .ones: p.update(repeating: 1, count: count)
        case .uniform(let bound): for i in 0..<count { p[i] = rng.uniform(-bound, bound) }
        case .normal(let std): for i in 0..<count { p[i] = std * rng.normal() }
        }
    }

    /// Starts a new accumulation: the next backward assigns gradients (no memset).
    public func zeroGrad() { for p in trainableParameters { p.tensor.clearGrad() } }

    /// Makes `gradients` whole: parameters no backward reached get zeros. Call before reading the
    /// flat buffer (allreduce, optimizer).
    public func finalizeGradients() { for p in trainableParameters { p.tensor.materializeGrad() } }

    /// Total size in bytes of values + buffers (what a checkpoint or a peer snapshot carries).
    public var snapshotBytes: Int { snapshotCount * MemoryLayout<Float>.stride }
    /// Floats in a snapshot: the values, then the buffers.
    public var snapshotCount: Int { trainableCount + bufferCount }

    /// Writes the snapshot (values, then buffers) into `flat`, `snapshotCount` floats.
    public func writeSnapshot(to flat: UnsafeMutablePointer<Float>) {
        flat.update(from: values, count: trainableCount)
        (flat + trainableCount).update(from: buffers, count: bufferCount)
    }

    /// The snapshot as a new array (for checkpoints and tests; the exchange writes in place).
    public func snapshot() -> [Float] {
        [Float](unsafeUninitializedCapacity: snapshotCount) { p, n in
            writeSnapshot(to: p.baseAddress!)
            n = snapshotCount
        }
    }

    /// Reads a snapshot written by `writeSnapshot` of the same model.
    public func readSnapshot(from flat: UnsafePointer<Float>) {
        values.update(from: flat, count: trainableCount)
        buffers.update(from: flat + trainableCount, count: bufferCount)
    }

    public func view(named name: String) -> View? {
        trainable.first { $0.name == name } ?? buffersLayout.first { $0.name == name }
    }

    /// True when every value and buffer is a finite number: a collapsed model (NaN or infinite
    /// weights) is never published, distilled from or checkpointed.
    public var isFinite: Bool {
        for (p, n) in [(values, trainableCount), (buffers, bufferCount)] {
            // x - x is 0 for finite x and NaN for NaN and infinities; summing keeps one pass.
            var s: Float = 0
            for i in 0..<n { s += p[i] - p[i] }
            if s != 0 || s.isNaN { return false }
        }
        return true
    }

    /// The Euclidean norm of the gradients; NaN or infinite when any gradient is. Squares are
    /// summed 16 lanes at a time in Float over blocks of 4096 values and the blocks in Double: a
    /// scalar Double loop cost 7 instructions per parameter (6% of an `mlp` step), this about a
    /// tenth of one. A block overflows only for gradients beyond 1e19, already a divergence.
    public func gradientNorm() -> Double {
        let g = gradients, n = trainableCount
        var total = 0.0
        var i = 0
        while i < n {
            let end = min(n, i + 4096)
            var lanes = SIMD16<Float>()
            var j = i
            while j + 16 <= end {
                let v = UnsafeRawPointer(g + j).loadUnaligned(as: SIMD16<Float>.self)
                lanes += v * v
                j += 16
            }
            var block = Double(lanes.sum())
            while j < end { block += Double(g[j]) * Double(g[j]); j += 1 }
            total += block
            i = end
        }
        return total.squareRoot()
    }

    /// Copies another store's values and buffers (same model) into this one.
    public func copy(from other: ParameterStore) {
        precondition(other.trainableCount == trainableCount && other.bufferCount == bufferCount, "copy between different models")
        values.update(from: other.values, count: trainableCount)
        buffers.update(from: other.buffers, count: bufferCount)
    }

    /// FNV-1a over the bit patterns of values and buffers: equal iff bitwise equal (with
    /// overwhelming probability); used to check that ranks of a group agree.
    public func checksum() -> UInt64 {
        var h = FNV1a()
        h.combine(floats: values, count: trainableCount)
        h.combine(floats: buffers, count: bufferCount)
        return h.value
    }
}
