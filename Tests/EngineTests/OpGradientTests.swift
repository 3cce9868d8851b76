import XCTest
@testable import Engine

/// Finite-difference gradient checks for every op, on parameters and inputs.
/// Tolerance: norm-wise relative error <= 1e-3 (see GradientCheck for why norm-wise).
final class OpGradientTests: XCTestCase {
    let tolerance: Float = 1e-3

    func input(_ shape: [Int], seed: UInt64, low: Float = -1, high: Float = 1) -> Tensor {
        Tensor.uniform(shape, low: low, high: high, seed: seed, requiresGrad: true)
    }

    /// Values whose magnitudes stay at least `gap` away from 0, so ReLU-like kinks are never crossed by h.
    func awayFromZero(_ shape: [Int], seed: UInt64, gap: Float = 0.05) -> Tensor {
        let t = input(shape, seed: seed)
        for i in 0..<t.count { t.data[i] = t.data[i] >= 0 ? t.data[i] + gap : t.data[i] - gap }
        return t
    }

    /// Distinct values, pairwise at least 0.01 apart, in random order: max-pool never ties.
    func distinct(_ shape: [Int], seed: UInt64) -> Tensor {
        let t = Tensor(uninitialized: shape, requiresGrad: true)
        var rng = RandomGenerator(seed: seed)
        let perm = rng.permutation(t.count)
        for i in 0..<t.count { t.data[i] = Float(perm[i]) * 0.01 - Float(t.count) * 0.005 }
        return t
    }

    func assertGrad(_ inputs: [Tensor], h: Float = 1e-2, file: StaticString = #filePath, line: UInt = #line,
                    _ f: () -> Tensor) {
        let r = GradientCheck.check(inputs, h: h, f)
        XCTAssertLessThanOrEqual(r.maxError, tolerance, "\(r)", file: file, line: line)
    }

    func testLinear() {
        let x = input([3, 5], seed: 1), w = input([4, 5], seed: 2), b = input([4], seed: 3)
        assertGrad([x, w, b]) { linear(x, w, b) }
        assertGrad([x, w]) { linear(x, w, nil) }
    }

    func testConv2dConfigurations() {
        // (N, C, H, W, O, k, stride, padding): odd sizes, stride 2, padding 0/1/2, batch 1, 1x1.
        let configs = [(2, 3, 5, 7, 4, 3, 1, 1), (1, 2, 7, 5, 3, 3, 2, 0), (2, 2, 6, 6, 2, 3, 2, 2),
                       (1, 1, 5, 5, 2, 5, 1, 2), (2, 3, 4, 5, 4, 1, 1, 0), (2, 4, 6, 6, 3, 1, 2, 0),
                       (1, 2, 3, 3, 2, 2, 1, 1)]
        for (i, c) in configs.enumerated() {
            let s = UInt64(10 * i)
            let x = input([c.0, c.1, c.2, c.3], seed: s), w = input([c.4, c.1, c.5, c.5], seed: s + 1)
            let b = input([c.4], seed: s + 2)
            assertGrad([x, w, b]) { conv2d(x, w, b, stride: c.6, padding: c.7) }
            assertGrad([x, w]) { conv2d(x, w, nil, stride: c.6, padding: c.7) }
        }
    }

    func testBatchNormTrainingAndEval() {
        for shape in [[4, 3], [3, 2, 3, 5]] {
            let c = shape[1]
            let x = input(shape, seed: 20), g = input([c], seed: 21, low: 0.5, high: 1.5), b = input([c], seed: 22)
            let rm = Tensor.uniform([c], low: -0.2, high: 0.2, seed: 23), rv = Tensor.uniform([c], low: 0.5, high: 2, seed: 24)
            assertGrad([x, g, b]) {
                batchNorm(x, weight: g, bias: b, runningMean: nil, runningVar: nil, training: true)
            }
            assertGrad([x, g, b]) {
                batchNorm(x, weight: g, bias: b, runningMean: rm, runningVar: rv, training: false)
            }
        }
    }

    func testBatchNormFusedReLU() {
        // Shift the inputs so no normalised value sits within h of the ReLU kink.
        let x = input([4, 2, 3, 3], seed: 30), g = input([2], seed: 31, low: 0.5, high: 1.5), b = input([2], seed: 32)
        let fused = withNoGrad { batchNorm(x, weight: g, bias: b, runningMean: nil, runningVar: nil, training: true, fusedReLU: true) }
        let plain = withNoGrad { relu(batchNorm(x, weight: g, bias: b, runningMean: nil, runningVar: nil, training: true)) }
        XCTAssertEqual(fused.array, plain.array)
        assertGrad([x, g, b], h: 1e-3) {
            batchNorm(x, weight: g, bias: b, runningMean: nil, runningVar: nil, training: true, fusedReLU: true)
        }
    }

