/// Stride-1 convolution (3x3 "same" and friends), lowered to one GEMM per sample over a
/// *padded-width* column matrix.
///
/// Why: the plain im2col writes kh*kw rows per input channel, each made of Ho short pieces
/// (14 floats for a 14x14 map) with border logic: thousands of tiny copies per sample, 15-20%
/// of a `cnn` step. With stride 1, if the output is computed at every column of the zero-padded
/// input (width Wp = W + 2p instead of Wo), column-matrix row (c, i, j) is one contiguous slice
/// of the padded channel starting at i*Wp + j: one memcpy of Ho*Wp floats. The kw-1 extra output
/// columns per row are garbage; they are dropped when the result is copied into y, and their
/// gradients are held at zero so they contribute nothing to dW or dx. Cost: the GEMMs grow by
/// Wp/Wo (16/14 for 14x14 maps), far less than the copies saved.
///
/// The helpers' index arithmetic wraps (&+, &*): every index is bounded by the geometry, whose
/// sizes conv2d checked, and -O's overflow checks in these per-row loops showed in callgrind.
///
/// Layout: the padded input of one sample is C planes of Hp x Wp, plus kw floats of slack
/// (a row slice of the last channel runs up to kw-1 floats past its plane; those floats only feed
/// garbage columns). Everything per sample stays in L2.
struct PaddedWidthConv {
    let g: ConvGeometry
    let hp, wp, plane, paddedCount, ckk, wideCount: Int

    init(_ g: ConvGeometry) {
        precondition(g.stride == 1)
        self.g = g
        hp = g.h + 2 * g.padding
        wp = g.w + 2 * g.padding
        plane = hp * wp
        paddedCount = g.c * plane + g.kw
        ckk = g.c * g.kh * g.kw
        wideCount = g.ho * wp
    }

    /// Copies sample `x` ([C, H, W]) into the interior of `padded`, whose border must already be zero.
    @inline(__always)
    func fillInterior(_ x: UnsafePointer<Float>, _ padded: UnsafeMutablePointer<Float>) {
        let p = g.padding
        for c in 0..<g.c {
            let src = x + c &* g.h &* g.w, dst = padded + (c &* plane &+ p &* wp &+ p)
            for r in 0..<g.h { (dst + r &* wp).update(from: src + r &* g.w, count: g.w) }
        }
    }

    /// Column matrix [C*kh*kw, Ho*Wp] from a padded sample: one contiguous slice per row.
    @inline(__always)
    func columns(_ padded: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>) {
        var row = 0
        for c in 0..<g.c {
            for i in 0..<g.kh {
                for j in 0..<g.kw {
                    (col + row &* wideCount).update(from: padded + (c &* plane &+ i &* wp &+ j), count: wideCount)
                    row &+= 1
                }
            }
        }
    }

    /// y[o, oh, ow] = wide[o, oh*Wp + ow] (+ bias[o]) for the Wo valid columns.
    @inline(__always)
    func compact(_ wide: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?) {
        for o in 0..<g.o {
            let b = bias?[o] ?? 0
            for oh in 0..<g.ho {
                let src = wide + (o &* wideCount &+ oh &* wp), dst = y + (o &* g.ho &+ oh) &* g.wo
                if bias != nil {
                    for ow in 0..<g.wo { dst[ow] = src[ow] + b }
                } else {
                    dst.update(from: src, count: g.wo)
                }
            }
        }
    }

    /// The gradient in wide layout; the garbage columns must already be zero.
    @inline(__always)
    func widen(_ dy: UnsafePointer<Float>, _ wide: UnsafeMutablePointer<Float>) {
        for o in 0..<g.o {
            for oh in 0..<g.ho {
                (wide + (o &* wideCount &+ oh &* wp)).update(from: dy + (o &* g.ho &+ oh) &* g.wo, count: g.wo)
            }
        }
    }

