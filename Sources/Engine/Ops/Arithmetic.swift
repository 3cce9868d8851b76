/// a + b, same shapes (residual connections, summing loss terms).
public func add(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
    let y = Tensor(uninitialized: a.shape)
    let n = a.count
    for i in 0..<n { y.data[i] = a.data[i] + b.data[i] }
    if Tape.needsGrad(a, b) {
        Tape.record(y) { dy in
            for t in [a, b] {
                guard let (d, acc) = gradTarget(t) else { continue }
                if acc { for i in 0..<n { d[i] += dy[i] } } else { d.update(from: dy, count: n) }
            }
        }
    }
    return y
}

public func + (a: Tensor, b: Tensor) -> Tensor { add(a, b) }

/// s * a for a constant s (loss weights, ramps).
public func scale(_ a: Tensor, _ s: Float) -> Tensor {
    let y = Tensor(uninitialized: a.shape)
    let n = a.count
    for i in 0..<n { y.data[i] = a.data[i] * s }
    if Tape.needsGrad(a) {
        Tape.record(y) { dy in
            guard let (d, acc) = gradTarget(a) else { return }
            for i in 0..<n { put(d, i, dy[i] * s, acc) }
        }
    }
    return y
}

public func * (s: Float, a: Tensor) -> Tensor { scale(a, s) }

/// Sum of all elements, as a one-element tensor.
public func sum(_ a: Tensor) -> Tensor {
    let y = Tensor(uninitialized: [1])
    var acc: Double = 0
    for i in 0..<a.count { acc += Double(a.data[i]) }
    y.data[0] = Float(acc)
    if Tape.needsGrad(a) {
        Tape.record(y) { dy in
            guard let (d, accum) = gradTarget(a) else { return }
            let g = dy[0]
            for i in 0..<a.count { put(d, i, g, accum) }
        }
    }
    return y
}

/// Mean of all elements, as a one-element tensor.
public func mean(_ a: Tensor) -> Tensor { scale(sum(a), 1 / Float(a.count)) }

/// Inverted dropout: in training, zeroes each element with probability p and scales the rest
/// by 1/(1-p); identity in evaluation.
public func dropout(_ x: Tensor, p: Float, training: Bool, rng: inout RandomGenerator) -> Tensor {
    precondition(p >= 0 && p < 1, "dropout: p must be in [0, 1), got \(p)")
    guard training, p > 0 else { return x }
    let n = x.count
    let mask = Tensor(uninitialized: x.shape)
    let keep = 1 / (1 - p)
    for i in 0..<n { mask.data[i] = rng.uniform() < p ? 0 : keep }
    let y = Tensor(uninitialized: x.shape)
    for i in 0..<n { y.data[i] = x.data[i] * mask.data[i] }
    if Tape.needsGrad(x) {
        Tape.record(y) { dy in
            guard let (d, acc) = gradTarget(x) else { return }
            for i in 0..<n { put(d, i, dy[i] * mask.data[i], acc) }
        }
    }
    return y
}
