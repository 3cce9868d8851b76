import XCTest
@testable import Engine

final class TapeTests: XCTestCase {
    override func setUp() { Tape.current.reset() }

    func testGradientsAccumulateAcrossBackwardCalls() {
        let w = Tensor([1, 2, 3], shape: [1, 3], requiresGrad: true)
        let x = Tensor([1, 1, 1], shape: [1, 3])
        Tape.current.backward(linear(x, w, nil))
        XCTAssertEqual(w.gradArray, [1, 1, 1])
        Tape.current.backward(linear(x, w, nil))
        XCTAssertEqual(w.gradArray, [2, 2, 2])
        w.clearGrad()
        Tape.current.backward(scale(linear(x, w, nil), 3))
        XCTAssertEqual(w.gradArray, [3, 3, 3], "after clearGrad the next write assigns")
    }

    func testNoGradRecordsNothing() {
        let w = Tensor([1, 2], shape: [1, 2], requiresGrad: true)
        let y = withNoGrad { linear(Tensor([1, 1], shape: [1, 2]), w, nil) }
        XCTAssertEqual(Tape.current.count, 0)
        XCTAssertFalse(y.requiresGrad)
    }

    func testInputGradient() {
        // d/dx sum(relu(x)^2-ish): use mse against zeros: grad = 2x/n
        let x = Tensor([1, -2, 3, 4], shape: [2, 2], requiresGrad: true)
        Tape.current.backward(mseLoss(x, Tensor(zeros: [2, 2])))
        XCTAssertEqual(x.gradArray!, [0.5, -1, 1.5, 2])
    }

    func testReusedInputGetsBothContributions() {
        let x = Tensor([2], shape: [1], requiresGrad: true)
        Tape.current.backward(add(scale(x, 3), scale(x, 4)))
        XCTAssertEqual(x.gradArray, [7])
    }

    func testIntermediateGradientsAreReleased() {
        let x = Tensor.uniform([8, 16], seed: 1, requiresGrad: true)
        let h = relu(x)
        let y = sum(h)
        Tape.current.backward(y)
        XCTAssertNil(h.grad, "intermediate gradient buffers go back to the pool during backward")
        XCTAssertNotNil(x.gradArray)
    }
}
