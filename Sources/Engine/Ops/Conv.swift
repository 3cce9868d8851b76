/// 2-D convolution, NCHW input [N, C, H, W], weight [O, C, kh, kw] (PyTorch's OIHW), optional bias [O].
///
/// Lowered to GEMM per sample: im2col builds [C*kh*kw, Ho*Wo] and out_n = W * col (+ b).
/// A 1x1 stride-1 unpadded convolution skips im2col (the input already is the column matrix);
/// other stride-1 convolutions take the padded-width path of ConvStride1.swift.
/// Backward recomputes im2col instead of keeping the columns: one cheap pass against a
/// C*kh*kw-fold larger saved activation.
public func conv2d(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
    precondition(x.rank == 4 && w.rank == 4 && x.shape[1] == w.shape[1],
                 "conv2d: input \(x.shape) does not match weight \(w.shape)")
    let g = ConvGeometry(n: x.shape[0], c: x.shape[1], h: x.shape[2], w: x.shape[3],
                         o: w.shape[0], kh: w.shape[2], kw: w.shape[3], stride: stride, padding: padding)
    precondition(g.ho > 0 && g.wo > 0, "conv2d: kernel \(g.kh)x\(g.kw) larger than padded input \(x.shape)")
    let y = Tensor(uninitialized: [g.n, g.o, g.ho, g.wo])
    let ckk = g.c * g.kh * g.kw, hw = g.ho * g.wo
    let direct = g.isPointwise
    FlopCounter.forwardFLOPs += 2 * g.n * g.o * hw * ckk
    if g.stride == 1 && !direct { return conv2dStride1(x, w, b, g) }
    let col: UnsafeMutablePointer<Float>? = direct ? nil : BufferPool.take(ckk * hw)
    defer { if let col { BufferPool.give(col, ckk * hw) } }

    for s in 0..<g.n {
        let xs = x.data + s * g.c * g.h * g.w
        let ys = y.data + s * g.o * hw
        let colS: UnsafePointer<Float>
        if let col { im2col(xs, g, col); colS = UnsafePointer(col) } else { colS = UnsafePointer(xs) }
        if let b {
            for o in 0..<g.o { (ys + o * hw).update(repeating: b.data[o], count: hw) }
        }
        sgemm(m: g.o, n: hw, k: ckk, a: w.data, b: colS, beta: b == nil ? 0 : 1, c: ys)
    }

    if Tape.needsGrad(x, w, b) {
        Tape.record(y) { dy in
            let dxT = gradTarget(x), dwT = gradTarget(w), dbT = gradTarget(b)
            let col: UnsafeMutablePointer<Float>? = direct ? nil : BufferPool.take(ckk * hw)
            defer { if let col { BufferPool.give(col, ckk * hw) } }
            for s in 0..<g.n {
                let xs = x.data + s * g.c * g.h * g.w
                let dys = dy + s * g.o * hw
                if let (dw, acc) = dwT {
                    let colS: UnsafePointer<Float>
                    if let col { im2col(xs, g, col); colS = UnsafePointer(col) } else { colS = UnsafePointer(xs) }
                    sgemm(transB: true, m: g.o, n: ckk, k: hw, a: dys, b: colS,
                          beta: (acc || s > 0) ? 1 : 0, c: dw)
                }
                if let (dx, acc) = dxT {
                    let dxs = dx + s * g.c * g.h * g.w
                    if let col {
                        sgemm(transA: true, m: ckk, n: hw, k: g.o, a: w.data, b: dys, beta: 0, c: col)
                        if !acc { dxs.update(repeating: 0, count: g.c * g.h * g.w) }
                        col2imAdd(col, g, dxs)
                    } else {
                        sgemm(transA: true, m: ckk, n: hw, k: g.o, a: w.data, b: dys, beta: beta(acc), c: dxs)
                    }
                }
            }
            if let (db, acc) = dbT {
                if !acc { db.update(repeating: 0, count: g.o) }
                for s in 0..<g.n {
                    for o in 0..<g.o { db[o] += Vector.sum(dy + (s * g.o + o) * hw, hw) }
                }
            }
        }
    }
    return y
}

