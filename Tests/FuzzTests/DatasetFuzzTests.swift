import Data
import Foundation
import XCTest

/// The dataset readers on mutated copies of valid files. The seeds are written with the DataTests
/// fixtures (Fixtures.swift is that file, linked) and the library's HDF5 writer. Each input is read
/// the way `codistill data info` reads it: both splits, then the summary over every pixel, so a
/// dataset that loads but whose shape or labels lie is caught too.
final class DatasetFuzzTests: DataTestCase {
    /// Reads both splits of `path` and summarises them; throws what the loader throws.
    func readEverything(_ path: String) throws {
        for split in Split.allCases {
            let d = try DatasetLoader.load(path: path, split: split)
            _ = DatasetLoader.summary(d)
            var sample = [Float](repeating: 0, count: d.sampleSize)
            sample.withUnsafeMutableBufferPointer { d.copySample(d.count - 1, into: $0.baseAddress!) }
        }
    }

    /// Mutates one of `files` (each starts as its seed bytes) per input, restoring the others;
    /// `read` is given the mutated file.
    func fuzzFiles(_ name: String, _ files: [String], kinds: [ByteMutator.Kind] = ByteMutator.Kind.allCases,
                   sparingLibraryCrashes: Bool = false, resealing: Bool = false, read: @escaping (String) throws -> Void) throws {
        let seeds = try files.map { try [UInt8](Foundation.Data(contentsOf: URL(fileURLWithPath: $0))) }
        let spared = seeds.map { sparingLibraryCrashes ? GlobalHeapIndexes.ranges(in: $0) + AttributeDescriptions.ranges(in: $0) : [] }
        for f in files { XCTAssertNoThrow(try read(f), "the seed \(f) must load") }
        var campaign = Campaign(name)
        var previous = 0
        try campaign.run(input: { i, rng in
            try Fixtures.write(seeds[previous], to: files[previous])
            let k = rng.below(files.count)
            var mutator = ByteMutator(rng: SplitMix64(seed: rng.next()))
            var (bytes, applied) = mutator.mutate(seeds[k], kinds: kinds)
            GlobalHeapIndexes.restore(spared[k], of: seeds[k], in: &bytes)
            try Fixtures.write(bytes, to: files[k])
            previous = k
            return "\(URL(fileURLWithPath: files[k]).lastPathComponent), \(bytes.count) bytes, \(applied)"
                + (resealing ? Reseal.mostInputs(files[k], rng: &rng) : "")
        }, read: { try read(files[previous]) })
    }

    func testIDX() throws {
        _ = try Fixtures.writeIDX(dir: dir, trainN: 12, testN: 5, h: 4, w: 3, classes: 4)
        let files = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"].map(path)
        try fuzzFiles("idx", files) { [dir] _ in try self.readEverything(dir) }
    }

    func testIDXGzip() throws {
        _ = try Fixtures.writeIDX(dir: dir, trainN: 12, testN: 5, h: 4, w: 3, classes: 4, gzip: true)
        let files = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
            .map { path($0 + ".gz") }
        try fuzzFiles("idx gzip", files) { [dir] _ in try self.readEverything(dir) }
    }

    func testCIFAR() throws {
        // CIFAR-10 (two training batches) and CIFAR-100 (coarse and fine labels), two records a file.
        func records(_ labels: [[UInt8]], seed: Int) -> [UInt8] {
            let pixels = Fixtures.images(n: labels.count, h: 32, w: 32, channels: 3, seed: seed)
            return labels.enumerated().flatMap { i, l in l + pixels[(i * 3072)..<((i + 1) * 3072)] }
        }
        let ten = path("cifar-10"), hundred = path("cifar-100")
        for d in [ten, hundred] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        let files: [(String, [UInt8])] = [
            (ten + "/data_batch_1.bin", records([[3], [9]], seed: 1)), (ten + "/data_batch_2.bin", records([[0], [5]], seed: 2)),
            (ten + "/test_batch.bin", records([[1], [2]], seed: 3)),
            (hundred + "/train.bin", records([[1, 42], [19, 99]], seed: 4)), (hundred + "/test.bin", records([[0, 7], [2, 0]], seed: 5)),
        ]
        for (p, bytes) in files { try Fixtures.write(bytes, to: p) }
        try fuzzFiles("cifar", files.map(\.0)) { try self.readEverything(URL(fileURLWithPath: $0).deletingLastPathComponent().path) }
    }

    func testHDF5() throws {
        // The layouts the reader accepts: the library's own uint8 and float32 files (with
        // num_classes, class_names, mean, std) and a single-split file another tool might write.
        let uint8 = path("uint8.h5"), float = path("float.h5"), single = path("single.h5")
        let train = Dataset(name: "toy/train", sampleShape: [2, 3, 2], uint8Pixels: Fixtures.images(n: 5, h: 3, w: 2, channels: 2),
                            labels: [0, 1, 2, 1, 0], classes: 3, classNames: ["cat", "dog", "emu"])
        let test = Dataset(name: "toy/test", sampleShape: [2, 3, 2], uint8Pixels: Fixtures.images(n: 2, h: 3, w: 2, channels: 2, seed: 5),
                           labels: [2, 2], classes: 3, classNames: ["cat", "dog", "emu"])
        try HDF5DatasetWriter.write(train: train, test: test, to: uint8)
        let px: [Float] = (0..<16).map { Float($0) * 0.37 - 2 }
        try HDF5DatasetWriter.write(train: Dataset(name: "f/train", sampleShape: [1, 2, 2], floatPixels: px, labels: [3, 0, 1, 2]),
                                    test: Dataset(name: "f/test", sampleShape: [1, 2, 2], floatPixels: Array(px[..<8]), labels: [1, 1]),
                                    to: float)
        RawH5.create(single) { f in
            RawH5.uint8(f, "images", dims: [3, 2, 2], Fixtures.images(n: 3, h: 2, w: 2))
            RawH5.int32(f, "labels", [1, 0, 1])
            RawH5.fixedStringsAttribute(f, "class_names", ["even", "odd"])
        }
        // HDF5 checks the file's end against the superblock's on opening, so mutations that
        // move bytes are rejected there; the ones that keep the layout reach the object headers.
        // The string attributes' heap indexes are spared: libhdf5 crashes on them (GlobalHeapIndexes).
        try fuzzFiles("hdf5", [uint8, float, single], kinds: ByteMutator.inPlace, sparingLibraryCrashes: true, resealing: true) {
            try self.readEverything($0)
        }
    }
}
