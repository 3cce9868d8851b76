import Foundation

/// An optimizer updates the store's flat `values` from its flat `gradients`, keeping any state in
/// buffers of the same layout (one loop over the whole model, no per-parameter dispatch).
public protocol Optimizer: AnyObject {
    var kind: String { get }
    /// Steps taken so far (Adam's bias correction; checkpointed for exact resume).
    var stepCount: Int { get set }
    /// Named state buffers, each `trainableCount` floats, for checkpoints.
    var stateBuffers: [(String, UnsafeMutablePointer<Float>)] { get }
    func step(lr: Float)
}

/// SGD with momentum, Nesterov and (coupled) weight decay, exactly as torch.optim.SGD:
/// g += wd*p; buf = mu*buf + (1-dampening)*g (buf = g on the first step); g = nesterov ? g + mu*buf : buf; p -= lr*g.
public final class SGD: Optimizer {
    public let store: ParameterStore
    public let momentum: Float, nesterov: Bool, dampening: Float
    public var weightDecay: Float
    public var stepCount = 0
    let velocity: UnsafeMutablePointer<Float>
    public var kind: String { "sgd" }

    public init(store: ParameterStore, momentum: Float = 0.9, weightDecay: Float = 0, nesterov: Bool = false, dampening: Float = 0) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "Nesterov needs momentum > 0 and no dampening")
        self.store = store; self.momentum = momentum; self.weightDecay = weightDecay
        self.nesterov = nesterov; self.dampening = dampening
        velocity = .allocate(capacity: max(store.trainableCount, 1))
        velocity.update(repeating: 0, count: max(store.trainableCount, 1))
    }
    deinit { velocity.deallocate() }

    public var stateBuffers: [(String, UnsafeMutablePointer<Float>)] { momentum != 0 ? [("momentum", velocity)] : [] }

    public func step(lr: Float) {
        let p = store.values, g = store.gradients, v = velocity
        let n = store.trainableCount, mu = momentum, wd = weightDecay, first = stepCount == 0
        for i in 0..<n {
            var d = g[i] + wd * p[i]
            if mu != 0 {
                v[i] = first ? d : mu * v[i] + (1 - dampening) * d
                d = nesterov ? d + mu * v[i] : v[i]
            }
            p[i] -= lr * d
        }
        stepCount += 1
    }
}

/// Adam (L2 penalty added to the gradient) or AdamW (decoupled decay), as torch.optim.Adam/AdamW.
public final class Adam: Optimizer {
    public let store: ParameterStore
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float, decoupled: Bool
    public var stepCount = 0
    let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    public var kind: String { decoupled ? "adamw" : "adam" }

    public init(store: ParameterStore, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 0, decoupled: Bool = false) {
        self.store = store; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.weightDecay = weightDecay; self.decoupled = decoupled
        let n = max(store.trainableCount, 1)
        m = .allocate(capacity: n); v = .allocate(capacity: n)
        m.update(repeating: 0, count: n); v.update(repeating: 0, count: n)
    }
    deinit { m.deallocate(); v.deallocate() }

    public var stateBuffers: [(String, UnsafeMutablePointer<Float>)] { [("exp_avg", m), ("exp_avg_sq", v)] }

    public func step(lr: Float) {
        stepCount += 1
        let p = store.values, g = store.gradients, n = store.trainableCount
        let b1 = beta1, b2 = beta2, wd = weightDecay
        let c1 = 1 - Float(Foundation.pow(Double(b1), Double(stepCount)))
        let c2 = 1 - Float(Foundation.pow(Double(b2), Double(stepCount)))
        let stepSize = lr / c1, c2Root = c2.squareRoot()
        for i in 0..<n {
            var d = g[i]
            if decoupled { p[i] *= 1 - lr * wd } else { d += wd * p[i] }
            m[i] = b1 * m[i] + (1 - b1) * d
            v[i] = b2 * v[i] + (1 - b2) * d * d
            p[i] -= stepSize * m[i] / (v[i].squareRoot() / c2Root + eps)
        }
    }
}
