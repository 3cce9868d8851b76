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
    // Per channel: the mean used and 1/sqrt(var + eps).
    var mean = [Float](repeating: 0, count: c)
    var invStd = [Float](repeating: 0, count: c)

    for ch in 0..<c {
        var mu: Float, v: Float
        if training {
            var sum: Double = 0
            for i in 0..<n { let p = x.data + (i * c + ch) * s; for k in 0..<s { sum += Double(p[k]) } }
            mu = Float(sum / Double(m))
            var sq: Double = 0
            for i in 0..<n { let p = x.data + (i * c + ch) * s; for k in 0..<s { let d = p[k] - mu; sq += Double(d * d) } }
            v = Float(sq / Double(m))
            if let rm = runningMean, let rv = runningVar {
                rm.data[ch] = (1 - momentum) * rm.data[ch] + momentum * mu
                rv.data[ch] = (1 - momentum) * rv.data[ch] + momentum * v * Float(m) / Float(m - 1)
            }
        } else {
            guard let rm = runningMean, let rv = runningVar else {
                preconditionFailure("batchNorm: evaluation mode needs running statistics")
            }
            mu = rm.data[ch]; v = rv.data[ch]
        }
        let inv = 1 / (v + eps).squareRoot()
        mean[ch] = mu; invStd[ch] = inv
        let scale = (weight?.data[ch] ?? 1) * inv
        let shift = (bias?.data[ch] ?? 0) - mu * scale
        for i in 0..<n {
            let p = x.data + (i * c + ch) * s, q = y.data + (i * c + ch) * s
            if fusedReLU {
                for k in 0..<s { q[k] = max(0, p[k] * scale + shift) }
            } else {
                for k in 0..<s { q[k] = p[k] * scale + shift }
            }
        }
    }

    if Tape.needsGrad(x, weight, bias) {
        Tape.record(y) { dy in
            let dxT = gradTarget(x), dwT = gradTarget(weight), dbT = gradTarget(bias)
            for ch in 0..<c {
                let mu = mean[ch], inv = invStd[ch]
                let gamma = weight?.data[ch] ?? 1
                // Sums of dy and dy * xhat over the channel, with dy masked by the fused ReLU.
                var sumDy: Float = 0, sumDyXhat: Float = 0
                for i in 0..<n {
                    let p = x.data + (i * c + ch) * s, q = y.data + (i * c + ch) * s, d = dy + (i * c + ch) * s
                    for k in 0..<s {
                        let g = (fusedReLU && q[k] <= 0) ? 0 : d[k]
                        sumDy += g
                        sumDyXhat += g * (p[k] - mu) * inv
                    }
                }
                if let (dw, acc) = dwT { put(dw, ch, sumDyXhat, acc) }
                if let (db, acc) = dbT { put(db, ch, sumDy, acc) }
                if let (dx, acc) = dxT {
                    if training {
                        // dx = gamma*inv/m * (m*dy - sum(dy) - xhat*sum(dy*xhat))
                        let k1 = gamma * inv, meanDy = sumDy / Float(m), meanDyXhat = sumDyXhat / Float(m)
                        for i in 0..<n {
                            let base = (i * c + ch) * s
                            let p = x.data + base, q = y.data + base, d = dy + base, o = dx + base
                            for k in 0..<s {
                                let g = (fusedReLU && q[k] <= 0) ? 0 : d[k]
                                let xhat = (p[k] - mu) * inv
                                put(o, k, k1 * (g - meanDy - xhat * meanDyXhat), acc)
                            }
                        }
                    } else {
                        let k1 = gamma * inv
                        for i in 0..<n {
                            let base = (i * c + ch) * s
                            let q = y.data + base, d = dy + base, o = dx + base
                            for k in 0..<s {
                                let g = (fusedReLU && q[k] <= 0) ? 0 : d[k]
                                put(o, k, k1 * g, acc)
                            }
                        }
                    }
                }
            }
        }
    }
    return y
}

/// Per-channel batch mean and biased variance of [N, C] or [N, C, H, W], differentiable:
/// the data-free losses match these against a teacher's running statistics.
public func batchMoments(_ x: Tensor) -> (mean: Tensor, variance: Tensor) {
    precondition(x.rank == 2 || x.rank == 4, "batchMoments: expects [N,C] or [N,C,H,W], got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], s = x.rank == 4 ? x.shape[2] * x.shape[3] : 1
    let m = Float(n * s)
    let mean = Tensor(uninitialized: [c]), variance = Tensor(uninitialized: [c])
    for ch in 0..<c {
        var sum: Double = 0
        for i in 0..<n { let p = x.data + (i * c + ch) * s; for k in 0..<s { sum += Double(p[k]) } }
        let mu = Float(sum / Double(m))
        var sq: Double = 0
        for i in 0..<n { let p = x.data + (i * c + ch) * s; for k in 0..<s { let d = p[k] - mu; sq += Double(d * d) } }
        mean.data[ch] = mu
        variance.data[ch] = Float(sq / Double(m))
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
