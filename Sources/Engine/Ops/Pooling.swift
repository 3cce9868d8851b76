/// Max pooling over k x k windows of [N, C, H, W] (padding counts as -infinity).
/// The forward keeps the argmax of each window so backward is a scatter.
public func maxPool2d(_ x: Tensor, kernel k: Int, stride: Int? = nil, padding: Int = 0) -> Tensor {
    precondition(x.rank == 4, "maxPool2d: expects [N,C,H,W], got \(x.shape)")
    let s = stride ?? k
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    let ho = (h + 2 * padding - k) / s + 1, wo = (w + 2 * padding - k) / s + 1
    precondition(ho > 0 && wo > 0, "maxPool2d: window \(k) larger than input \(x.shape)")
    let y = Tensor(uninitialized: [n, c, ho, wo])
    let record = Tape.needsGrad(x)
    var argmax = record ? [Int32](repeating: 0, count: y.count) : []
    if k == 2 && s == 2 && padding == 0 {
        argmax.withUnsafeMutableBufferPointer { am in
            // An empty array may still hand out a base address (the shared empty storage): never write there.
            maxPool2x2(x.data, y.data, record ? am.baseAddress : nil, planes: n * c, h: h, w: w)
        }
    } else {
    argmax.withUnsafeMutableBufferPointer { am in
        for plane in 0..<(n * c) {
            let xp = x.data + plane * h * w, yp = y.data + plane * ho * wo
            for oh in 0..<ho {
                let h0 = oh * s - padding
                for ow in 0..<wo {
                    let w0 = ow * s - padding
                    var best = -Float.infinity, bestIndex = -1
                    for i in max(0, h0)..<min(h, h0 + k) {
                        for j in max(0, w0)..<min(w, w0 + k) {
                            let v = xp[i * w + j]
                            if v > best || bestIndex < 0 { best = v; bestIndex = i * w + j }
                        }
                    }
                    yp[oh * wo + ow] = best
                    if record { am[plane * ho * wo + oh * wo + ow] = Int32(bestIndex) }
                }
            }
        }
    }
    }
    if record {
        Tape.record(y) { dy in
            guard let (dx, acc) = gradTarget(x) else { return }
            if !acc { dx.update(repeating: 0, count: x.count) }
            argmax.withUnsafeBufferPointer { am in
                for plane in 0..<(n * c) {
                    let d = dx + plane * h * w, g = dy + plane * ho * wo
                    for o in 0..<(ho * wo) { d[Int(am[plane * ho * wo + o])] += g[o] }
                }
            }
        }
    }
    return y
}

/// Average pooling over k x k windows, no padding.
public func avgPool2d(_ x: Tensor, kernel k: Int, stride: Int? = nil) -> Tensor {
    precondition(x.rank == 4, "avgPool2d: expects [N,C,H,W], got \(x.shape)")
    let s = stride ?? k
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    let ho = (h - k) / s + 1, wo = (w - k) / s + 1
    precondition(ho > 0 && wo > 0, "avgPool2d: window \(k) larger than input \(x.shape)")
    let y = Tensor(uninitialized: [n, c, ho, wo])
    let inv = 1 / Float(k * k)
    for plane in 0..<(n * c) {
        let xp = x.data + plane * h * w, yp = y.data + plane * ho * wo
        for oh in 0..<ho {
            for ow in 0..<wo {
                var sum: Float = 0
                for i in 0..<k { for j in 0..<k { sum += xp[(oh * s + i) * w + ow * s + j] } }
                yp[oh * wo + ow] = sum * inv
            }
        }
    }
    if Tape.needsGrad(x) {
        Tape.record(y) { dy in
            guard let (dx, acc) = gradTarget(x) else { return }
            if !acc { dx.update(repeating: 0, count: x.count) }
            for plane in 0..<(n * c) {
                let d = dx + plane * h * w, g = dy + plane * ho * wo
                for oh in 0..<ho {
                    for ow in 0..<wo {
                        let v = g[oh * wo + ow] * inv
                        for i in 0..<k { for j in 0..<k { d[(oh * s + i) * w + ow * s + j] += v } }
                    }
                }
            }
        }
    }
    return y
}

/// Mean over the spatial axes: [N, C, H, W] -> [N, C].
public func globalAvgPool(_ x: Tensor) -> Tensor {
    precondition(x.rank == 4, "globalAvgPool: expects [N,C,H,W], got \(x.shape)")
    let planes = x.shape[0] * x.shape[1], hw = x.shape[2] * x.shape[3]
    let y = Tensor(uninitialized: [x.shape[0], x.shape[1]])
    let inv = 1 / Float(hw)
    for p in 0..<planes {
        var sum: Float = 0
        let xp = x.data + p * hw
        for i in 0..<hw { sum += xp[i] }
        y.data[p] = sum * inv
    }
    if Tape.needsGrad(x) {
        Tape.record(y) { dy in
            guard let (dx, acc) = gradTarget(x) else { return }
            for p in 0..<planes {
                let v = dy[p] * inv, d = dx + p * hw
                for i in 0..<hw { put(d, i, v, acc) }
            }
        }
    }
    return y
}

/// The common 2x2/stride-2 case: two input rows at a time, no window bounds to compute.
/// Ties go to the first element in row-major order, as in the general path.
@inline(__always)
func maxPool2x2(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ argmax: UnsafeMutablePointer<Int32>?,
                planes: Int, h: Int, w: Int) {
    let ho = h / 2, wo = w / 2
    for plane in 0..<planes {
        let xp = x + plane * h * w, yp = y + plane * ho * wo
        for oh in 0..<ho {
            let r0 = xp + 2 * oh * w, r1 = r0 + w
            let yr = yp + oh * wo
            if let argmax {
                let ar = argmax + plane * ho * wo + oh * wo
                let base = Int32(2 * oh * w)
                for ow in 0..<wo {
                    let j = 2 * ow
                    var best = r0[j], idx = base + Int32(j)
                    if r0[j + 1] > best { best = r0[j + 1]; idx = base + Int32(j + 1) }
                    if r1[j] > best { best = r1[j]; idx = base + Int32(w + j) }
                    if r1[j + 1] > best { best = r1[j + 1]; idx = base + Int32(w + j + 1) }
                    yr[ow] = best
                    ar[ow] = idx
                }
            } else {
                for ow in 0..<wo {
                    let j = 2 * ow
                    yr[ow] = max(max(r0[j], r0[j + 1]), max(r1[j], r1[j + 1]))
                }
            }
        }
    }
}
