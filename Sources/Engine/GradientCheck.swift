/// Finite-difference check of the tape's gradients.
///
/// The scalar checked is L = sum_i r_i * y_i for a fixed random projection r of the output y, so
/// every output element contributes. For each checked input coordinate, the analytic dL/dx is
/// compared with the central difference (L(x+h) - L(x-h)) / 2h, L accumulated in Double.
/// The error reported per input is norm-wise, ||fd - analytic|| / max(||fd||, ||analytic||):
/// single float32 coordinates carry rounding noise of order ulp(L)/h, which the norm averages
/// out while any real mistake (a wrong term, a missing factor) still shows at full size.
public enum GradientCheck {
    /// The analytic gradients of L = sum r_i y_i (r a fixed random projection) for every input,
    /// and a function that evaluates L in Double without recording.
    static func projected(_ inputs: [Tensor], seed: UInt64, _ f: @escaping () -> Tensor) -> ([[Float]], () -> Double) {
        let tape = Tape.current
        tape.reset()
        for x in inputs { x.clearGrad() }
        let y = f()
        var rng = RandomGenerator(seed: seed, stream: "projection")
        let r = (0..<y.count).map { _ in rng.uniform(-1, 1) }
        tape.backward(y, seed: r)
        let analytic = inputs.map { $0.gradArray ?? [Float](repeating: 0, count: $0.count) }
        let loss: () -> Double = {
            withNoGrad {
                let out = f()
                var s: Double = 0
                for i in 0..<out.count { s += Double(r[i]) * Double(out.data[i]) }
                return s
            }
        }
        return (analytic, loss)
    }

    public struct Result: CustomStringConvertible {
        public let errors: [Float]
        public var maxError: Float { errors.max() ?? 0 }
        public var description: String { "relative errors \(errors.map { String($0) })" }
    }

    /// `inputs` must be leaves with `requiresGrad`; `f` recomputes the output from them.
    /// At most `maxCoordinates` coordinates per input are checked (chosen at random) to keep big
    /// tensors cheap.
    public static func check(_ inputs: [Tensor], h: Float = 1e-2, maxCoordinates: Int = 64, seed: UInt64 = 7,
                             _ f: () -> Tensor) -> Result {
        withoutActuallyEscaping(f) { check(inputs, h: h, maxCoordinates: maxCoordinates, seed: seed, escaping: $0) }
    }

    static func check(_ inputs: [Tensor], h: Float, maxCoordinates: Int, seed: UInt64, escaping f: @escaping () -> Tensor) -> Result {
        let (analytic, loss) = projected(inputs, seed: seed, f)

        var errors: [Float] = []
        for (k, x) in inputs.enumerated() {
            var coords = Array(0..<x.count)
            if coords.count > maxCoordinates {
                var pick = RandomGenerator(seed: seed &+ UInt64(k), stream: "coordinates")
                coords = Array(pick.permutation(x.count).prefix(maxCoordinates))
            }
            var diff: Double = 0, nFD: Double = 0, nAn: Double = 0
            for i in coords {
                let saved = x.data[i]
                x.data[i] = saved + h
                let lp = loss()
                x.data[i] = saved - h
                let lm = loss()
                x.data[i] = saved
                let fd = (lp - lm) / (2 * Double(h))
                let an = Double(analytic[k][i])
                diff += (fd - an) * (fd - an); nFD += fd * fd; nAn += an * an
            }
            let scale = max(nFD.squareRoot(), nAn.squareRoot(), 1e-6)
            errors.append(Float(diff.squareRoot() / scale))
        }
        return Result(errors: errors)
    }
}

extension GradientCheck {
    /// Directional check for whole models. In a deep float32 network a single coordinate's
    /// difference quotient is noisy: rounding of L (about 1e-7 |L|) is amplified by 1/2h while one
    /// coordinate's gradient is small, and a larger h crosses ReLU/max-pool kinks. Along the unit
    /// direction of the analytic gradient itself the signal is the whole norm ||g|| (about sqrt(n)
    /// times a coordinate's) and each coordinate moves by only h/sqrt(n). Direction 0 is g/||g||;
    /// the others tilt it by 45 degrees towards random directions so errors orthogonal to g show at
    /// first order. Returns |fd - g.v| / max(|fd|, |g.v|) per direction.
    public static func checkDirectional(_ inputs: [Tensor], directions: Int = 3, h: Float = 1e-3, seed: UInt64 = 11,
                                        _ f: () -> Tensor) -> Result {
        withoutActuallyEscaping(f) { checkDirectional(inputs, directions: directions, h: h, seed: seed, escaping: $0) }
    }

    static func checkDirectional(_ inputs: [Tensor], directions: Int, h: Float, seed: UInt64,
                                 escaping f: @escaping () -> Tensor) -> Result {
        let (grads, loss) = projected(inputs, seed: seed, f)
        let analytic = grads.map { $0.map(Double.init) }
        func normalized(_ v: [[Double]]) -> [[Double]] {
            let n = v.reduce(0) { $0 + $1.reduce(0) { $0 + $1 * $1 } }.squareRoot()
            return v.map { $0.map { $0 / max(n, 1e-300) } }
        }
        let gHat = normalized(analytic)
        var errors: [Float] = []
        for d in 0..<directions {
            var v = gHat
            if d > 0 {
                var dirRng = RandomGenerator(seed: seed &+ UInt64(d), stream: "direction")
                let u = normalized(inputs.map { x in (0..<x.count).map { _ in Double(dirRng.normal()) } })
                v = normalized(zip(gHat, u).map { zip($0, $1).map { $0 + $1 } })
            }
            var gv: Double = 0
            for k in inputs.indices { for i in 0..<inputs[k].count { gv += analytic[k][i] * v[k][i] } }
            let saved = inputs.map { $0.array }
            func shift(_ s: Double) {
                for (k, x) in inputs.enumerated() {
                    for i in 0..<x.count { x.data[i] = Float(Double(saved[k][i]) + s * v[k][i]) }
                }
            }
            shift(Double(h)); let lp = loss()
            shift(-Double(h)); let lm = loss()
            for (k, x) in inputs.enumerated() { for i in 0..<x.count { x.data[i] = saved[k][i] } }
            let fd = (lp - lm) / (2 * Double(h))
            errors.append(Float(abs(fd - gv) / max(abs(fd), abs(gv), 1e-12)))
        }
        return Result(errors: errors)
    }
}
