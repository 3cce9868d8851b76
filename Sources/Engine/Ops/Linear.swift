/// y = x W^T + b, with x [N, in], W [out, in] (PyTorch layout), b [out].
public func linear(_ x: Tensor, _ w: Tensor, _ b: Tensor?) -> Tensor {
    precondition(x.rank == 2 && w.rank == 2 && x.shape[1] == w.shape[1],
                 "linear: input \(x.shape) does not match weight \(w.shape)")
    let n = x.shape[0], inF = w.shape[1], outF = w.shape[0]
    let y = Tensor(uninitialized: [n, outF])
    FlopCounter.forwardFLOPs += 2 * n * inF * outF
    if let b {
        precondition(b.count == outF, "linear: bias \(b.shape) for \(outF) outputs")
        for r in 0..<n { (y.data + r * outF).update(from: b.data, count: outF) }
    }
    sgemm(transB: true, m: n, n: outF, k: inF, a: x.data, b: w.data, beta: b == nil ? 0 : 1, c: y.data)

    if Tape.needsGrad(x, w, b) {
        Tape.record(y) { dy in
            if let (dx, acc) = gradTarget(x) {
                sgemm(m: n, n: inF, k: outF, a: dy, b: w.data, beta: beta(acc), c: dx)
            }
            if let (dw, acc) = gradTarget(w) {
                sgemm(transA: true, m: outF, n: inF, k: n, a: dy, b: x.data, beta: beta(acc), c: dw)
            }
            if let (db, acc) = gradTarget(b) {
                sumRows(dy, rows: n, cols: outF, into: db, accumulate: acc)
            }
        }
    }
    return y
}

/// out[j] (+)= sum_r m[r, j]
@inline(__always)
func sumRows(_ m: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>, accumulate: Bool) {
    if !accumulate { out.update(repeating: 0, count: cols) }
    for r in 0..<rows {
        let row = m + r * cols
        for j in 0..<cols { out[j] += row[j] }
    }
}
