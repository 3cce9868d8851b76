import Foundation

/// Batch normalisation over the channel axis of [N, C] or [N, C, H, W].
///
/// Training: normalises with the batch's mean and biased variance and, when running buffers are
/// given, updates them PyTorch's way (momentum, unbiased variance). Evaluation: uses the running
/// buffers. `fusedReLU` applies max(0, .) in the same pass (and masks in backward), which saves
/// a full read and write of the activation and a tensor's memory.
public func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?,
                      runningMean: Tensor?, runningVar: Tensor?,
                      training: Bool, momentum: Float = 0.1, eps: Float = 1e-5,
                      fusedReLU: Bool = false) -> Tensor {
    precondition(x.rank == 2 || x.rank == 4, "batchNorm: expects [N,C] or [N,C,H,W], got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], s = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
    let m = n * s
    precondition(!training || m > 1, "batchNorm: training needs more than one value per channel, got \(x.shape)")
    let y = Tensor(uninitialized: x.shape)
    // Per channel: the mean used and 1/sqrt(var + eps), kept for backward.
    let stats = Scratch(2 * c)
    let mean = stats.pointer, invStd = stats.pointer + c

    for ch in 0..<c {
        let (mu, inv, scale, shift) = channelNormalization(x, n: n, c: c, s: s, channel: ch, weight: weight, bias: bias,
                                                           runningMean: runningMean, runningVar: runningVar,
                                                           training: training, momentum: momentum, eps: eps)
        mean[ch] = mu; invStd[ch] = inv
        for i in 0..<n {
            let base = (i * c + ch) * s
            Vector.affine(x.data + base, y.data + base, s, scale: scale, shift: shift, relu: fusedReLU)
        }
    }

    guard Tape.needsGrad(x, weight, bias) else { return y }
    Tape.record(y) { dy in
        let mean = stats.pointer, invStd = stats.pointer + c
        let dxT = gradTarget(x), dwT = gradTarget(weight), dbT = gradTarget(bias)
        let mask: UnsafePointer<Float>? = fusedReLU ? UnsafePointer(y.data) : nil
        for ch in 0..<c {
            let mu = mean[ch], inv = invStd[ch]
            let gamma = weight?.data[ch] ?? 1
            // g = dy (masked by the fused ReLU); sum g and sum g*x give sum g*xhat.
            var sumDy: Float = 0, sumDyX: Float = 0
            for i in 0..<n {
                let base = (i * c + ch) * s
                let (a, b) = Vector.sumAndDot(dy + base, x.data + base, s, mask: mask.map { $0 + base })
                sumDy += a; sumDyX += b
            }
            let sumDyXhat = inv * (sumDyX - mu * sumDy)
            if let (dw, acc) = dwT { put(dw, ch, sumDyXhat, acc) }
            if let (db, acc) = dbT { put(db, ch, sumDy, acc) }
            guard let (dx, acc) = dxT else { continue }
            let (a, b, cc) = channelInputGradient(gamma: gamma, mean: mu, invStd: inv, sumDy: sumDy,
                                                  sumDyXhat: sumDyXhat, count: m, training: training)
            for i in 0..<n {
                let base = (i * c + ch) * s
                Vector.axpbypc(dy + base, x.data + base, mask: mask.map { $0 + base }, dx + base, s,
                               a: a, b: b, c: cc, accumulate: acc)
            }
        }
    }
    return y
}

/// How one channel is normalised: with the batch's mean and biased variance in training (and the
/// running buffers, when given, updated PyTorch's way: momentum, unbiased variance), with the
/// running buffers in evaluation. Returns the mean, 1/sqrt(var + eps) and the affine map
/// y = scale * x + shift that applies it together with the channel's weight and bias.
@inline(__always)
func channelNormalization(_ x: Tensor, n: Int, c: Int, s: Int, channel ch: Int, weight: Tensor?, bias: Tensor?,
                          runningMean: Tensor?, runningVar: Tensor?, training: Bool, momentum: Float, eps: Float)
    -> (mean: Float, invStd: Float, scale: Float, shift: Float) {
    var mu: Float, v: Float
    if training {
        (mu, v) = channelMoments(x.data, n: n, c: c, s: s, channel: ch)
        if let rm = runningMean, let rv = runningVar {
            let m = n * s
            rm.data[ch] = (1 - momentum) * rm.data[ch] + momentum * mu
            rv.data[ch] = (1 - momentum) * rv.data[ch] + momentum * v * Float(m) / Float(m - 1)
        }
    } else {
        guard let rm = runningMean, let rv = runningVar else {
            preconditionFailure("batch norm: evaluation mode needs running statistics")
        }
        mu = rm.data[ch]; v = rv.data[ch]
    }
    let inv = 1 / (v + eps).squareRoot()
    let scale = (weight?.data[ch] ?? 1) * inv
    return (mu, inv, scale, (bias?.data[ch] ?? 0) - mu * scale)
}

/// dx = a*g + b*x + c for one channel, g the gradient reaching the normalised output.
/// Training: dx = gamma*inv * (g - mean(g) - xhat * mean(g*xhat)); evaluation: the statistics are
/// constants and dx = gamma*inv * g.
@inline(__always)
func channelInputGradient(gamma: Float, mean mu: Float, invStd inv: Float, sumDy: Float, sumDyXhat: Float,
                          count m: Int, training: Bool) -> (a: Float, b: Float, c: Float) {
    let a = gamma * inv
    guard training else { return (a, 0, 0) }
    let meanDy = sumDy / Float(m), meanDyXhat = sumDyXhat / Float(m)
    return (a, -a * meanDyXhat * inv, -a * meanDy + a * meanDyXhat * inv * mu)
}

/// Mean and biased variance of one channel (two passes: the mean, then squared deviations,
/// which keeps float32 precision where sum-of-squares would cancel).
@inline(__always)
func channelMoments(_ x: UnsafePointer<Float>, n: Int, c: Int, s: Int, channel ch: Int) -> (Float, Float) {
    var sum: Double = 0
    for i in 0..<n { sum += Double(Vector.sum(x + (i * c + ch) * s, s)) }
    let mu = Float(sum / Double(n * s))
    var sq: Double = 0
    for i in 0..<n { sq += Double(Vector.sumSquaredDeviations(x + (i * c + ch) * s, s, mean: mu)) }
    return (mu, Float(sq / Double(n * s)))
}

/// Per-channel batch mean and biased variance of [N, C] or [N, C, H, W], differentiable:
/// the data-free losses match these against a teacher's running statistics.
public func batchMoments(_ x: Tensor) -> (mean: Tensor, variance: Tensor) {
    precondition(x.rank == 2 || x.rank == 4, "batchMoments: expects [N,C] or [N,C,H,W], got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], s = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
    let m = Float(n * s)
    let mean = Tensor(uninitialized: [c]), variance = Tensor(uninitialized: [c])
    for ch in 0..<c {
        (mean.data[ch], variance.data[ch]) = channelMoments(x.data, n: n, c: c, s: s, channel: ch)
    }
    if Tape.needsGrad(x) {
        // Two outputs, two entries: d/dx of the mean and of the variance are separable.
        Tape.record(mean) { dmean in
            guard let (dx, acc) = gradTarget(x) else { return }
            for ch in 0..<c {
                let g = dmean[ch] / m
                for i in 0..<n { let o = dx + (i * c + ch) * s; for k in 0..<s { put(o, k, g, acc) } }
            }
        }
        Tape.record(variance) { dvar in
            guard let (dx, acc) = gradTarget(x) else { return }
            for ch in 0..<c {
                let mu = mean.data[ch], g = 2 * dvar[ch] / m
                for i in 0..<n {
                    let p = x.data + (i * c + ch) * s, o = dx + (i * c + ch) * s
                    for k in 0..<s { put(o, k, g * (p[k] - mu), acc) }
                }
            }
        }
    }
    return (mean, variance)
}
