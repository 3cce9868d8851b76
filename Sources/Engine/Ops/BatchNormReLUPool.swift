/// maxPool2d(relu(batchNorm(x)), kernel 2, stride 2) in one pass over x, the block every
/// conv stage of `cnn` ends with.
///
/// Why fuse: unfused, the full-size normalised activation is written, read by the pool, and in
/// backward the pool scatters into a zero-filled full-size gradient that batch norm reads again.
/// Fused, the forward writes only the pooled output (a quarter of the size) plus one byte per
/// window saying which of its four inputs won (or that the ReLU zeroed it), and the backward
/// computes batch norm's sums from the winners alone, then writes dx in one pass. On two ranks
/// sharing one memory system that traffic, not arithmetic, is what slows each rank down.
///
/// Identical results to the unfused chain: ties go to the first element in row-major order and
/// a window whose maximum is <= 0 passes no gradient (ReLU's derivative at 0 is 0 here too).
/// Odd H or W drop the last row or column from pooling, as PyTorch does; batch norm still
/// normalises (and differentiates through) every element.
public func batchNormReLUMaxPool2x2(_ x: Tensor, weight: Tensor?, bias: Tensor?,
                                   runningMean: Tensor?, runningVar: Tensor?,
                                   training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) -> Tensor {
    precondition(x.rank == 4, "batchNormReLUMaxPool2x2: expects [N,C,H,W], got \(x.shape)")
    let n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    let ho = h / 2, wo = w / 2, s = h * w, so = ho * wo
    precondition(ho > 0 && wo > 0, "batchNormReLUMaxPool2x2: input \(x.shape) smaller than the 2x2 window")
    let m = n * s
    precondition(!training || m > 1, "batchNormReLUMaxPool2x2: training needs more than one value per channel, got \(x.shape)")
    let y = Tensor(uninitialized: [n, c, ho, wo])
    let stats = Scratch(2 * c)
    let mean = stats.pointer, invStd = stats.pointer + c
    let record = Tape.needsGrad(x, weight, bias)
    // One byte per output: which input of the window won (0...3), or `dead` when the ReLU zeroed it.
    let winners: Scratch? = record ? Scratch((y.count + 3) / 4) : nil
    let winnerBytes = winners.map { UnsafeMutableRawPointer($0.pointer).assumingMemoryBound(to: UInt8.self) }

    for ch in 0..<c {
        let (mu, inv, scale, shift) = channelNormalization(x, n: n, c: c, s: s, channel: ch, weight: weight, bias: bias,
                                                           runningMean: runningMean, runningVar: runningVar,
                                                           training: training, momentum: momentum, eps: eps)
        mean[ch] = mu; invStd[ch] = inv
        for i in 0..<n {
            let plane = i * c + ch
            poolPlaneForward(x.data + plane * s, y.data + plane * so, winnerBytes.map { $0 + plane * so },
                             h: h, w: w, scale: scale, shift: shift)
        }
    }

    guard record, let winnerBytes else { return y }
    Tape.record(y) { dy in
        _ = winners  // the closure owns the winner bytes until backward has run
        let mean = stats.pointer, invStd = stats.pointer + c
        let dxT = gradTarget(x), dwT = gradTarget(weight), dbT = gradTarget(bias)
        for ch in 0..<c {
            let mu = mean[ch], inv = invStd[ch]
            let gamma = weight?.data[ch] ?? 1
            // The gradient reaching batch norm's output is dy at each window's winner, 0 elsewhere.
            var sumDy: Float = 0, sumDyX: Float = 0
            for i in 0..<n {
                let plane = i * c + ch
                let (a, b) = poolPlaneWinnerSums(dy + plane * so, x.data + plane * s, winnerBytes + plane * so,
                                                 h: h, w: w)
                sumDy += a; sumDyX += b
            }
            let sumDyXhat = inv * (sumDyX - mu * sumDy)
            if let (dw, acc) = dwT { put(dw, ch, sumDyXhat, acc) }
            if let (db, acc) = dbT { put(db, ch, sumDy, acc) }
            guard let (dx, acc) = dxT else { continue }
            // As in batchNorm, with g nonzero only at the winners.
            let (a, b, cc) = channelInputGradient(gamma: gamma, mean: mu, invStd: inv, sumDy: sumDy,
                                                  sumDyXhat: sumDyXhat, count: m, training: training)
            for i in 0..<n {
                let plane = i * c + ch
                let xs = x.data + plane * s, dxs = dx + plane * s
                poolPlaneInputGradient(dy + plane * so, xs, winnerBytes + plane * so, dxs,
                                       h: h, w: w, a: a, b: b, c: cc, accumulate: acc)
            }
        }
    }
    return y
}

