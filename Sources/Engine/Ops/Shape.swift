/// Same data, another shape (a view: no copy). One dimension may be -1.
public func reshape(_ x: Tensor, _ shape: [Int]) -> Tensor {
    var shape = shape
    if let i = shape.firstIndex(of: -1) {
        let known = shape.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
        precondition(known > 0 && x.count % known == 0, "reshape: cannot infer -1 in \(shape) for \(x.shape)")
        shape[i] = x.count / known
    }
    precondition(shape.reduce(1, *) == x.count, "reshape: \(x.shape) has \(x.count) values, \(shape) needs \(shape.reduce(1, *))")
    let y = x.viewSharingData(shape: shape)
    if Tape.needsGrad(x) {
        let n = x.count
        Tape.record(y) { dy in
            guard let (dx, acc) = gradTarget(x) else { return }
            if acc { for i in 0..<n { dx[i] += dy[i] } } else { dx.update(from: dy, count: n) }
        }
    }
    return y
}

/// [N, ...] -> [N, product of the rest].
public func flatten(_ x: Tensor) -> Tensor {
    reshape(x, [x.shape[0], x.count / max(x.shape[0], 1)])
}

/// Nearest-neighbour upsampling by 2 in both spatial axes: [N, C, H, W] -> [N, C, 2H, 2W].
public func upsampleNearest2x(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4, "upsampleNearest2x: expects [N,C,H,W], got \(x.shape)")
    let planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3]
    let y = Tensor(uninitialized: [x.shape[0], x.shape[1], 2 * h, 2 * w])
    for p in 0..<planes {
        let xp = x.data + p * h * w, yp = y.data + p * 4 * h * w
        for i in 0..<h {
            let r0 = yp + (2 * i) * 2 * w, r1 = r0 + 2 * w
            for j in 0..<w { let v = xp[i * w + j]; r0[2 * j] = v; r0[2 * j + 1] = v }
            r1.update(from: r0, count: 2 * w)
        }
    }
    if Tape.needsGrad(x) {
        Tape.record(y) { dy in
            guard let (dx, acc) = gradTarget(x) else { return }
            for p in 0..<planes {
                let g = dy + p * 4 * h * w, d = dx + p * h * w
                for i in 0..<h {
                    let r0 = g + (2 * i) * 2 * w, r1 = r0 + 2 * w
                    for j in 0..<w {
                        put(d, i * w + j, r0[2 * j] + r0[2 * j + 1] + r1[2 * j] + r1[2 * j + 1], acc)
                    }
                }
            }
        }
    }
    return y
}