    func testBatchNormReLUMaxPoolGradients() {
        // Distinct inputs (no pooling ties); one channel with a negative scale; odd H and W, whose
        // last row and column take no part in pooling but still in batch norm.
        for shape in [[2, 3, 6, 4], [3, 2, 5, 7]] {
            let c = shape[1]
            let x = distinct(shape, seed: 33), b = input([c], seed: 34, low: -0.3, high: 0.3)
            let g = input([c], seed: 35, low: 0.5, high: 1.5)
            g.data[0] = -g.data[0]
            let rm = Tensor.uniform([c], low: -0.2, high: 0.2, seed: 36), rv = Tensor.uniform([c], low: 0.5, high: 2, seed: 37)
            assertGrad([x, g, b], h: 1e-3) {
                batchNormReLUMaxPool2x2(x, weight: g, bias: b, runningMean: nil, runningVar: nil, training: true)
            }
            assertGrad([x, g, b], h: 1e-3) {
                batchNormReLUMaxPool2x2(x, weight: g, bias: b, runningMean: rm, runningVar: rv, training: false)
            }
        }
    }

    /// The fused op must be the unfused chain: same outputs bit for bit, same running statistics,
    /// same gradients up to summation order, and accumulation into existing gradients.
    func testBatchNormReLUMaxPoolMatchesUnfusedChain() {
        for training in [true, false] {
            let shape = [4, 3, 9, 8]
            let seedOut = Tensor.uniform([4, 3, 4, 4], seed: 39).array
            func run(fused: Bool) -> (y: [Float], grads: [[Float]], running: [Float]) {
                let x = input(shape, seed: 38), g = input([3], seed: 40, low: -1.5, high: 1.5)
                let b = input([3], seed: 41)
                let rm = Tensor.uniform([3], low: -0.2, high: 0.2, seed: 42), rv = Tensor.uniform([3], low: 0.5, high: 2, seed: 43)
                // An existing gradient on x exercises the accumulate path.
                let (gx, _) = x.gradForWrite(); for i in 0..<x.count { gx[i] = 0.25 }
                let y = fused
                    ? batchNormReLUMaxPool2x2(x, weight: g, bias: b, runningMean: rm, runningVar: rv, training: training)
                    : maxPool2d(relu(batchNorm(x, weight: g, bias: b, runningMean: rm, runningVar: rv, training: training)), kernel: 2)
                Tape.current.backward(y, seed: seedOut)
                return (y.array, [x.gradArray!, g.gradArray!, b.gradArray!], rm.array + rv.array)
            }
            let fused = run(fused: true), plain = run(fused: false)
            XCTAssertEqual(fused.y, plain.y, "training \(training)")
            XCTAssertEqual(fused.running, plain.running)
            for (a, e) in zip(fused.grads, plain.grads) {
                let scale = e.map(abs).max()!
                let worst = zip(a, e).map { abs($0 - $1) }.max()!
                XCTAssertLessThanOrEqual(worst, 1e-5 * max(scale, 1), "training \(training)")
            }
        }
    }

    func testBatchMoments() {
        let x = input([3, 4, 2, 3], seed: 40)
        assertGrad([x]) { batchMoments(x).mean }
        assertGrad([x]) { batchMoments(x).variance }
        assertGrad([x]) { let m = batchMoments(x); return add(m.mean, scale(m.variance, 0.5)) }
        let x2 = input([5, 3], seed: 41)
        assertGrad([x2]) { batchMoments(x2).variance }
    }

    func testActivations() {
        let x = awayFromZero([2, 3, 4], seed: 50)
        assertGrad([x]) { relu(x) }
        assertGrad([x]) { leakyReLU(x, slope: 0.2) }
        assertGrad([x]) { Engine.tanh(x) }
        assertGrad([x]) { Engine.sigmoid(x) }
    }

    func testPooling() {
        let x = distinct([2, 3, 6, 5], seed: 60)
        assertGrad([x], h: 1e-3) { maxPool2d(x, kernel: 2) }
        assertGrad([x], h: 1e-3) { maxPool2d(x, kernel: 3, stride: 2, padding: 1) }
        let y = input([2, 3, 6, 5], seed: 61)
        assertGrad([y]) { avgPool2d(y, kernel: 2) }
        assertGrad([y]) { avgPool2d(y, kernel: 3, stride: 1) }
        assertGrad([y]) { globalAvgPool(y) }
    }

    func testShapeOps() {
        let x = input([2, 3, 2, 3], seed: 70)
        assertGrad([x]) { flatten(x) }
        assertGrad([x]) { reshape(x, [3, -1]) }
        assertGrad([x]) { upsampleNearest2x(x) }
    }

    func testArithmetic() {
        let a = input([3, 4], seed: 80), b = input([3, 4], seed: 81)
        assertGrad([a, b]) { add(a, b) }
        assertGrad([a]) { add(a, a) }
        assertGrad([a]) { scale(a, -2.5) }
        assertGrad([a]) { sum(a) }
        assertGrad([a]) { mean(a) }
    }