/// The winner code for a window whose maximum the ReLU clamps to 0: no gradient flows.
private let dead: UInt8 = 4

/// Pools one [h, w] plane: y[oh, ow] = max(0, max over the window of scale * x + shift).
///
/// Vectorised over 8 (or 4) windows of a row at a time: the even and odd lanes of two input rows
/// are the four window positions, so the arg-max is three compare-and-selects with no branch
/// (a scalar loop mispredicts on every other window of random data). A row whose width is not
/// a multiple of the vector runs its last chunk overlapping the previous one: outputs are pure
/// functions of the inputs, so writing a few of them twice is harmless.
@inline(__always)
private func poolPlaneForward(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                              _ winners: UnsafeMutablePointer<UInt8>?, h: Int, w: Int,
                              scale: Float, shift: Float) {
    let ho = h / 2, wo = w / 2
    for oh in 0..<ho {
        let r0 = x + 2 * oh * w, r1 = r0 + w
        let yr = y + oh * wo
        let wr = winners.map { $0 + oh * wo }
        if wo >= 8 {
            var ow = 0
            while true {
                let at = min(ow, wo - 8)
                poolChunk8(r0 + 2 * at, r1 + 2 * at, yr + at, wr.map { $0 + at }, scale: scale, shift: shift)
                ow += 8
                if ow >= wo { break }
            }
        } else if wo >= 4 {
            var ow = 0
            while true {
                let at = min(ow, wo - 4)
                poolChunk4(r0 + 2 * at, r1 + 2 * at, yr + at, wr.map { $0 + at }, scale: scale, shift: shift)
                ow += 4
                if ow >= wo { break }
            }
        } else {
            for ow in 0..<wo {
                let j = 2 * ow
                let v0 = r0[j] * scale + shift, v1 = r0[j + 1] * scale + shift
                let v2 = r1[j] * scale + shift, v3 = r1[j + 1] * scale + shift
                var best = v0, code: UInt8 = 0
                if v1 > best { best = v1; code = 1 }
                if v2 > best { best = v2; code = 2 }
                if v3 > best { best = v3; code = 3 }
                yr[ow] = max(0, best)
                wr?[ow] = best > 0 ? code : dead
            }
        }
    }
}

@inline(__always)
private func poolChunk8(_ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        _ winners: UnsafeMutablePointer<UInt8>?, scale: Float, shift: Float) {
    let a = UnsafeRawPointer(r0).loadUnaligned(as: SIMD16<Float>.self)
    let b = UnsafeRawPointer(r1).loadUnaligned(as: SIMD16<Float>.self)
    let vs = SIMD8<Float>(repeating: scale), vt = SIMD8<Float>(repeating: shift)
    let v0 = a.evenHalf * vs + vt, v1 = a.oddHalf * vs + vt, v2 = b.evenHalf * vs + vt, v3 = b.oddHalf * vs + vt
    var best = v0, code = SIMD8<Int32>(repeating: 0)
    var m = v1 .> best; best.replace(with: v1, where: m); code.replace(with: 1, where: m)
    m = v2 .> best; best.replace(with: v2, where: m); code.replace(with: 2, where: m)
    m = v3 .> best; best.replace(with: v3, where: m); code.replace(with: 3, where: m)
    let deadMask = best .<= SIMD8<Float>()
    UnsafeMutableRawPointer(y).storeBytes(of: best.replacing(with: 0, where: deadMask), as: SIMD8<Float>.self)
    if let winners {
        code.replace(with: Int32(dead), where: deadMask)
        UnsafeMutableRawPointer(winners).storeBytes(of: SIMD8<UInt8>(truncatingIfNeeded: code), as: SIMD8<UInt8>.self)
    }
}

