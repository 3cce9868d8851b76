import XCTest
@testable import Engine

/// The checker itself must fail on a wrong gradient, or every passing check means nothing.
final class GradientCheckTests: XCTestCase {
    /// y = 2x with a backward that is 1% off.
    func slightlyWrongDouble(_ x: Tensor) -> Tensor {
        let y = Tensor(uninitialized: x.shape)
        for i in 0..<x.count { y.data[i] = 2 * x.data[i] }
        if Tape.needsGrad(x) {
            Tape.record(y) { dy in
                let (dx, acc) = x.gradForWrite()
                for i in 0..<x.count { dx[i] = (acc ? dx[i] : 0) + 2.02 * dy[i] }
            }
        }
        return y
    }

    func testCatchesAOnePercentError() {
        let x = Tensor.uniform([4, 5], seed: 1, requiresGrad: true)
        let r = GradientCheck.check([x]) { slightlyWrongDouble(x) }
        XCTAssertGreaterThan(r.maxError, 5e-3, "a 1% gradient error must be visible")
    }

    func testCatchesAMissingTerm() {
        // add(a, a) with only one contribution would give half the gradient.
        let a = Tensor.uniform([3], seed: 2, requiresGrad: true)
        let r = GradientCheck.check([a]) { withNoGrad { add(a, a) } }
        XCTAssertGreaterThan(r.maxError, 0.5, "no gradient at all must fail")
    }
}
