import Foundation

/// An optimizer updates a parameter group's flat `values` from its flat `gradients`, keeping any
/// state in buffers of the same layout (one loop over the whole model, no per-parameter dispatch).
public protocol Optimizer: AnyObject {
    var kind: String { get }
    /// Steps taken so far (Adam's bias correction; checkpointed for exact resume).
    var stepCount: Int { get set }
    /// Named state buffers, each `parameters.trainableCount` floats, for checkpoints.
    var stateBuffers: [(String, UnsafeMutablePointer<Float>)] { get }
    func step(lr: Float)
}

/// SGD with momentum, Nesterov and (coupled) weight decay, exactly as torch.optim.SGD:
/// g += wd*p; buf = mu*buf + (1-dampening)*g (buf = g on the first step); g = nesterov ? g + mu*buf : buf; p -= lr*g.
public final class SGD: Optimizer {
    public let parameters: any ParameterGroup
    public let momentum: Float, nesterov: Bool, dampening: Float
    public var weightDecay: Float
    public var stepCount = 0
    let velocity: UnsafeMutablePointer<Float>
    public var kind: String { "sgd" }

    public init(parameters: any ParameterGroup, momentum: Float = 0.9, weightDecay: Float = 0, nesterov: Bool = false, dampening: Float = 0) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "Nesterov needs momentum > 0 and no dampening")
        self.parameters = parameters; self.momentum = momentum; self.weightDecay = weightDecay
        self.nesterov = nesterov; self.dampening = dampening
        velocity = .allocate(capacity: max(parameters.trainableCount, 1))
        velocity.update(repeating: 0, count: max(parameters.trainableCount, 1))
    }
    deinit { velocity.deallocate() }

    public var stateBuffers: [(String, UnsafeMutablePointer<Float>)] { momentum != 0 ? [("momentum", velocity)] : [] }

    public func step(lr: Float) {
        let p = parameters.values, g = parameters.gradients, v = velocity
        let n = parameters.trainableCount, first = stepCount == 0
        // Sixteen lanes at a time, the branches decided once: the compiler cannot vectorise the
        // scalar loop (three pointers that might alias, branches per element), and the update
        // was a fifth of an `mlp` step. Every lane does the scalar arithmetic in the same order,
        // so results are bitwise those of the scalar loop (which handles the tail).
        typealias V = SIMD16<Float>
        @inline(__always) func loadV(_ q: UnsafeMutablePointer<Float>, _ i: Int) -> V {
            UnsafeRawPointer(q + i).loadUnaligned(as: V.self)
        }
        @inline(__always) func storeV(_ x: V, _ q: UnsafeMutablePointer<Float>, _ i: Int) {
            UnsafeMutableRawPointer(q + i).storeBytes(of: x, as: V.self)
        }
        let vwd = V(repeating: weightDecay), vmu = V(repeating: momentum), vlr = V(repeating: lr)
        let vdamp = V(repeating: 1 - dampening)
        var i = 0
        while i + 16 <= n {
            var d = loadV(g, i) + vwd * loadV(p, i)
            if momentum != 0 {
                let vel = first ? d : vmu * loadV(v, i) + vdamp * d
                storeV(vel, v, i)
                d = nesterov ? d + vmu * vel : vel
            }
            storeV(loadV(p, i) - vlr * d, p, i)
            i += 16
        }
        let mu = momentum, wd = weightDecay
        while i < n {
            var d = g[i] + wd * p[i]
            if mu != 0 {
                v[i] = first ? d : mu * v[i] + (1 - dampening) * d
                d = nesterov ? d + mu * v[i] : v[i]
            }
            p[i] -= lr * d
            i += 1
        }
        stepCount += 1
    }
}

/// Adam (L2 penalty added to the gradient) or AdamW (decoupled decay), as torch.optim.Adam/AdamW.
public final class Adam: Optimizer {
    public let parameters: any ParameterGroup
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float, decoupled: Bool
    public var stepCount = 0
    let m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>
    public var kind: String { decoupled ? "adamw" : "adam" }

    public init(parameters: any ParameterGroup, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8,
                weightDecay: Float = 0, decoupled: Bool = false) {
        self.parameters = parameters; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        self.weightDecay = weightDecay; self.decoupled = decoupled
        let n = max(parameters.trainableCount, 1)
        m = .allocate(capacity: n); v = .allocate(capacity: n)
        m.update(repeating: 0, count: n); v.update(repeating: 0, count: n)
    }
    deinit { m.deallocate(); v.deallocate() }

    public var stateBuffers: [(String, UnsafeMutablePointer<Float>)] { [("exp_avg", m), ("exp_avg_sq", v)] }

    public func step(lr: Float) {
        stepCount += 1
        let p = parameters.values, g = parameters.gradients, n = parameters.trainableCount
        let b1 = beta1, b2 = beta2, wd = weightDecay
        let c1 = 1 - Float(Foundation.pow(Double(b1), Double(stepCount)))
        let c2 = 1 - Float(Foundation.pow(Double(b2), Double(stepCount)))
        let stepSize = lr / c1, c2Root = c2.squareRoot()
        // Vectorised as SGD (same per-element arithmetic, the scalar loop finishes the tail).
        typealias V = SIMD16<Float>
        @inline(__always) func loadV(_ q: UnsafeMutablePointer<Float>, _ i: Int) -> V {
            UnsafeRawPointer(q + i).loadUnaligned(as: V.self)
        }
        @inline(__always) func storeV(_ x: V, _ q: UnsafeMutablePointer<Float>, _ i: Int) {
            UnsafeMutableRawPointer(q + i).storeBytes(of: x, as: V.self)
        }
        let vb1 = V(repeating: b1), vb2 = V(repeating: b2), v1b1 = V(repeating: 1 - b1), v1b2 = V(repeating: 1 - b2)
        let vwd = V(repeating: wd), vdecay = V(repeating: 1 - lr * wd), vstep = V(repeating: stepSize)
        let vc2 = V(repeating: c2Root), veps = V(repeating: eps)
        var i = 0
        while i + 16 <= n {
            var d = loadV(g, i)
            var pv = loadV(p, i)
            if decoupled { pv *= vdecay } else { d += vwd * pv }
            let mv = vb1 * loadV(m, i) + v1b1 * d
            let vv = vb2 * loadV(v, i) + v1b2 * d * d
            storeV(mv, m, i); storeV(vv, v, i)
            storeV(pv - vstep * mv / (vv.squareRoot() / vc2 + veps), p, i)
            i += 16
        }
        while i < n {
            var d = g[i]
            if decoupled { p[i] *= 1 - lr * wd } else { d += wd * p[i] }
            m[i] = b1 * m[i] + (1 - b1) * d
            v[i] = b2 * v[i] + (1 - b2) * d * d
            p[i] -= stepSize * m[i] / (v[i].squareRoot() / c2Root + eps)
            i += 1
        }
    }
}
