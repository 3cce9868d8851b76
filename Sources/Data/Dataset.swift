import Foundation

/// A labelled image dataset held in memory. Pixels are stored as UInt8 (scaled by 1/255 on read) or Float32.
///
/// The pixels of all samples live in one block, sample-major and CHW inside a sample, exactly as
/// IDX, CIFAR binary and the HDF5 layout store them, so loading is one read (or inflate) and
/// `copySample` is one pass over `sampleSize` values.
public final class Dataset {
    public enum PixelType: String {
        case uint8, float32
    }

    public let name: String            // e.g. "fashion-mnist/train"
    public let sampleShape: [Int]      // [C, H, W]
    public let count: Int
    public let classes: Int
    public let labels: [Int32]
    public let classNames: [String]?
    /// How the pixels are stored: uint8 (read as value / 255) or float32 (read as stored).
    public let pixelType: PixelType
    /// Where the data came from, for `codistill data info`: "IDX (gzip)", "CIFAR-10 binary", "HDF5", ...
    public let format: String

    public var sampleSize: Int { sampleShape.reduce(1, *) }

    private let storage: ByteBuffer
    private let offset: Int
    private let knownStatistics: (mean: [Float], std: [Float])?
    private var cachedStatistics: (mean: [Float], std: [Float])?
    private let statisticsLock = NSLock()

    /// Adopts `storage` (pixels start at byte `offset`); the loaders have validated everything.
    init(name: String, format: String, sampleShape: [Int], count: Int, pixelType: PixelType,
         storage: ByteBuffer, offset: Int, labels: [Int32], classes: Int, classNames: [String]?,
         statistics: (mean: [Float], std: [Float])? = nil) {
        precondition(sampleShape.count == 3, "sample shape must be [C, H, W], got \(sampleShape)")
        precondition(labels.count == count, "\(labels.count) labels for \(count) samples")
        precondition(labels.allSatisfy { $0 >= 0 && Int($0) < classes }, "a label of \(name) is outside 0..<\(classes)")
        let bytesPerValue = pixelType == .uint8 ? 1 : 4
        precondition(storage.count - offset >= count * sampleShape.reduce(1, *) * bytesPerValue,
                     "pixel storage too small for \(count) samples of \(sampleShape)")
        self.name = name
        self.format = format
        self.sampleShape = sampleShape
        self.count = count
        self.pixelType = pixelType
        self.storage = storage
        self.offset = offset
        self.labels = labels
        self.classes = classes
        self.classNames = classNames
        if let s = statistics, s.mean.count == sampleShape[0], s.std.count == sampleShape[0] {
            self.knownStatistics = s
        } else {
            self.knownStatistics = nil
        }
    }

    /// An in-memory dataset of uint8 pixels (sample-major, CHW), e.g. for tests or generated data.
    public convenience init(name: String, sampleShape: [Int], uint8Pixels pixels: [UInt8], labels: [Int32],
                            classes: Int? = nil, classNames: [String]? = nil) {
        let buffer = ByteBuffer(uninitializedCount: pixels.count)
        pixels.withUnsafeBytes { buffer.base.copyMemory(from: $0.baseAddress!, byteCount: pixels.count) }
        self.init(name: name, format: "memory (uint8)", sampleShape: sampleShape, count: labels.count,
                  pixelType: .uint8, storage: buffer, offset: 0, labels: labels,
                  classes: classes ?? Int(labels.max() ?? -1) + 1, classNames: classNames)
        precondition(pixels.count == count * sampleSize, "\(pixels.count) pixels for \(count) samples of \(sampleShape)")
    }

    /// An in-memory dataset of float32 pixels (sample-major, CHW).
    public convenience init(name: String, sampleShape: [Int], floatPixels pixels: [Float], labels: [Int32],
                            classes: Int? = nil, classNames: [String]? = nil) {
        let buffer = ByteBuffer(uninitializedCount: pixels.count * 4)
        pixels.withUnsafeBytes { buffer.base.copyMemory(from: $0.baseAddress!, byteCount: pixels.count * 4) }
        self.init(name: name, format: "memory (float32)", sampleShape: sampleShape, count: labels.count,
                  pixelType: .float32, storage: buffer, offset: 0, labels: labels,
                  classes: classes ?? Int(labels.max() ?? -1) + 1, classNames: classNames)
        precondition(pixels.count == count * sampleSize, "\(pixels.count) pixels for \(count) samples of \(sampleShape)")
    }

