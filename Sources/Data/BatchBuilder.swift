import Engine
import Foundation

public struct Augmentation: Equatable {
    public var randomCropPadding: Int   // 0 = off; else pad by this many zero pixels and crop back to H x W at a random offset
    public var horizontalFlip: Bool
    public init(randomCropPadding: Int = 0, horizontalFlip: Bool = false) {
        precondition(randomCropPadding >= 0, "negative crop padding")
        self.randomCropPadding = randomCropPadding
        self.horizontalFlip = horizontalFlip
    }

    public var isIdentity: Bool { randomCropPadding == 0 && !horizontalFlip }
}

/// The check `BatchBuilder` relies on, for the boundaries where statistics come in from outside
/// (computed from a dataset, read from an HDF5 attribute or a checkpoint): one mean and one positive,
/// finite std per channel. A constant channel has std 0 and would turn every input into inf/NaN,
/// silently: training then reports NaN losses, not the cause.
public func checkNormalization(mean: [Float], std: [Float], channels: Int, source: String, fix: String) throws {
    guard mean.count == channels, std.count == channels else {
        throw DataError("\(source): the normalisation has \(mean.count) means and \(std.count) stds for \(channels) channels; \(fix)")
    }
    if let c = std.indices.first(where: { !(std[$0] > 0) || !std[$0].isFinite }) {
        throw DataError("\(source): channel \(c) has std \(std[c])\(std[c] == 0 ? " (the channel is constant)" : ""), "
            + "so normalising by it divides by zero; \(fix)")
    }
    if let c = mean.indices.first(where: { !mean[$0].isFinite }) {
        throw DataError("\(source): channel \(c) has mean \(mean[c]); \(fix)")
    }
}

/// Fills a batch tensor: normalised ((x - mean[c]) / std[c]) and augmented; augmentation randomness comes from
/// RandomGenerator(seed: seed, stream: "augment-\(step)-\(sampleIndex)") so it is reproducible and independent of rank count.
///
/// Per sample, the crop offsets are drawn first (dy, then dx, each uniform in 0...2p) and then the
/// flip (uniform() < 0.5), each only when enabled. As torchvision's RandomCrop(padding=p) before
/// Normalize, the padding is raw pixel value 0, so padded pixels come out as -mean[c] / std[c].
/// Flipping is applied after cropping.
public struct BatchBuilder {
    public let dataset: Dataset
    public let mean: [Float]
    public let std: [Float]
    public let augmentation: Augmentation
    public let seed: UInt64
    /// uint8 storage: for each channel, the normalised value of every byte (256 entries per channel).
    private let table: [Float]

    public init(dataset: Dataset, mean: [Float], std: [Float], augmentation: Augmentation = .init(), seed: UInt64 = 0) {
        let channels = dataset.sampleShape[0]
        // Callers validate statistics from outside with checkNormalization (a thrown error); these
        // catch a caller that did not.
        precondition(mean.count == channels && std.count == channels,
                     "mean/std need \(channels) values for \(dataset.name), got \(mean.count)/\(std.count)")
        precondition(std.allSatisfy { $0 > 0 && $0.isFinite }, "std must be positive, got \(std)")
        self.dataset = dataset
        self.mean = mean
        self.std = std
        self.augmentation = augmentation
        self.seed = seed
        var table = [Float](repeating: 0, count: dataset.pixelType == .uint8 ? 256 * channels : 0)
        if dataset.pixelType == .uint8 {
            for c in 0..<channels {
                for v in 0..<256 { table[256 * c + v] = (Float(v) * Dataset.byteScale - mean[c]) / std[c] }
            }
        }
        self.table = table
    }

    /// Returns (images [n, C, H, W], labels) for the given dataset indices.
    public func batch(indices: [Int], step: Int) -> (images: Tensor, labels: [Int]) {
        let shape = dataset.sampleShape
        let size = dataset.sampleSize
        let images = Tensor(uninitialized: [indices.count] + shape)
        var labels = [Int](repeating: 0, count: indices.count)
        for (k, i) in indices.enumerated() {
            precondition(i >= 0 && i < dataset.count, "sample \(i) out of range 0..<\(dataset.count) in \(dataset.name)")
            labels[k] = Int(dataset.labels[i])
            var dy = 0, dx = 0, flip = false
            let p = augmentation.randomCropPadding
            if !augmentation.isIdentity {
                var rng = RandomGenerator(seed: seed, stream: "augment-\(step)-\(i)")
                if p > 0 {
                    dy = rng.int(below: 2 * p + 1)
                    dx = rng.int(below: 2 * p + 1)
                }
                if augmentation.horizontalFlip { flip = rng.uniform() < 0.5 }
            }
            fill(images.data + k * size, sample: i, dy: dy - p, dx: dx - p, flip: flip)
        }
        return (images, labels)
    }

    /// Writes sample `i` into `dst`: output pixel (y, x) is source pixel (y + oy, x' + ox) where x' = W-1-x
    /// when flipped, else x; pixels outside the image are the normalised zero.
    private func fill(_ dst: UnsafeMutablePointer<Float>, sample i: Int, dy oy: Int, dx ox: Int, flip: Bool) {
        let channels = dataset.sampleShape[0], h = dataset.sampleShape[1], w = dataset.sampleShape[2]
        let plane = h * w
        let base = i * dataset.sampleSize
        // Valid output columns (before flipping): x with 0 <= x + ox < w.
        let x0 = max(0, -ox), x1 = min(w, w - ox)
        switch dataset.pixelType {
        case .uint8:
            let src = dataset.uint8Pixels + base
            table.withUnsafeBufferPointer { tb in
                for c in 0..<channels {
                    let lut = tb.baseAddress! + 256 * c
                    let pad = lut[0]
                    for y in 0..<h {
                        let out = dst + c * plane + y * w
                        let sy = y + oy
                        if sy < 0 || sy >= h || x0 >= x1 {
                            out.update(repeating: pad, count: w)
                            continue
                        }
                        let row = src + c * plane + sy * w
                        if !flip {
                            for x in 0..<x0 { out[x] = pad }
                            for x in x0..<x1 { out[x] = lut[Int(row[x + ox])] }
                            for x in x1..<w { out[x] = pad }
                        } else {
                            for x in 0..<x0 { out[w - 1 - x] = pad }
                            for x in x0..<x1 { out[w - 1 - x] = lut[Int(row[x + ox])] }
                            for x in x1..<w { out[w - 1 - x] = pad }
                        }
                    }
                }
            }
        case .float32:
            let src = dataset.floatPixels + base
            for c in 0..<channels {
                let m = mean[c], s = std[c]
                let pad = (0 - m) / s
                for y in 0..<h {
                    let out = dst + c * plane + y * w
                    let sy = y + oy
                    if sy < 0 || sy >= h || x0 >= x1 {
                        out.update(repeating: pad, count: w)
                        continue
                    }
                    let row = src + c * plane + sy * w
                    if !flip {
                        for x in 0..<x0 { out[x] = pad }
                        for x in x0..<x1 { out[x] = (row[x + ox] - m) / s }
                        for x in x1..<w { out[x] = pad }
                    } else {
                        for x in 0..<x0 { out[w - 1 - x] = pad }
                        for x in x0..<x1 { out[w - 1 - x] = (row[x + ox] - m) / s }
                        for x in x1..<w { out[w - 1 - x] = pad }
                    }
                }
            }
        }
    }
}