    /// The adjoint of `columns`: dPadded[c, i*Wp + j + q] += dcol[(c, i, j), q], starting from zero.
    @inline(__always)
    func accumulateColumns(_ dcol: UnsafePointer<Float>, _ dPadded: UnsafeMutablePointer<Float>) {
        dPadded.update(repeating: 0, count: paddedCount)
        var row = 0
        for c in 0..<g.c {
            for i in 0..<g.kh {
                for j in 0..<g.kw {
                    Vector.addInPlace(dcol + row &* wideCount, dPadded + (c &* plane &+ i &* wp &+ j), wideCount)
                    row &+= 1
                }
            }
        }
    }

    /// dx (=/+=) the interior of dPadded.
    @inline(__always)
    func extractInterior(_ dPadded: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let p = g.padding
        for c in 0..<g.c {
            let src = dPadded + (c &* plane &+ p &* wp &+ p), dst = dx + c &* g.h &* g.w
            for r in 0..<g.h {
                if accumulate {
                    Vector.addInPlace(src + r &* wp, dst + r &* g.w, g.w)
                } else {
                    (dst + r &* g.w).update(from: src + r &* wp, count: g.w)
                }
            }
        }
    }
}

/// conv2d for stride 1 (see PaddedWidthConv).
func conv2dStride1(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ g: ConvGeometry) -> Tensor {
    let pw = PaddedWidthConv(g)
    let y = Tensor(uninitialized: [g.n, g.o, g.ho, g.wo])
    let padded = Scratch(pw.paddedCount), col = Scratch(pw.ckk * pw.wideCount), wide = Scratch(g.o * pw.wideCount)
    padded.pointer.update(repeating: 0, count: pw.paddedCount)
    for s in 0..<g.n {
        pw.fillInterior(x.data + s * g.c * g.h * g.w, padded.pointer)
        pw.columns(padded.pointer, col.pointer)
        sgemm(m: g.o, n: pw.wideCount, k: pw.ckk, a: w.data, b: col.pointer, beta: 0, c: wide.pointer)
        pw.compact(wide.pointer, y.data + s * g.o * g.ho * g.wo, bias: b.map { UnsafePointer($0.data) })
    }

    guard Tape.needsGrad(x, w, b) else { return y }
    Tape.record(y) { dy in
        let dxT = gradTarget(x), dwT = gradTarget(w), dbT = gradTarget(b)
        let padded = Scratch(pw.paddedCount), col = Scratch(pw.ckk * pw.wideCount)
        let wideDy = Scratch(g.o * pw.wideCount)
        padded.pointer.update(repeating: 0, count: pw.paddedCount)
        wideDy.pointer.update(repeating: 0, count: g.o * pw.wideCount)
        let dPadded: Scratch? = dxT == nil ? nil : Scratch(pw.paddedCount)
        for s in 0..<g.n {
            let dys = dy + s * g.o * g.ho * g.wo
            pw.widen(dys, wideDy.pointer)
            if let (dw, acc) = dwT {
                pw.fillInterior(x.data + s * g.c * g.h * g.w, padded.pointer)
                pw.columns(padded.pointer, col.pointer)
                sgemm(transB: true, m: g.o, n: pw.ckk, k: pw.wideCount, a: wideDy.pointer, b: col.pointer,
                      beta: (acc || s > 0) ? 1 : 0, c: dw)
            }
            if let (dx, acc) = dxT, let dPadded {
                sgemm(transA: true, m: pw.ckk, n: pw.wideCount, k: g.o, a: w.data, b: wideDy.pointer,
                      beta: 0, c: col.pointer)
                pw.accumulateColumns(col.pointer, dPadded.pointer)
                pw.extractInterior(dPadded.pointer, dx + s * g.c * g.h * g.w, accumulate: acc)
            }
        }
        if let (db, acc) = dbT {
            if !acc { db.update(repeating: 0, count: g.o) }
            let hw = g.ho * g.wo
            for s in 0..<g.n {
                for o in 0..<g.o { db[o] += Vector.sum(dy + (s * g.o + o) * hw, hw) }
            }
        }
    }
    return y
}
