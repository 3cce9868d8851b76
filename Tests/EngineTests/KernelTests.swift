import XCTest
import Foundation
@testable import Engine

/// Kernels against naive loops: odd sizes, stride 2, padding 0/1/2, batch 1.
final class KernelTests: XCTestCase {
    override func setUp() { Tape.current.reset() }

    /// Direct 7-loop convolution, forward and the three gradients, in Double.
    func naiveConv(x: Tensor, w: Tensor, b: Tensor?, dy: [Float]?, stride s: Int, padding p: Int)
        -> (y: [Float], dx: [Float], dw: [Float], db: [Float]) {
        let n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3]
        let o = w.shape[0], k = w.shape[2]
        let ho = (h + 2 * p - k) / s + 1, wo = (wd + 2 * p - k) / s + 1
        var y = [Double](repeating: 0, count: n * o * ho * wo)
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: o)
        for i in 0..<n { for oc in 0..<o { for oh in 0..<ho { for ow in 0..<wo {
            let yi = ((i * o + oc) * ho + oh) * wo + ow
            var acc = Double(b?.data[oc] ?? 0)
            let g = Double(dy?[yi] ?? 0)
            db[oc] += g
            for ic in 0..<c { for ki in 0..<k { for kj in 0..<k {
                let ih = oh * s - p + ki, iw = ow * s - p + kj
                guard ih >= 0, ih < h, iw >= 0, iw < wd else { continue }
                let xi = ((i * c + ic) * h + ih) * wd + iw, wi = ((oc * c + ic) * k + ki) * k + kj
                acc += Double(x.data[xi]) * Double(w.data[wi])
                dx[xi] += g * Double(w.data[wi])
                dw[wi] += g * Double(x.data[xi])
            } } }
            y[yi] = acc
        } } } }
        return (y.map(Float.init), dx.map(Float.init), dw.map(Float.init), db.map(Float.init))
    }

    func assertClose(_ a: [Float], _ b: [Float], _ tol: Float = 1e-4, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst, tol, "\(what): worst relative difference \(worst)", file: file, line: line)
    }

    func testConvMatchesNaiveLoops() {
        let configs = [(1, 3, 7, 5, 4, 3, 1, 0), (1, 3, 7, 5, 4, 3, 1, 1), (2, 3, 7, 5, 4, 3, 2, 2),
                       (3, 2, 9, 9, 5, 3, 2, 1), (2, 5, 6, 7, 3, 1, 1, 0), (2, 4, 7, 7, 6, 1, 2, 0),
                       (1, 1, 28, 28, 32, 3, 1, 1), (2, 2, 5, 5, 3, 5, 1, 2), (1, 2, 4, 4, 2, 4, 2, 1),
                       (2, 32, 14, 14, 64, 3, 1, 1), (1, 2, 6, 5, 3, 2, 1, 0)]
        for (i, c) in configs.enumerated() {
            let seed = UInt64(100 + i)
            let x = Tensor.uniform([c.0, c.1, c.2, c.3], seed: seed, requiresGrad: true)
            let w = Tensor.uniform([c.4, c.1, c.5, c.5], seed: seed + 1, requiresGrad: true)
            let b = Tensor.uniform([c.4], seed: seed + 2, requiresGrad: true)
            let y = conv2d(x, w, b, stride: c.6, padding: c.7)
            let dy = Tensor.uniform(y.shape, seed: seed + 3).array
            Tape.current.backward(y, seed: dy)
            let ref = naiveConv(x: x, w: w, b: b, dy: dy, stride: c.6, padding: c.7)
            assertClose(y.array, ref.y, 1e-5, "conv forward \(c)")
            assertClose(x.gradArray!, ref.dx, 1e-5, "conv dx \(c)")
            assertClose(w.gradArray!, ref.dw, 1e-5, "conv dw \(c)")
            assertClose(b.gradArray!, ref.db, 1e-5, "conv db \(c)")
        }
    }

    /// Two convolutions of the same input: the second backward accumulates into dx and dW.
    func testConvAccumulatesGradients() {
        for (stride, padding) in [(1, 1), (2, 1), (1, 0)] {
            let x = Tensor.uniform([2, 3, 7, 6], seed: 150, requiresGrad: true)
            let w = Tensor.uniform([4, 3, 3, 3], seed: 151, requiresGrad: true)
            let y1 = conv2d(x, w, nil, stride: stride, padding: padding)
            let y2 = conv2d(x, w, nil, stride: stride, padding: padding)
            let dy = Tensor.uniform(y1.shape, seed: 152).array
            Tape.current.backward(add(y1, y2), seed: dy)
            let ref = naiveConv(x: x, w: w, b: nil, dy: dy, stride: stride, padding: padding)
            assertClose(x.gradArray!, ref.dx.map { 2 * $0 }, 1e-5, "accumulated dx, stride \(stride) padding \(padding)")
            assertClose(w.gradArray!, ref.dw.map { 2 * $0 }, 1e-5, "accumulated dW, stride \(stride) padding \(padding)")
        }
    }

    func testLinearMatchesNaiveLoops() {
        let x = Tensor.uniform([5, 7], seed: 1, requiresGrad: true), w = Tensor.uniform([3, 7], seed: 2, requiresGrad: true)
        let b = Tensor.uniform([3], seed: 3, requiresGrad: true)
        let y = linear(x, w, b)
        for i in 0..<5 { for o in 0..<3 {
            var s = b.data[o]
            for j in 0..<7 { s += x.data[i * 7 + j] * w.data[o * 7 + j] }
            XCTAssertEqual(y.data[i * 3 + o], s, accuracy: 1e-5)
        } }
    }

    func testMaxPoolMatchesNaiveLoops() {
        for (k, s, p, hw) in [(2, 2, 0, 7), (3, 2, 1, 9), (2, 1, 0, 5), (3, 3, 0, 9)] {
            let x = Tensor.uniform([2, 3, hw, hw], seed: UInt64(k * 10 + s), requiresGrad: true)
            let y = maxPool2d(x, kernel: k, stride: s, padding: p)
            let ho = (hw + 2 * p - k) / s + 1
            XCTAssertEqual(y.shape, [2, 3, ho, ho])
            for plane in 0..<6 { for oh in 0..<ho { for ow in 0..<ho {
                var best = -Float.infinity
                for i in 0..<k { for j in 0..<k {
                    let ih = oh * s - p + i, iw = ow * s - p + j
                    if ih >= 0, ih < hw, iw >= 0, iw < hw { best = max(best, x.data[plane * hw * hw + ih * hw + iw]) }
                } }
                XCTAssertEqual(y.data[plane * ho * ho + oh * ho + ow], best)
            } } }
            // Backward: the gradient of sum(y) counts how often each input was a window's max.
            Tape.current.backward(y, seed: [Float](repeating: 1, count: y.count))
            XCTAssertEqual(x.gradArray!.reduce(0, +), Float(y.count))
        }
    }

    func testAvgPoolAndUpsampleMatchNaiveLoops() {
        let x = Tensor.uniform([1, 2, 5, 5], seed: 9)
        let y = avgPool2d(x, kernel: 2)
        XCTAssertEqual(y.shape, [1, 2, 2, 2])
        let expected = (x.data[0] + x.data[1] + x.data[5] + x.data[6]) / 4
        XCTAssertEqual(y.data[0], expected, accuracy: 1e-6)
        let u = upsampleNearest2x(x)
        XCTAssertEqual(u.shape, [1, 2, 10, 10])
        for c in 0..<2 { for i in 0..<10 { for j in 0..<10 {
            XCTAssertEqual(u.data[c * 100 + i * 10 + j], x.data[c * 25 + (i / 2) * 5 + j / 2])
        } } }
    }

    func testCrossEntropyValue() {
        let z = Tensor([1, 2, 3, 1, 1, 1], shape: [2, 3])
        let l = crossEntropy(z, labels: [2, 0])
        let expected = (-(3 - Foundation.log(Foundation.exp(1) + Foundation.exp(2) + Foundation.exp(3))) + Foundation.log(3.0)) / 2
        XCTAssertEqual(Double(l.scalar), expected, accuracy: 1e-6)
    }
}