    /// The first pixel of the uint8 block (only when `pixelType == .uint8`).
    var uint8Pixels: UnsafePointer<UInt8> {
        precondition(pixelType == .uint8)
        return UnsafePointer(storage.bytes + offset)
    }

    /// The first pixel of the float32 block (only when `pixelType == .float32`).
    var floatPixels: UnsafePointer<Float> {
        precondition(pixelType == .float32)
        return UnsafePointer((storage.base + offset).assumingMemoryBound(to: Float.self))
    }

    /// Whether the mean/std came with the data (HDF5 attributes) rather than being computed.
    public var hasStoredStatistics: Bool { knownStatistics != nil }

    /// Per-channel mean and std of the pixel values in [0,1]-scale (from HDF5 attrs if present, else computed once over the data).
    ///
    /// The std is the population std over all pixels of a channel (what torchvision's usual
    /// constants are, e.g. 0.2860 / 0.3530 for Fashion-MNIST train).
    public func channelStatistics() -> (mean: [Float], std: [Float]) {
        if let s = knownStatistics { return s }
        statisticsLock.lock()
        defer { statisticsLock.unlock() }
        if let s = cachedStatistics { return s }
        let s = computeStatistics()
        cachedStatistics = s
        return s
    }

    private func computeStatistics() -> (mean: [Float], std: [Float]) {
        let channels = sampleShape[0]
        let plane = sampleShape[1] * sampleShape[2]
        let size = sampleSize
        var mean = [Float](repeating: 0, count: channels)
        var std = [Float](repeating: 0, count: channels)
        let n = Double(count * plane)
        guard n > 0 else { return (mean, std) }
        switch pixelType {
        case .uint8:
            // Exact: a 256-bin histogram per channel, then integer sums.
            var histogram = [Int](repeating: 0, count: 256 * channels)
            histogram.withUnsafeMutableBufferPointer { h in
                let p = uint8Pixels
                for i in 0..<count {
                    let sample = p + i * size
                    for c in 0..<channels {
                        let row = sample + c * plane
                        let hc = h.baseAddress! + 256 * c
                        for k in 0..<plane { hc[Int(row[k])] += 1 }
                    }
                }
            }
            for c in 0..<channels {
                var s1 = 0, s2 = 0
                for v in 0..<256 {
                    let k = histogram[256 * c + v]
                    s1 += k * v
                    s2 += k * v * v
                }
                let m = Double(s1) / n / 255
                let variance = max(Double(s2) / n / (255 * 255) - m * m, 0)
                mean[c] = Float(m)
                std[c] = Float(variance.squareRoot())
            }
        case .float32:
            // Two passes in Double: the mean, then the squared deviations (no cancellation).
            let p = floatPixels
            for c in 0..<channels {
                var s = 0.0
                for i in 0..<count {
                    let row = p + i * size + c * plane
                    var partial: Float = 0
                    for k in 0..<plane { partial += row[k] }
                    s += Double(partial)
                }
                let m = s / n
                var q = 0.0
                for i in 0..<count {
                    let row = p + i * size + c * plane
                    var partial = 0.0
                    for k in 0..<plane { let d = Double(row[k]) - m; partial += d * d }
                    q += partial
                }
                mean[c] = Float(m)
                std[c] = Float((q / n).squareRoot())
            }
        }
        return (mean, std)
    }

    /// Writes sample i's pixels (in [0,1] for uint8 storage, as stored for float32) into dst (sampleSize floats).
    public func copySample(_ i: Int, into dst: UnsafeMutablePointer<Float>) {
        precondition(i >= 0 && i < count, "sample \(i) out of range 0..<\(count) in \(name)")
        let size = sampleSize
        switch pixelType {
        case .uint8:
            let src = uint8Pixels + i * size
            for k in 0..<size { dst[k] = Float(src[k]) * Dataset.byteScale }
        case .float32:
            dst.update(from: floatPixels + i * size, count: size)
        }
    }

    /// The factor that maps a stored byte to [0, 1]. Every reader of uint8 pixels uses this same
    /// constant, so a normalised batch and `copySample` agree bit for bit.
    public static let byteScale: Float = 1.0 / 255.0
}
