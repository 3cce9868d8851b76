import XCTest
@testable import Engine

/// A tiny fixed network (conv -> BN -> ReLU -> max-pool -> linear -> cross-entropy) whose outputs
/// and gradients were computed independently by PyTorch in float64 (Golden/make_golden.py).
final class GoldenTests: XCTestCase {
    typealias G = GoldenValues
    let tolerance: Float = 1e-4

    func assertMatches(_ got: [Float]?, _ want: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let got else { return XCTFail("\(what): no gradient", file: file, line: line) }
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        for (i, (a, b)) in zip(got, want).enumerated() {
            XCTAssertEqual(a, b, accuracy: tolerance * max(1, abs(b)), "\(what)[\(i)]", file: file, line: line)
        }
    }

    func run(smoothing: Float) -> (loss: Tensor, logits: Tensor, x: Tensor, params: [Tensor], rm: Tensor, rv: Tensor) {
        Tape.current.reset()
        let x = Tensor(G.input, shape: [2, 1, 6, 6], requiresGrad: true)
        let cw = Tensor(G.convWeight, shape: [2, 1, 3, 3], requiresGrad: true)
        let cb = Tensor(G.convBias, shape: [2], requiresGrad: true)
        let g = Tensor(G.bnWeight, shape: [2], requiresGrad: true), b = Tensor(G.bnBias, shape: [2], requiresGrad: true)
        let lw = Tensor(G.linearWeight, shape: [3, 18], requiresGrad: true)
        let lb = Tensor(G.linearBias, shape: [3], requiresGrad: true)
        let rm = Tensor(zeros: [2]), rv = Tensor(repeating: 1, shape: [2])
        var h = conv2d(x, cw, cb, stride: 1, padding: 1)
        h = batchNorm(h, weight: g, bias: b, runningMean: rm, runningVar: rv, training: true,
                      momentum: G.bnMomentum, eps: G.bnEps)
        h = maxPool2d(relu(h), kernel: 2)
        let logits = linear(flatten(h), lw, lb)
        let loss = crossEntropy(logits, labels: G.labels, labelSmoothing: smoothing)
        Tape.current.backward(loss)
        return (loss, logits, x, [cw, cb, g, b, lw, lb], rm, rv)
    }

    func testForwardAndGradientsMatchPyTorch() {
        let r = run(smoothing: 0)
        assertMatches(r.logits.array, G.logits, "logits")
        XCTAssertEqual(r.loss.scalar, G.loss, accuracy: tolerance)
        assertMatches(r.x.gradArray, G.gradInput, "grad input")
        let names = ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "linear.weight", "linear.bias"]
        let want = [G.gradConvWeight, G.gradConvBias, G.gradBnWeight, G.gradBnBias, G.gradLinearWeight, G.gradLinearBias]
        for (p, (name, w)) in zip(r.params, zip(names, want)) {
            // conv.bias: exactly zero in theory (a BN follows); float32 leaves rounding noise.
            assertMatches(p.gradArray ?? [Float](repeating: 0, count: p.count), w, "grad \(name)")
        }
        assertMatches(r.rm.array, G.bnRunningMean, "running_mean")
        assertMatches(r.rv.array, G.bnRunningVar, "running_var")
    }

    func testLabelSmoothingMatchesPyTorch() {
        let r = run(smoothing: G.labelSmoothing)
        XCTAssertEqual(r.loss.scalar, G.lossSmoothed, accuracy: tolerance)
        assertMatches(r.x.gradArray, G.gradInputSmoothed, "grad input (smoothed)")
        assertMatches(r.params[4].gradArray, G.gradLinearWeightSmoothed, "grad linear.weight (smoothed)")
    }
}
