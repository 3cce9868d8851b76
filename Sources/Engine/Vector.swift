/// SIMD reductions and streaming kernels over Float buffers.
///
/// (`pointwiseMax`/`pointwiseMin` on SIMD types are lowered lane by lane; `replacing(with:where:)`
/// compiles to vector compares and masks, so the ReLU here uses the latter.)
///
/// Swift (like C without -ffast-math) will not reorder a floating-point sum, so a plain
/// `for i in 0..<n { s += p[i] }` runs one add at a time. These keep 16 (or 32) partial sums in
/// vector registers; the result differs from a sequential sum only by rounding order.
///
/// Loop counters wrap (&+): n is a buffer length, so i + 32 cannot overflow, and -O would
/// otherwise check every increment of these inner loops.
public enum Vector {
    public typealias V = SIMD16<Float>

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self) }

    /// sum p[i]
    @inline(__always)
    public static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var a = V(), b = V(), i = 0
        while i &+ 32 <= n { a += load(p + i); b += load(p + (i &+ 16)); i &+= 32 }
        if i &+ 16 <= n { a += load(p + i); i &+= 16 }
        var s = (a + b).sum()
        while i < n { s += p[i]; i &+= 1 }
        return s
    }

    /// sum (p[i] - mu)^2
    @inline(__always)
    public static func sumSquaredDeviations(_ p: UnsafePointer<Float>, _ n: Int, mean mu: Float) -> Float {
        var a = V(), b = V(), i = 0
        let m = V(repeating: mu)
        while i &+ 32 <= n {
            let d0 = load(p + i) - m, d1 = load(p + (i &+ 16)) - m
            a += d0 * d0; b += d1 * d1; i &+= 32
        }
        if i &+ 16 <= n { let d = load(p + i) - m; a += d * d; i &+= 16 }
        var s = (a + b).sum()
        while i < n { let d = p[i] - mu; s += d * d; i &+= 1 }
        return s
    }

    /// (sum g[i], sum g[i] * x[i]) where g = dy masked to 0 wherever y <= 0 when `mask` is given
    /// (the backward of a fused ReLU).
    @inline(__always)
    public static func sumAndDot(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, _ n: Int,
                                 mask y: UnsafePointer<Float>?) -> (Float, Float) {
        var s = V(), d = V(), i = 0
        let zero = V()
        if let y {
            while i &+ 16 <= n {
                let g = load(dy + i).replacing(with: 0, where: load(y + i) .<= zero)
                s += g; d += g * load(x + i); i &+= 16
            }
        } else {
            while i &+ 16 <= n {
                let g = load(dy + i)
                s += g; d += g * load(x + i); i &+= 16
            }
        }
        var ss = s.sum(), dd = d.sum()
        while i < n {
            let g = (y != nil && y![i] <= 0) ? 0 : dy[i]
            ss += g; dd += g * x[i]; i &+= 1
        }
        return (ss, dd)
    }

    /// out[i] = a * x[i] + b, then max(0, .) if `relu`.
    @inline(__always)
    public static func affine(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int,
                              scale a: Float, shift b: Float, relu: Bool) {
        let va = V(repeating: a), vb = V(repeating: b), zero = V()
        var i = 0
        if relu {
            while i &+ 16 <= n {
                let v = load(x + i) * va + vb
                store(v.replacing(with: 0, where: v .< zero), out + i); i &+= 16
            }
            while i < n { out[i] = max(0, x[i] * a + b); i &+= 1 }
        } else {
            while i &+ 16 <= n { store(load(x + i) * va + vb, out + i); i &+= 16 }
            while i < n { out[i] = x[i] * a + b; i &+= 1 }
        }
    }

    /// dst[i] += src[i]
    @inline(__always)
    public static func addInPlace(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i &+ 16 <= n { store(load(dst + i) + load(src + i), dst + i); i &+= 16 }
        while i < n { dst[i] += src[i]; i &+= 1 }
    }

    /// out[i] = a * x[i] + b, or out[i] += a * x[i] + b when `accumulate`.
    @inline(__always)
    public static func affineInto(_ x: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int,
                                  scale a: Float, shift b: Float, accumulate: Bool) {
        guard accumulate else { affine(x, out, n, scale: a, shift: b, relu: false); return }
        let va = V(repeating: a), vb = V(repeating: b)
        var i = 0
        while i &+ 16 <= n { store(load(out + i) + load(x + i) * va + vb, out + i); i &+= 16 }
        while i < n { out[i] += x[i] * a + b; i &+= 1 }
    }

    /// out[i] (+)= a * g[i] + b * x[i] + c, with g = dy masked by y <= 0 when `mask` is given.
    @inline(__always)
    public static func axpbypc(_ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>, mask y: UnsafePointer<Float>?,
                               _ out: UnsafeMutablePointer<Float>, _ n: Int,
                               a: Float, b: Float, c: Float, accumulate: Bool) {
        let va = V(repeating: a), vb = V(repeating: b), vc = V(repeating: c), zero = V()
        var i = 0
        while i &+ 16 <= n {
            var g = load(dy + i)
            if let y { g = g.replacing(with: 0, where: load(y + i) .<= zero) }
            var v = va * g + vb * load(x + i) + vc
            if accumulate { v += load(out + i) }
            store(v, out + i)
            i &+= 16
        }
        while i < n {
            let g = (y != nil && y![i] <= 0) ? 0 : dy[i]
            let v = a * g + b * x[i] + c
            out[i] = accumulate ? out[i] + v : v
            i &+= 1
        }
    }
}