public struct ConvGeometry {
    public let n, c, h, w, o, kh, kw, stride, padding, ho, wo: Int
    public init(n: Int, c: Int, h: Int, w: Int, o: Int, kh: Int, kw: Int, stride: Int, padding: Int) {
        precondition(stride >= 1 && padding >= 0)
        self.n = n; self.c = c; self.h = h; self.w = w; self.o = o; self.kh = kh; self.kw = kw
        self.stride = stride; self.padding = padding
        ho = (h + 2 * padding - kh) / stride + 1
        wo = (w + 2 * padding - kw) / stride + 1
    }
    var isPointwise: Bool { kh == 1 && kw == 1 && stride == 1 && padding == 0 }
}

/// col[(c*kh + i)*kw + j, oh*wo + ow] = x[c, oh*s - p + i, ow*s - p + j] (0 outside).
///
/// The index arithmetic is wrapping (&+, &*): every index is bounded by the geometry, whose
/// sizes conv2d's preconditions checked, and the overflow checks of -O cost a third of
/// this function's instructions on resnet20's stride-2 layers (callgrind).
@inline(__always)
func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, _ col: UnsafeMutablePointer<Float>) {
    let hw = g.ho &* g.wo, stride = g.stride, wo = g.wo
    var dst = col
    for c in 0..<g.c {
        let xc = x + c &* g.h &* g.w
        for i in 0..<g.kh {
            for j in 0..<g.kw {
                // Output columns ow whose input column iw = ow*s - p + j lies inside [0, w).
                let owLo = min(wo, max(0, (g.padding &- j &+ stride &- 1) / stride))
                let owHi = max(owLo, min(wo, floorDiv(g.w &- 1 &+ g.padding &- j, stride) &+ 1))
                var d = dst
                for oh in 0..<g.ho {
                    let ih = oh &* stride &- g.padding &+ i
                    // Rows are short (tens of floats): plain loops beat memcpy/memset calls.
                    if ih < 0 || ih >= g.h {
                        zero(d, 0, wo)
                    } else {
                        var src = xc + (ih &* g.w &- g.padding &+ j &+ owLo &* stride)
                        zero(d, 0, owLo)
                        var ow = owLo
                        if stride == 1 {
                            while ow < owHi { d[ow] = src.pointee; src += 1; ow &+= 1 }
                        } else {
                            while ow < owHi { d[ow] = src.pointee; src += stride; ow &+= 1 }
                        }
                        zero(d, owHi, wo)
                    }
                    d += wo
                }
                dst += hw
            }
        }
    }
}

/// d[lo..<hi] = 0 with a plain loop (no Range, whose lower <= upper check -O keeps).
@inline(__always)
private func zero(_ d: UnsafeMutablePointer<Float>, _ lo: Int, _ hi: Int) {
    var k = lo
    while k < hi { d[k] = 0; k &+= 1 }
}

/// The adjoint of im2col: dx[c, ih, iw] += col[...] for every column that read it.
@inline(__always)
func col2imAdd(_ col: UnsafePointer<Float>, _ g: ConvGeometry, _ dx: UnsafeMutablePointer<Float>) {
    let hw = g.ho &* g.wo, stride = g.stride, wo = g.wo
    var src = col
    for c in 0..<g.c {
        let dxc = dx + c &* g.h &* g.w
        for i in 0..<g.kh {
            for j in 0..<g.kw {
                let owLo = min(wo, max(0, (g.padding &- j &+ stride &- 1) / stride))
                let owHi = max(owLo, min(wo, floorDiv(g.w &- 1 &+ g.padding &- j, stride) &+ 1))
                if owLo < owHi {
                    for oh in 0..<g.ho {
                        let ih = oh &* stride &- g.padding &+ i
                        if ih < 0 || ih >= g.h { continue }
                        var d = dxc + (ih &* g.w &- g.padding &+ j &+ owLo &* stride)
                        let s = src + oh &* wo
                        var ow = owLo
                        if stride == 1 {
                            while ow < owHi { d.pointee += s[ow]; d += 1; ow &+= 1 }
                        } else {
                            while ow < owHi { d.pointee += s[ow]; d += stride; ow &+= 1 }
                        }
                    }
                }
                src += hw
            }
        }
    }
}

@inline(__always)
func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
