import Foundation

/// Row-wise log-softmax of logits [N, K] / temperature into `out` (max-subtracted, so no overflow).
@inline(__always)
func logSoftmaxRows(_ z: UnsafePointer<Float>, rows: Int, cols: Int, temperature: Float = 1,
                    into out: UnsafeMutablePointer<Float>) {
    let invT = 1 / temperature
    for r in 0..<rows {
        let zr = z + r * cols, o = out + r * cols
        var mx = -Float.infinity
        for j in 0..<cols { mx = max(mx, zr[j] * invT) }
        var s: Float = 0
        for j in 0..<cols { s += Foundation.exp(zr[j] * invT - mx) }
        let lse = mx + Foundation.log(s)
        for j in 0..<cols { o[j] = zr[j] * invT - lse }
    }
}

/// Softmax of logits [N, K] (no gradient): predictions for evaluation and distillation targets.
public func softmax(_ logits: Tensor, temperature: Float = 1) -> Tensor {
    precondition(logits.rank == 2, "softmax: expects [N, K], got \(logits.shape)")
    let y = Tensor(uninitialized: logits.shape)
    logSoftmaxRows(logits.data, rows: logits.shape[0], cols: logits.shape[1], temperature: temperature, into: y.data)
    for i in 0..<y.count { y.data[i] = Foundation.exp(y.data[i]) }
    return y
}

/// Mean cross-entropy of logits [N, K] against integer labels, with optional label smoothing
/// (target = (1 - eps) * one-hot + eps / K, as in PyTorch).
public func crossEntropy(_ logits: Tensor, labels: [Int], labelSmoothing eps: Float = 0) -> Tensor {
    precondition(logits.rank == 2 && labels.count == logits.shape[0],
                 "crossEntropy: \(labels.count) labels for logits \(logits.shape)")
    let n = logits.shape[0], k = logits.shape[1]
    let logp = Tensor(uninitialized: logits.shape)
    logSoftmaxRows(logits.data, rows: n, cols: k, into: logp.data)
    var total: Double = 0
    for r in 0..<n {
        let label = labels[r]
        precondition(label >= 0 && label < k, "crossEntropy: label \(label) outside 0..<\(k)")
        let lp = logp.data + r * k
        var rowSum: Float = 0
        for j in 0..<k { rowSum += lp[j] }
        total -= Double((1 - eps) * lp[label] + eps / Float(k) * rowSum)
    }
    let y = Tensor([Float(total / Double(n))], shape: [1])
    if Tape.needsGrad(logits) {
        Tape.record(y) { dy in
            guard let (d, acc) = gradTarget(logits) else { return }
            let g = dy[0] / Float(n), off = eps / Float(k)
            for r in 0..<n {
                let lp = logp.data + r * k
                for j in 0..<k {
                    let target = off + (j == labels[r] ? 1 - eps : 0)
                    put(d, r * k + j, g * (Foundation.exp(lp[j]) - target), acc)
                }
            }
        }
    }
    return y
}

/// Mean over rows of -sum_j t_j log softmax(z/T)_j, for soft targets t [N, K] (rows sum to 1):
/// codistillation's term towards the peers' mean prediction at temperature T. Gradients reach
/// both the logits (including the 1/T of the softened logits) and, if it requires them, the targets.
public func softTargetCrossEntropy(_ logits: Tensor, targets: Tensor, temperature t: Float = 1) -> Tensor {
    precondition(logits.rank == 2 && logits.shape == targets.shape,
                 "softTargetCrossEntropy: logits \(logits.shape) vs targets \(targets.shape)")
    let n = logits.shape[0], k = logits.shape[1]
    let logp = Tensor(uninitialized: logits.shape)
    logSoftmaxRows(logits.data, rows: n, cols: k, temperature: t, into: logp.data)
    var total: Double = 0
    for i in 0..<logits.count { total -= Double(targets.data[i] * logp.data[i]) }
    let y = Tensor([Float(total / Double(n))], shape: [1])
    if Tape.needsGrad(logits, targets) {
        Tape.record(y) { dy in
            let g = dy[0] / Float(n)
            if let (d, acc) = gradTarget(logits) {
                let gz = g / t
                for r in 0..<n {
                    var tsum: Float = 0
                    for j in 0..<k { tsum += targets.data[r * k + j] }
                    for j in 0..<k {
                        let i = r * k + j
                        put(d, i, gz * (Foundation.exp(logp.data[i]) * tsum - targets.data[i]), acc)
                    }
                }
            }
            if let (d, acc) = gradTarget(targets) {
                for i in 0..<targets.count { put(d, i, -g * logp.data[i], acc) }
            }
        }
    }
    return y
}

