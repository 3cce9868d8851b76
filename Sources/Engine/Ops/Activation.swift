import Foundation

/// Elementwise activations. Each backward reads only the output, so the input need not be kept.
public func relu(_ x: Tensor) -> Tensor {
    unary(x, forward: { max(0, $0) }, derivativeFromOutput: { y in y > 0 ? 1 : 0 })
}

public func leakyReLU(_ x: Tensor, slope: Float = 0.2) -> Tensor {
    precondition(slope > 0, "leakyReLU: slope must be positive (the backward reads the output's sign)")
    return unary(x, forward: { $0 > 0 ? $0 : slope * $0 }, derivativeFromOutput: { y in y > 0 ? 1 : slope })
}

public func tanh(_ x: Tensor) -> Tensor {
    unary(x, forward: { Foundation.tanh($0) }, derivativeFromOutput: { y in 1 - y * y })
}

public func sigmoid(_ x: Tensor) -> Tensor {
    unary(x, forward: { 1 / (1 + Foundation.exp(-$0)) }, derivativeFromOutput: { y in y * (1 - y) })
}

@inline(__always)
func unary(_ x: Tensor, forward f: (Float) -> Float,
           derivativeFromOutput df: @escaping (Float) -> Float) -> Tensor {
    let y = Tensor(uninitialized: x.shape)
    let n = x.count, xp = x.data, yp = y.data
    for i in 0..<n { yp[i] = f(xp[i]) }
    if Tape.needsGrad(x) {
        Tape.record(y) { dy in
            guard let (dx, acc) = gradTarget(x) else { return }
            let yp = y.data
            if acc { for i in 0..<n { dx[i] += dy[i] * df(yp[i]) } }
            else { for i in 0..<n { dx[i] = dy[i] * df(yp[i]) } }
        }
    }
    return y
}