@inline(__always)
private func poolChunk4(_ r0: UnsafePointer<Float>, _ r1: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                        _ winners: UnsafeMutablePointer<UInt8>?, scale: Float, shift: Float) {
    let a = UnsafeRawPointer(r0).loadUnaligned(as: SIMD8<Float>.self)
    let b = UnsafeRawPointer(r1).loadUnaligned(as: SIMD8<Float>.self)
    let vs = SIMD4<Float>(repeating: scale), vt = SIMD4<Float>(repeating: shift)
    let v0 = a.evenHalf * vs + vt, v1 = a.oddHalf * vs + vt, v2 = b.evenHalf * vs + vt, v3 = b.oddHalf * vs + vt
    var best = v0, code = SIMD4<Int32>(repeating: 0)
    var m = v1 .> best; best.replace(with: v1, where: m); code.replace(with: 1, where: m)
    m = v2 .> best; best.replace(with: v2, where: m); code.replace(with: 2, where: m)
    m = v3 .> best; best.replace(with: v3, where: m); code.replace(with: 3, where: m)
    let deadMask = best .<= SIMD4<Float>()
    UnsafeMutableRawPointer(y).storeBytes(of: best.replacing(with: 0, where: deadMask), as: SIMD4<Float>.self)
    if let winners {
        code.replace(with: Int32(dead), where: deadMask)
        UnsafeMutableRawPointer(winners).storeBytes(of: SIMD4<UInt8>(truncatingIfNeeded: code), as: SIMD4<UInt8>.self)
    }
}

/// Offset of a window's winner from the window's top-left element.
@inline(__always)
private func winnerOffset(_ code: UInt8, w: Int) -> Int {
    Int(code & 1) + Int(code >> 1) * w
}

/// (sum of dy over live windows, sum of dy * x at each live window's winner) for one plane.
/// Vectorised like the forward (a scalar loop here is one long chain of dependent adds waiting
/// on loads); a row's overlapping last chunk masks the windows it already counted.
@inline(__always)
private func poolPlaneWinnerSums(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                 _ winners: UnsafePointer<UInt8>, h: Int, w: Int) -> (Float, Float) {
    let ho = h / 2, wo = w / 2
    var sumDy: Float = 0, sumDyX: Float = 0
    if wo >= 8 {
        var vDy = SIMD8<Float>(), vDyX = SIMD8<Float>()
        let lanes = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7)
        for oh in 0..<ho {
            let r0 = x + 2 * oh * w, r1 = r0 + w
            var ow = 0
            while ow < wo {
                let at = min(ow, wo - 8)
                let a = UnsafeRawPointer(r0 + 2 * at).loadUnaligned(as: SIMD16<Float>.self)
                let b = UnsafeRawPointer(r1 + 2 * at).loadUnaligned(as: SIMD16<Float>.self)
                let code = winnerCodes(winners + oh * wo + at)
                var g = UnsafeRawPointer(dy + oh * wo + at).loadUnaligned(as: SIMD8<Float>.self)
                g.replace(with: 0, where: code .== Float(dead))
                g.replace(with: 0, where: lanes + Float(at) .< Float(ow))
                var xw = a.evenHalf
                xw.replace(with: a.oddHalf, where: code .== 1)
                xw.replace(with: b.evenHalf, where: code .== 2)
                xw.replace(with: b.oddHalf, where: code .== 3)
                vDy += g; vDyX += g * xw
                ow += 8
            }
        }
        sumDy = vDy.sum(); sumDyX = vDyX.sum()
    } else {
        for oh in 0..<ho {
            let base = x + 2 * oh * w
            for ow in 0..<wo {
                let code = winners[oh * wo + ow]
                let g = code == dead ? 0 : dy[oh * wo + ow]
                sumDy += g
                sumDyX += g * base[2 * ow + winnerOffset(code & 3, w: w)]
            }
        }
    }
    return (sumDy, sumDyX)
}

