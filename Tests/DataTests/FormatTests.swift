import CHDF5
import Data
import Foundation
import XCTest

final class FormatTests: DataTestCase {
    func testIDXRawRoundTrip() throws {
        let f = try Fixtures.writeIDX(dir: dir)
        let train = try DatasetLoader.load(path: dir, split: .train)
        XCTAssertEqual(train.count, 12)
        XCTAssertEqual(train.sampleShape, [1, 4, 3])
        XCTAssertEqual(train.sampleSize, 12)
        XCTAssertEqual(train.classes, 4)
        XCTAssertEqual(train.format, "IDX")
        XCTAssertTrue(train.name.hasSuffix("/train"))
        XCTAssertEqual(train.labels, f.trainLabels.map(Int32.init))
        XCTAssertEqual(Fixtures.pixels(train), Fixtures.scaled(f.train))
        let test = try DatasetLoader.load(path: dir, split: .test)
        XCTAssertEqual(test.count, 5)
        XCTAssertEqual(test.labels, f.testLabels.map(Int32.init))
        XCTAssertEqual(Fixtures.pixels(test), Fixtures.scaled(f.test))
    }

    func testIDXGzipRoundTrip() throws {
        let f = try Fixtures.writeIDX(dir: dir, gzip: true)
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("train-images-idx3-ubyte.gz")))
        let train = try DatasetLoader.load(path: dir, split: .train)
        XCTAssertEqual(train.format, "IDX (gzip)")
        XCTAssertEqual(Fixtures.pixels(train), Fixtures.scaled(f.train))
        XCTAssertEqual(train.labels, f.trainLabels.map(Int32.init))
        let test = try DatasetLoader.load(path: dir, split: .test)
        XCTAssertEqual(Fixtures.pixels(test), Fixtures.scaled(f.test))
    }

    func testGzipDetectedByMagicNotName() throws {
        // A gzipped file without the .gz suffix is still inflated.
        let f = try Fixtures.writeIDX(dir: dir, gzip: true)
        for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            try FileManager.default.moveItem(atPath: path(name + ".gz"), toPath: path(name))
        }
        let train = try DatasetLoader.load(path: dir, split: .train)
        XCTAssertEqual(Fixtures.pixels(train), Fixtures.scaled(f.train))
    }

    func testLargeGzipGrowsBuffer() throws {
        // Inflating past the initial guess (multi-member file: the trailer size is only the last member's).
        let n = 600, h = 28, w = 28
        let px = Fixtures.images(n: n, h: h, w: w)
        let bytes = Fixtures.idxImages(px, n: n, h: h, w: w)
        let half = bytes.count / 2
        try Fixtures.write(Array(bytes[..<half]), to: path("a"))
        try Fixtures.write(Array(bytes[half...]), to: path("b"))
        try Fixtures.gzip(path("a"))
        try Fixtures.gzip(path("b"))
        let joined = try Foundation.Data(contentsOf: URL(fileURLWithPath: path("a.gz"))) + Foundation.Data(contentsOf: URL(fileURLWithPath: path("b.gz")))
        try joined.write(to: URL(fileURLWithPath: path("train-images-idx3-ubyte.gz")))
        try Fixtures.write(Fixtures.idxLabels(Fixtures.labels(n: n, classes: 10)), to: path("train-labels-idx1-ubyte"))
        let train = try DatasetLoader.load(path: dir, split: .train)
        XCTAssertEqual(train.count, n)
        XCTAssertEqual(Fixtures.pixels(train), Fixtures.scaled(px))
    }

    func testEMNISTStyleNaming() throws {
        let f = try Fixtures.writeIDX(dir: dir, classes: 7, gzip: true) { split, kind in
            "emnist-balanced-\(split == "t10k" ? "test" : split)-\(kind)"
        }
        let train = try DatasetLoader.load(path: dir, split: .train)
        let test = try DatasetLoader.load(path: dir, split: .test)
        XCTAssertEqual(train.labels, f.trainLabels.map(Int32.init))
        XCTAssertEqual(Fixtures.pixels(test), Fixtures.scaled(f.test))
        XCTAssertEqual(train.classes, 7)
        XCTAssertEqual(test.classes, 7)
    }

    func testClassesAgreeAcrossSplits() throws {
        // The test split has labels 0..1 only; classes still come from both splits.
        try Fixtures.write(Fixtures.idxImages(Fixtures.images(n: 6, h: 2, w: 2), n: 6, h: 2, w: 2), to: path("train-images-idx3-ubyte"))
        try Fixtures.write(Fixtures.idxLabels([0, 1, 2, 3, 4, 5]), to: path("train-labels-idx1-ubyte"))
        try Fixtures.write(Fixtures.idxImages(Fixtures.images(n: 2, h: 2, w: 2), n: 2, h: 2, w: 2), to: path("t10k-images-idx3-ubyte"))
        try Fixtures.write(Fixtures.idxLabels([0, 1]), to: path("t10k-labels-idx1-ubyte"))
        XCTAssertEqual(try DatasetLoader.load(path: dir, split: .test).classes, 6)
        XCTAssertEqual(try DatasetLoader.load(path: dir, split: .train).classes, 6)
    }

    private func cifarRecords(n: Int, labelBytes: [(Int) -> UInt8], seed: Int) -> (bytes: [UInt8], pixels: [UInt8], labels: [UInt8]) {
        let px = Fixtures.images(n: n, h: 32, w: 32, channels: 3, seed: seed)
        var bytes: [UInt8] = [], labels: [UInt8] = []
        for i in 0..<n {
            let lb = labelBytes.map { $0(i) }
            bytes += lb
            labels.append(lb.last!)
            bytes += px[(i * 3072)..<((i + 1) * 3072)]
        }
        return (bytes, px, labels)
    }

    func testCIFAR10() throws {
        var trainPixels: [UInt8] = [], trainLabels: [UInt8] = []
        for b in 1...5 {
            let r = cifarRecords(n: 2, labelBytes: [{ UInt8(($0 + b) % 10) }], seed: b)
            try Fixtures.write(r.bytes, to: path("data_batch_\(b).bin"))
            trainPixels += r.pixels
            trainLabels += r.labels
        }
        let t = cifarRecords(n: 3, labelBytes: [{ UInt8($0 * 3 % 10) }], seed: 9)
        try Fixtures.write(t.bytes, to: path("test_batch.bin"))
        let train = try DatasetLoader.load(path: dir, split: .train)
        XCTAssertEqual(train.count, 10)
        XCTAssertEqual(train.sampleShape, [3, 32, 32])
        XCTAssertEqual(train.classes, 10)
        XCTAssertEqual(train.classNames?.first, "airplane")
        XCTAssertEqual(train.format, "CIFAR-10 binary")
        XCTAssertEqual(train.labels, trainLabels.map(Int32.init))
        XCTAssertEqual(Fixtures.pixels(train), Fixtures.scaled(trainPixels))
        let test = try DatasetLoader.load(path: dir, split: .test)
        XCTAssertEqual(test.labels, t.labels.map(Int32.init))
        XCTAssertEqual(Fixtures.pixels(test), Fixtures.scaled(t.pixels))
    }

    func testCIFAR10InsideExtractedSubdirectory() throws {
        let sub = path("cifar-10-batches-bin")
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        let r = cifarRecords(n: 2, labelBytes: [{ UInt8($0) }], seed: 1)
        try Fixtures.write(r.bytes, to: sub + "/data_batch_1.bin")
        try Fixtures.write(r.bytes, to: sub + "/test_batch.bin")
        try "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n".write(toFile: sub + "/batches.meta.txt", atomically: true, encoding: .utf8)
        let d = try DatasetLoader.load(path: dir, split: .test)
        XCTAssertEqual(d.name, "cifar-10-batches-bin/test")
        XCTAssertEqual(d.classNames, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"])
    }

    func testCIFAR100UsesFineLabel() throws {
        let r = cifarRecords(n: 4, labelBytes: [{ UInt8($0 % 20) }, { UInt8(90 + $0) }], seed: 3)
        try Fixtures.write(r.bytes, to: path("train.bin"))
        let t = cifarRecords(n: 2, labelBytes: [{ _ in 1 }, { UInt8(50 + $0) }], seed: 4)
        try Fixtures.write(t.bytes, to: path("test.bin"))
        let train = try DatasetLoader.load(path: dir, split: .train)
        XCTAssertEqual(train.classes, 100)
        XCTAssertEqual(train.format, "CIFAR-100 binary")
        XCTAssertEqual(train.labels, [90, 91, 92, 93])
        XCTAssertEqual(Fixtures.pixels(train), Fixtures.scaled(r.pixels))
        let test = try DatasetLoader.load(path: dir, split: .test)
        XCTAssertEqual(test.labels, [50, 51])
    }

    func testHDF5Uint8RoundTrip() throws {
        let train = Dataset(name: "toy/train", sampleShape: [2, 3, 2], uint8Pixels: Fixtures.images(n: 5, h: 3, w: 2, channels: 2),
                            labels: [0, 1, 2, 1, 0], classes: 3, classNames: ["cat", "dog", "emu"])
        let test = Dataset(name: "toy/test", sampleShape: [2, 3, 2], uint8Pixels: Fixtures.images(n: 2, h: 3, w: 2, channels: 2, seed: 5),
                           labels: [2, 2], classes: 3, classNames: ["cat", "dog", "emu"])
        let file = path("toy.h5")
        try HDF5DatasetWriter.write(train: train, test: test, to: file)
        XCTAssertFalse(FileManager.default.fileExists(atPath: file + ".tmp"))
        for (orig, split) in [(train, Split.train), (test, Split.test)] {
            let d = try DatasetLoader.load(path: file, split: split)
            XCTAssertEqual(d.name, "toy/\(split.rawValue)")
            XCTAssertEqual(d.pixelType, .uint8)
            XCTAssertEqual(d.sampleShape, [2, 3, 2])
            XCTAssertEqual(d.labels, orig.labels)
            XCTAssertEqual(d.classes, 3)
            XCTAssertEqual(d.classNames, ["cat", "dog", "emu"])
            XCTAssertEqual(Fixtures.pixels(d), Fixtures.pixels(orig))
            XCTAssertTrue(d.hasStoredStatistics)
            let stored = d.channelStatistics(), computed = train.channelStatistics()
            XCTAssertEqual(stored.mean, computed.mean)
            XCTAssertEqual(stored.std, computed.std)
        }
    }

    func testHDF5Float32RoundTrip() throws {
        let px: [Float] = (0..<16).map { (i: Int) -> Float in Float(i) * 0.37 - 2 }
        let train = Dataset(name: "f/train", sampleShape: [1, 2, 2], floatPixels: px, labels: [3, 0, 1, 2])
        let test = Dataset(name: "f/test", sampleShape: [1, 2, 2], floatPixels: Array(px[..<8]), labels: [1, 1])
        let file = path("floats.hdf5")
        try HDF5DatasetWriter.write(train: train, test: test, to: file)
        let d = try DatasetLoader.load(path: file, split: .train)
        XCTAssertEqual(d.pixelType, .float32)
        XCTAssertEqual(Fixtures.pixels(d), px)
        XCTAssertEqual(d.labels, [3, 0, 1, 2])
        XCTAssertEqual(d.classes, 4)
        XCTAssertNil(d.classNames)
        let t = try DatasetLoader.load(path: file, split: .test)
        XCTAssertEqual(Fixtures.pixels(t), Array(px[..<8]))
        // Statistics of float data are of the stored values.
        let mean = px.reduce(0, +) / Float(px.count)
        XCTAssertEqual(d.channelStatistics().mean[0], mean, accuracy: 1e-5)
    }

    /// A file written with the raw C API as another tool might: top-level /images [N, H, W] uint8,
    /// /labels int32, class_names as an array of fixed-length strings.
    func testHDF5SingleSplitWrittenByHand() throws {
        let file = path("single.h5")
        let n = 3, h = 2, w = 2
        let pixels = Fixtures.images(n: n, h: h, w: w)
        let labels: [Int32] = [1, 0, 1]
        RawH5.create(file) { f in
            RawH5.uint8(f, "images", dims: [n, h, w], pixels)
            RawH5.int32(f, "labels", labels)
            RawH5.fixedStringsAttribute(f, "class_names", ["even", "odd"])
        }

        for split in Split.allCases {
            let ds = try DatasetLoader.load(path: file, split: split)
            XCTAssertEqual(ds.sampleShape, [1, 2, 2])
            XCTAssertEqual(ds.labels, labels)
            XCTAssertEqual(ds.classes, 2)
            XCTAssertEqual(ds.classNames, ["even", "odd"])
            XCTAssertEqual(Fixtures.pixels(ds), Fixtures.scaled(pixels))
            XCTAssertFalse(ds.hasStoredStatistics)
        }
    }

    /// h5py's compression="gzip": chunked, deflated datasets read like contiguous ones.
    func testHDF5ChunkedCompressed() throws {
        let file = path("compressed.h5")
        let n = 40, h = 6, w = 5
        let pixels = Fixtures.images(n: n, h: h, w: w)
        RawH5.create(file) { f in
            RawH5.group(f, "train")
            let dcpl = H5Pcreate(cd_h5p_dataset_create())
            var chunk: [hsize_t] = [7, 1, hsize_t(h), hsize_t(w)]
            H5Pset_chunk(dcpl, 4, &chunk)
            H5Pset_deflate(dcpl, 6)
            let dims: [hsize_t] = [hsize_t(n), 1, hsize_t(h), hsize_t(w)]
            let s = H5Screate_simple(4, dims, nil)
            let d = H5Dcreate2(f, "train/images", cd_h5t_std_u8le(), s, cd_h5p_default(), dcpl, cd_h5p_default())
            _ = pixels.withUnsafeBytes { H5Dwrite(d, cd_h5t_native_uint8(), cd_h5s_all(), cd_h5s_all(), cd_h5p_default(), $0.baseAddress) }
            H5Dclose(d); H5Sclose(s); H5Pclose(dcpl)
            RawH5.int32(f, "train/labels", (0..<n).map { Int32($0 % 5) })
        }
        let d = try DatasetLoader.load(path: file, split: .train)
        XCTAssertEqual(Fixtures.pixels(d), Fixtures.scaled(pixels))
        XCTAssertEqual(d.classes, 5)
    }

    func testConvertRoundTrip() throws {
        let src = path("mnist-like")
        try FileManager.default.createDirectory(atPath: src, withIntermediateDirectories: true)
        let f = try Fixtures.writeIDX(dir: src, gzip: true)
        let dst = path("out.h5")
        try HDF5DatasetWriter.convert(source: src, destination: dst)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dst + ".tmp"))
        let train = try DatasetLoader.load(path: dst, split: .train)
        let test = try DatasetLoader.load(path: dst, split: .test)
        XCTAssertEqual(train.pixelType, .uint8)
        XCTAssertEqual(train.name, "out/train")
        XCTAssertEqual(Fixtures.pixels(train), Fixtures.scaled(f.train))
        XCTAssertEqual(train.labels, f.trainLabels.map(Int32.init))
        XCTAssertEqual(Fixtures.pixels(test), Fixtures.scaled(f.test))
        XCTAssertEqual(test.labels, f.testLabels.map(Int32.init))
        XCTAssertEqual(train.classes, 4)
        let original = try DatasetLoader.load(path: src, split: .train)
        XCTAssertEqual(train.channelStatistics().mean, original.channelStatistics().mean)
        XCTAssertEqual(train.channelStatistics().std, original.channelStatistics().std)
        // Converting again replaces the file.
        try HDF5DatasetWriter.convert(source: src, destination: dst)
        XCTAssertEqual(try DatasetLoader.load(path: dst, split: .train).count, 12)
    }

    func testChannelStatistics() throws {
        // Channel 0 all 0 and 255 alternating, channel 1 constant 51.
        var px: [UInt8] = []
        for _ in 0..<2 { px += [0, 255, 0, 255] + [51, 51, 51, 51] }
        let d = Dataset(name: "s", sampleShape: [2, 2, 2], uint8Pixels: px, labels: [0, 1])
        let s = d.channelStatistics()
        XCTAssertEqual(s.mean[0], 0.5, accuracy: 1e-7)
        XCTAssertEqual(s.std[0], 0.5, accuracy: 1e-7)
        XCTAssertEqual(s.mean[1], 0.2, accuracy: 1e-7)
        XCTAssertEqual(s.std[1], 0, accuracy: 1e-7)
    }

    func testDescribe() throws {
        _ = try Fixtures.writeIDX(dir: dir, gzip: true)
        let text = try DatasetLoader.describe(path: dir)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[0].hasPrefix("train: IDX (gzip), 12 samples, shape [1, 4, 3] uint8, 4 classes"), String(lines[0]))
        XCTAssertTrue(lines[0].contains("3 per class (balanced)"), String(lines[0]))
        XCTAssertTrue(lines[1].hasPrefix("test: IDX (gzip), 5 samples"), String(lines[1]))
        XCTAssertTrue(lines[1].contains("mean ["), String(lines[1]))
    }
}