    func testDropout() {
        let x = input([4, 5], seed: 90)
        assertGrad([x]) {
            var rng = RandomGenerator(seed: 3)  // the same mask on every evaluation
            return dropout(x, p: 0.3, training: true, rng: &rng)
        }
        var rng = RandomGenerator(seed: 3)
        let y = withNoGrad { dropout(x, p: 0.5, training: true, rng: &rng) }
        let zeros = y.array.filter { $0 == 0 }.count
        XCTAssert(zeros > 2 && zeros < 18, "dropout p=0.5 zeroed \(zeros) of 20")
        XCTAssertTrue(dropout(x, p: 0.5, training: false, rng: &rng) === x)
    }

    func testCrossEntropy() {
        let z = input([4, 5], seed: 100, low: -2, high: 2)
        let labels = [0, 3, 4, 1]
        assertGrad([z]) { crossEntropy(z, labels: labels) }
        assertGrad([z]) { crossEntropy(z, labels: labels, labelSmoothing: 0.1) }
    }

    func testSoftTargetCrossEntropy() {
        let z = input([3, 4], seed: 110, low: -2, high: 2)
        let t = withNoGrad { softmax(Tensor.uniform([3, 4], low: -1, high: 1, seed: 111)) }
        t.requiresGrad = true
        assertGrad([z, t]) { softTargetCrossEntropy(z, targets: t) }
        assertGrad([z, t]) { softTargetCrossEntropy(z, targets: t, temperature: 2.5) }
        // At temperature T the loss is the one of the logits divided by T.
        let softened = withNoGrad { softTargetCrossEntropy(scale(z, 1 / 2.5), targets: t).scalar }
        XCTAssertEqual(withNoGrad { softTargetCrossEntropy(z, targets: t, temperature: 2.5).scalar }, softened, accuracy: 1e-6)
    }

    func testKLDivergence() {
        let s = input([3, 6], seed: 120, low: -2, high: 2), t = input([3, 6], seed: 121, low: -2, high: 2)
        for temperature: Float in [1, 4] {
            assertGrad([s, t]) { klDivergence(student: s, teacher: t, temperature: temperature) }
        }
        let same = withNoGrad { klDivergence(student: s, teacher: s, temperature: 2) }
        XCTAssertEqual(same.scalar, 0, accuracy: 1e-6)
    }

    func testDataFreeOps() {
        let x = input([3, 4], seed: 70)
        assertGrad([x]) { distanceL2(x, to: (0..<12).map { Float($0) * 0.05 - 0.3 }) }
        XCTAssertEqual(withNoGrad { distanceL2(Tensor([3, 4], shape: [2]), to: [0, 0]) }.scalar, 5)
        let img = input([3, 2, 5, 4], seed: 71)
        // Shifts inside, at and beyond the border (a whole sample shifted out is all zeros).
        assertGrad([img]) { translate(img, shifts: [(1, -2), (0, 0), (-3, 3)]) }
        let out = withNoGrad { translate(img, shifts: [(1, -2), (0, 0), (-5, 4)]) }
        XCTAssertEqual(out[0 * 40 + 1 * 4 + 0], img[0 * 40 + 0 * 4 + 2])  // y[i, j] = x[i - dy, j - dx]
        XCTAssertEqual(out[0 * 40 + 0 * 4 + 0], 0)
        XCTAssertEqual(Array(out.array[40..<80]), Array(img.array[40..<80]))
        XCTAssertTrue(out.array[80..<120].allSatisfy { $0 == 0 })
        assertGrad([img]) { flipHorizontal(img, flips: [true, false, true]) }
        let flipped = withNoGrad { flipHorizontal(img, flips: [true, false, true]) }
        XCTAssertEqual(flipped[3], img[0])
        XCTAssertEqual(flipped[43], img[43])
        assertGrad([img]) { channelAffine(img, scale: [2, -0.5], shift: [0.1, 0.3]) }
        let s = input([4, 5], seed: 72), t = input([4, 5], seed: 73)
        assertGrad([s, t]) { klDivergence(student: s, teacher: t, temperature: 2, rowWeights: [1, 0, 0.5, 1]) }
        let weighted = withNoGrad { klDivergence(student: s, teacher: t, rowWeights: [1, 1, 1, 1]) }
        XCTAssertEqual(weighted.scalar, withNoGrad { klDivergence(student: s, teacher: t) }.scalar)
    }

    func testMSEAndL1() {
        let a = input([3, 4], seed: 130), b = input([3, 4], seed: 131)
        assertGrad([a, b]) { mseLoss(a, b) }
        assertGrad([a, b], h: 1e-3) { l1Loss(a, b) }
    }
}
