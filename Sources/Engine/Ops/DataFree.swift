import Foundation

// Ops the data-free synthesis needs (DeepInversion, FastDFKD): the BatchNorm-statistics distance,
// and differentiable versions of the augmentations applied to synthetic images before the
// teacher sees them, so the generator (or the pixels) receive gradients through them.

/// ||x - target||_2 as a one-element tensor (the distance of a batch statistic to a teacher's
/// running statistic in DeepInversion's feature loss; a norm, not its square, as there).
/// The gradient (x - target) / ||x - target|| is taken as 0 at distance 0.
public func distanceL2(_ x: Tensor, to target: [Float]) -> Tensor {
    precondition(x.count == target.count, "distanceL2: \(x.count) values vs a target of \(target.count)")
    var sq: Double = 0
    for i in 0..<x.count { let d = Double(x.data[i] - target[i]); sq += d * d }
    let norm = Float(sq.squareRoot())
    let y = Tensor([norm], shape: [1])
    if Tape.needsGrad(x) {
        Tape.record(y) { dy in
            guard let (d, acc) = gradTarget(x) else { return }
            let g = norm > 0 ? dy[0] / norm : 0
            for i in 0..<x.count { put(d, i, g * (x.data[i] - target[i]), acc) }
        }
    }
    return y
}

/// Shifts every sample of [N, C, H, W] by (dy, dx) pixels, filling with zeros: a random crop
/// after zero padding by p is a shift by (p - top, p - left).
public func translate(_ x: Tensor, shifts: [(dy: Int, dx: Int)]) -> Tensor {
    precondition(x.rank == 4 && shifts.count == x.shape[0], "translate: \(shifts.count) shifts for input \(x.shape)")
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    let y = Tensor(uninitialized: x.shape)
    // y[s, ch, i, j] = x[s, ch, i - dy, j - dx] where that lies inside.
    func rows(_ s: Int, _ body: (_ yRow: Int, _ xRow: Int, _ j0: Int, _ j1: Int, _ dx: Int) -> Void) {
        let (dy, dx) = shifts[s]
        let j0 = max(0, dx), j1 = min(w, w + dx)
        for i in 0..<h {
            let src = i - dy
            if src >= 0 && src < h && j0 < j1 { body(i, src, j0, j1, dx) } else { body(i, -1, 0, 0, dx) }
        }
    }
    for s in 0..<n {
        for ch in 0..<c {
            let plane = (s * c + ch) * h * w
            rows(s) { i, src, j0, j1, dx in
                let out = y.data + plane + i * w
                out.update(repeating: 0, count: w)
                if src >= 0 { for j in j0..<j1 { out[j] = x.data[plane + src * w + j - dx] } }
            }
        }
    }
    if Tape.needsGrad(x) {
        Tape.record(y) { dyGrad in
            guard let (d, acc) = gradTarget(x) else { return }
            if !acc { d.update(repeating: 0, count: x.count) }
            for s in 0..<n {
                for ch in 0..<c {
                    let plane = (s * c + ch) * h * w
                    rows(s) { i, src, j0, j1, dx in
                        if src >= 0 { for j in j0..<j1 { d[plane + src * w + j - dx] += dyGrad[plane + i * w + j] } }
                    }
                }
            }
        }
    }
    return y
}

/// Mirrors the samples of [N, C, H, W] whose flag is set, left to right.
public func flipHorizontal(_ x: Tensor, flips: [Bool]) -> Tensor {
    precondition(x.rank == 4 && flips.count == x.shape[0], "flipHorizontal: \(flips.count) flags for input \(x.shape)")
    let n = x.shape[0], rowsPerSample = x.shape[1] * x.shape[2], w = x.shape[3]
    @inline(__always) func apply(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, accumulate: Bool) {
        for s in 0..<n {
            for r in 0..<rowsPerSample {
                let o = (s * rowsPerSample + r) * w
                for j in 0..<w {
                    let v = src[o + (flips[s] ? w - 1 - j : j)]
                    if accumulate { dst[o + j] += v } else { dst[o + j] = v }
                }
            }
        }
    }
    let y = Tensor(uninitialized: x.shape)
    apply(x.data, y.data, accumulate: false)
    if Tape.needsGrad(x) {
        Tape.record(y) { dy in
            guard let (d, acc) = gradTarget(x) else { return }
            apply(dy, d, accumulate: acc)  // a flip is its own inverse and its own adjoint
        }
    }
    return y
}

/// y[:, c] = x[:, c] * scale[c] + shift[c] for [N, C] or [N, C, H, W] (input normalisation
/// inside the graph, so gradients reach the un-normalised synthetic images).
public func channelAffine(_ x: Tensor, scale: [Float], shift: [Float]) -> Tensor {
    precondition(x.rank >= 2 && scale.count == x.shape[1] && shift.count == x.shape[1],
                 "channelAffine: \(scale.count) scales and \(shift.count) shifts for input \(x.shape)")
    let n = x.shape[0], c = x.shape[1], s = x.count / (n * c)
    let y = Tensor(uninitialized: x.shape)
    for i in 0..<n {
        for ch in 0..<c {
            let o = (i * c + ch) * s
            Vector.affine(x.data + o, y.data + o, s, scale: scale[ch], shift: shift[ch], relu: false)
        }
    }
    if Tape.needsGrad(x) {
        Tape.record(y) { dy in
            guard let (d, acc) = gradTarget(x) else { return }
            for i in 0..<n {
                for ch in 0..<c {
                    let o = (i * c + ch) * s
                    Vector.affineInto(dy + o, d + o, s, scale: scale[ch], shift: 0, accumulate: acc)
                }
            }
        }
    }
    return y
}
