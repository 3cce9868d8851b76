/// Writes one gradient element: adds when the buffer already holds a gradient, assigns otherwise
/// (so no op ever needs a zero-filled gradient buffer).
@inline(__always)
func put(_ g: UnsafeMutablePointer<Float>, _ i: Int, _ v: Float, _ accumulate: Bool) {
    if accumulate { g[i] += v } else { g[i] = v }
}

/// The gradient buffer of `t` if the op must produce one.
@inline(__always)
func gradTarget(_ t: Tensor?) -> (UnsafeMutablePointer<Float>, accumulate: Bool)? {
    guard let t, t.requiresGrad else { return nil }
    return t.gradForWrite()
}

/// BLAS beta for writing a gradient with GEMM: 1 accumulates, 0 assigns.
@inline(__always)
func beta(_ accumulate: Bool) -> Float { accumulate ? 1 : 0 }