/// KL(softmax(teacher/T) || softmax(student/T)) * T^2, mean over rows (Hinton et al.; the T^2
/// keeps gradient magnitudes independent of T). Differentiable in both arguments: the
/// data-free generator's adversarial loss back-propagates through the teacher side too.
/// `rowWeights` scale each row's term (FastDFKD's adversarial loss counts only the samples on
/// which student and teacher agree); the mean still divides by the number of rows.
public func klDivergence(student: Tensor, teacher: Tensor, temperature t: Float = 1, rowWeights: [Float]? = nil) -> Tensor {
    precondition(student.rank == 2 && student.shape == teacher.shape,
                 "klDivergence: student \(student.shape) vs teacher \(teacher.shape)")
    precondition(rowWeights == nil || rowWeights!.count == student.shape[0],
                 "klDivergence: \(rowWeights?.count ?? 0) row weights for \(student.shape[0]) rows")
    let weights = rowWeights ?? [Float](repeating: 1, count: student.shape[0])
    let n = student.shape[0], k = student.shape[1]
    let logq = Tensor(uninitialized: student.shape), logp = Tensor(uninitialized: teacher.shape)
    logSoftmaxRows(student.data, rows: n, cols: k, temperature: t, into: logq.data)
    logSoftmaxRows(teacher.data, rows: n, cols: k, temperature: t, into: logp.data)
    var rowKL = [Float](repeating: 0, count: n)
    var total: Double = 0
    for r in 0..<n {
        var s: Float = 0
        for j in 0..<k {
            let i = r * k + j
            s += Foundation.exp(logp.data[i]) * (logp.data[i] - logq.data[i])
        }
        rowKL[r] = s
        total += Double(weights[r] * s)
    }
    let y = Tensor([Float(total / Double(n)) * t * t], shape: [1])
    if Tape.needsGrad(student, teacher) {
        Tape.record(y) { dy in
            let g = dy[0] * t / Float(n)
            if let (d, acc) = gradTarget(student) {
                for r in 0..<n {
                    for j in 0..<k {
                        let i = r * k + j
                        put(d, i, g * weights[r] * (Foundation.exp(logq.data[i]) - Foundation.exp(logp.data[i])), acc)
                    }
                }
            }
            if let (d, acc) = gradTarget(teacher) {
                for r in 0..<n {
                    for j in 0..<k {
                        let i = r * k + j
                        let p = Foundation.exp(logp.data[i])
                        put(d, i, g * weights[r] * p * (logp.data[i] - logq.data[i] - rowKL[r]), acc)
                    }
                }
            }
        }
    }
    return y
}

/// Mean squared error over all elements; gradients to both sides.
public func mseLoss(_ a: Tensor, _ b: Tensor) -> Tensor {
    pairwiseLoss(a, b, name: "mseLoss", value: { d in d * d }, derivative: { d in 2 * d })
}

/// Mean absolute error over all elements; gradients to both sides (sign, 0 at 0).
public func l1Loss(_ a: Tensor, _ b: Tensor) -> Tensor {
    pairwiseLoss(a, b, name: "l1Loss", value: { d in abs(d) },
                 derivative: { d in d > 0 ? 1 : (d < 0 ? -1 : 0) })
}

@inline(__always)
func pairwiseLoss(_ a: Tensor, _ b: Tensor, name: String, value: (Float) -> Float,
                  derivative: @escaping (Float) -> Float) -> Tensor {
    precondition(a.shape == b.shape, "\(name): shapes \(a.shape) and \(b.shape) differ")
    let n = a.count
    var total: Double = 0
    for i in 0..<n { total += Double(value(a.data[i] - b.data[i])) }
    let y = Tensor([Float(total / Double(n))], shape: [1])
    if Tape.needsGrad(a, b) {
        Tape.record(y) { dy in
            let g = dy[0] / Float(n)
            if let (d, acc) = gradTarget(a) {
                for i in 0..<n { put(d, i, g * derivative(a.data[i] - b.data[i]), acc) }
            }
            if let (d, acc) = gradTarget(b) {
                for i in 0..<n { put(d, i, -g * derivative(a.data[i] - b.data[i]), acc) }
            }
        }
    }
    return y
}