/// dx = b * x + c over one plane, plus scale * dy at each live window's winner.
@inline(__always)
private func poolPlaneInputGradient(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                                    _ winners: UnsafePointer<UInt8>, _ dx: UnsafeMutablePointer<Float>,
                                    h: Int, w: Int, a: Float, b: Float, c: Float, accumulate: Bool) {
    let ho = h / 2, wo = w / 2
    guard wo >= 8, !accumulate else {
        // Accumulating cannot overlap chunks; this path is for gradients someone else wrote first.
        Vector.affineInto(x, dx, h * w, scale: b, shift: c, accumulate: accumulate)
        poolPlaneScatter(dy, winners, dx, h: h, w: w, scale: a)
        return
    }
    let vb = SIMD8<Float>(repeating: b), vc = SIMD8<Float>(repeating: c), va = SIMD8<Float>(repeating: a)
    for oh in 0..<ho {
        let r0 = x + 2 * oh * w, r1 = r0 + w
        let d0 = dx + 2 * oh * w, d1 = d0 + w
        var ow = 0
        while ow < wo {
            let at = min(ow, wo - 8)
            let xa = UnsafeRawPointer(r0 + 2 * at).loadUnaligned(as: SIMD16<Float>.self)
            let xb = UnsafeRawPointer(r1 + 2 * at).loadUnaligned(as: SIMD16<Float>.self)
            let code = winnerCodes(winners + oh * wo + at)
            let g = va * UnsafeRawPointer(dy + oh * wo + at).loadUnaligned(as: SIMD8<Float>.self)
            let zero = SIMD8<Float>()
            let e0 = xa.evenHalf * vb + vc + zero.replacing(with: g, where: code .== 0)
            let o0 = xa.oddHalf * vb + vc + zero.replacing(with: g, where: code .== 1)
            let e1 = xb.evenHalf * vb + vc + zero.replacing(with: g, where: code .== 2)
            let o1 = xb.oddHalf * vb + vc + zero.replacing(with: g, where: code .== 3)
            UnsafeMutableRawPointer(d0 + 2 * at).storeBytes(of: interleave(e0, o0), as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(d1 + 2 * at).storeBytes(of: interleave(e1, o1), as: SIMD16<Float>.self)
            ow += 8
        }
        if w % 2 == 1 {  // the column no window covers
            d0[w - 1] = r0[w - 1] * b + c
            d1[w - 1] = r1[w - 1] * b + c
        }
    }
    if h % 2 == 1 {  // the row no window covers
        Vector.affine(x + (h - 1) * w, dx + (h - 1) * w, w, scale: b, shift: c, relu: false)
    }
}

/// Eight winner codes as floats: Swift lowers float vector compares to single instructions but
/// integer ones lane by lane.
@inline(__always)
private func winnerCodes(_ p: UnsafePointer<UInt8>) -> SIMD8<Float> {
    SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: UnsafeRawPointer(p).loadUnaligned(as: SIMD8<UInt8>.self)))
}

/// (e0, o0, e1, o1, ...): the inverse of evenHalf/oddHalf.
@inline(__always)
private func interleave(_ e: SIMD8<Float>, _ o: SIMD8<Float>) -> SIMD16<Float> {
    SIMD16(e[0], o[0], e[1], o[1], e[2], o[2], e[3], o[3], e[4], o[4], e[5], o[5], e[6], o[6], e[7], o[7])
}

/// dx[winner of each live window] += scale * dy[window] for one plane (branch-free: a dead
/// window adds 0 at its top-left element).
@inline(__always)
private func poolPlaneScatter(_ dy: UnsafePointer<Float>, _ winners: UnsafePointer<UInt8>,
                              _ dx: UnsafeMutablePointer<Float>, h: Int, w: Int, scale: Float) {
    let ho = h / 2, wo = w / 2
    for oh in 0..<ho {
        let base = dx + 2 * oh * w
        for ow in 0..<wo {
            let code = winners[oh * wo + ow]
            let g = code == dead ? 0 : scale * dy[oh * wo + ow]
            base[2 * ow + winnerOffset(code & 3, w: w)] += g
        }
    }
}
