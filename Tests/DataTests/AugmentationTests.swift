import Data
import Engine
import XCTest

final class AugmentationTests: XCTestCase {
    let h = 5, w = 4

    func dataset(channels: Int = 2, n: Int = 20) -> Dataset {
        Dataset(name: "aug/train", sampleShape: [channels, h, w], uint8Pixels: Fixtures.images(n: n, h: h, w: w, channels: channels),
                labels: (0..<n).map { Int32($0 % 3) })
    }

    /// The expected normalised sample, optionally mirrored.
    func normalised(_ d: Dataset, _ i: Int, mean: [Float], std: [Float], mirrored: Bool = false) -> [Float] {
        var raw = [Float](repeating: 0, count: d.sampleSize)
        raw.withUnsafeMutableBufferPointer { d.copySample(i, into: $0.baseAddress!) }
        var out = raw
        let plane = h * w
        for c in 0..<d.sampleShape[0] {
            for y in 0..<h {
                for x in 0..<w {
                    let sx = mirrored ? w - 1 - x : x
                    out[c * plane + y * w + x] = (raw[c * plane + y * w + sx] - mean[c]) / std[c]
                }
            }
        }
        return out
    }

    func sample(_ t: Tensor, _ k: Int, size: Int) -> [Float] { Array(t.array[(k * size)..<((k + 1) * size)]) }

    func assertClose(_ a: [Float], _ b: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) where abs(x - y) > 1e-5 {
            XCTFail("\(x) != \(y)", file: file, line: line)
            return
        }
    }

    func testNoAugmentationIsExactNormalisedCopy() {
        let d = dataset()
        let mean: [Float] = [0.4, 0.6], std: [Float] = [0.25, 0.2]
        let b = BatchBuilder(dataset: d, mean: mean, std: std)
        let idx = [3, 0, 17, 3]
        let (images, labels) = b.batch(indices: idx, step: 0)
        XCTAssertEqual(images.shape, [4, 2, h, w])
        XCTAssertEqual(labels, idx.map { $0 % 3 })
        for (k, i) in idx.enumerated() { assertClose(sample(images, k, size: d.sampleSize), normalised(d, i, mean: mean, std: std)) }
    }

    func testFloatStorageNormalises() {
        let px = (0..<(3 * 1 * h * w)).map { Float($0) * 0.5 }
        let d = Dataset(name: "f", sampleShape: [1, h, w], floatPixels: px, labels: [0, 1, 2])
        let b = BatchBuilder(dataset: d, mean: [2], std: [4])
        let (images, _) = b.batch(indices: [2], step: 0)
        assertClose(images.array, px[(2 * h * w)...].map { ($0 - 2) / 4 })
    }

    func testFlipIsReproducibleAndMirrors() {
        let d = dataset()
        let mean: [Float] = [0.5, 0.5], std: [Float] = [0.5, 0.5]
        let b = BatchBuilder(dataset: d, mean: mean, std: std, augmentation: .init(horizontalFlip: true), seed: 3)
        let idx = Array(0..<20)
        let first = b.batch(indices: idx, step: 11).images.array
        let second = b.batch(indices: idx, step: 11).images.array
        XCTAssertEqual(first, second)
        // The same sample in another batch position (another rank's batch) gets the same draw.
        let alone = b.batch(indices: [7], step: 11).images.array
        XCTAssertEqual(alone, Array(first[(7 * d.sampleSize)..<(8 * d.sampleSize)]))
        var flipped = 0
        for i in idx {
            let got = Array(first[(i * d.sampleSize)..<((i + 1) * d.sampleSize)])
            let plain = normalised(d, i, mean: mean, std: std), mirror = normalised(d, i, mean: mean, std: std, mirrored: true)
            if got == mirror && got != plain { flipped += 1 } else { assertClose(got, plain) }
        }
        XCTAssertGreaterThan(flipped, 2)
        XCTAssertLessThan(flipped, 18)
        XCTAssertNotEqual(b.batch(indices: idx, step: 12).images.array, first, "another step draws again")
    }

    func testCropKeepsShapeAndShiftsContent() {
        let d = dataset(channels: 1, n: 30)
        let b = BatchBuilder(dataset: d, mean: [0], std: [1], augmentation: .init(randomCropPadding: 2), seed: 1)
        let (images, _) = b.batch(indices: Array(0..<30), step: 4)
        XCTAssertEqual(images.shape, [30, 1, h, w])
        XCTAssertEqual(images.array, b.batch(indices: Array(0..<30), step: 4).images.array)
        // Every output is the source shifted by some (dy, dx) in -2...2 with zero fill.
        var shifted = 0
        for i in 0..<30 {
            let got = sample(images, i, size: d.sampleSize)
            let src = normalised(d, i, mean: [0], std: [1])
            var match: (Int, Int)?
            for oy in -2...2 {
                for ox in -2...2 {
                    var ok = true
                    for y in 0..<h where ok {
                        for x in 0..<w {
                            let sy = y + oy, sx = x + ox
                            let want: Float = (sy >= 0 && sy < h && sx >= 0 && sx < w) ? src[sy * w + sx] : 0
                            if abs(got[y * w + x] - want) > 1e-6 { ok = false; break }
                        }
                    }
                    if ok && match == nil { match = (oy, ox) }
                }
            }
            XCTAssertNotNil(match, "sample \(i) is not a shifted crop")
            if let m = match, m != (0, 0) { shifted += 1 }
        }
        XCTAssertGreaterThan(shifted, 10)
    }

    func testCropAndFlipTogetherKeepStatisticsShape() {
        let d = dataset(channels: 3, n: 8)
        let aug = Augmentation(randomCropPadding: 4, horizontalFlip: true)
        let b = BatchBuilder(dataset: d, mean: [0.1, 0.2, 0.3], std: [1, 2, 3], augmentation: aug, seed: 9)
        let (images, labels) = b.batch(indices: [7, 1], step: 0)
        XCTAssertEqual(images.shape, [2, 3, h, w])
        XCTAssertEqual(labels, [1, 1])
        XCTAssertTrue(images.array.allSatisfy { $0.isFinite })
        XCTAssertEqual(images.array, b.batch(indices: [7, 1], step: 0).images.array)
    }
}
