import CHDF5
import Data
import Foundation
import XCTest

/// Every broken input gives a DataError that names the offending file.
final class ErrorTests: DataTestCase {
    func testMissingDirectory() {
        let missing = path("nowhere")
        assertDataError(missing, "does not exist") { _ = try DatasetLoader.load(path: missing, split: .train) }
    }

    func testDirectoryWithoutDataset() throws {
        try Fixtures.write([1, 2, 3], to: path("notes.txt"))
        assertDataError(dir, "notes.txt") { _ = try DatasetLoader.load(path: dir, split: .train) }
    }

    func testMissingSplitFile() throws {
        _ = try Fixtures.writeIDX(dir: dir)
        try FileManager.default.removeItem(atPath: path("t10k-images-idx3-ubyte"))
        assertDataError(dir, "test images") { _ = try DatasetLoader.load(path: dir, split: .test) }
        try FileManager.default.removeItem(atPath: path("train-labels-idx1-ubyte"))
        assertDataError(dir, "train labels") { _ = try DatasetLoader.load(path: dir, split: .train) }
    }

    func testBadMagic() throws {
        _ = try Fixtures.writeIDX(dir: dir)
        let file = path("train-images-idx3-ubyte")
        try Fixtures.write(Fixtures.idxImages(Fixtures.images(n: 12, h: 4, w: 3), n: 12, h: 4, w: 3, magic: 0x0000_0801), to: file)
        assertDataError(file, "bad magic number 0x00000801") { _ = try DatasetLoader.load(path: dir, split: .train) }
        let labels = path("t10k-labels-idx1-ubyte")
        try Fixtures.write(Fixtures.idxLabels([0, 1, 2, 3, 0], magic: 0x0000_0803), to: labels)
        assertDataError(labels, "bad magic number") { _ = try DatasetLoader.load(path: dir, split: .test) }
    }

    func testTruncatedImages() throws {
        _ = try Fixtures.writeIDX(dir: dir)
        let file = path("train-images-idx3-ubyte")
        let full = Fixtures.idxImages(Fixtures.images(n: 12, h: 4, w: 3), n: 12, h: 4, w: 3)
        try Fixtures.write(Array(full.dropLast(5)), to: file)
        assertDataError(file, "truncated") { _ = try DatasetLoader.load(path: dir, split: .train) }
    }

    /// Found by FuzzTests: three 32-bit sizes whose product passes Int.max trapped instead of
    /// being reported as the impossible size it is; a zero side loaded images of no pixels.
    func testImpossibleIDXSizes() throws {
        _ = try Fixtures.writeIDX(dir: dir)
        let file = path("train-images-idx3-ubyte")
        let pixels = Fixtures.images(n: 12, h: 4, w: 3)
        try Fixtures.write(Fixtures.idxImages(pixels, n: 12, h: 0xFFFF_FFFF, w: 0xFFFF_FFFF), to: file)
        assertDataError(file, "truncated", "4294967295 x 4294967295") { _ = try DatasetLoader.load(path: dir, split: .train) }
        try Fixtures.write(Fixtures.idxImages(pixels, n: 12, h: 0, w: 3), to: file)
        assertDataError(file, "0 x 3 pixels", "damaged") { _ = try DatasetLoader.load(path: dir, split: .train) }
    }

    func testTruncatedGzip() throws {
        _ = try Fixtures.writeIDX(dir: dir, trainN: 200, h: 10, w: 10, gzip: true)
        let file = path("train-images-idx3-ubyte.gz")
        let bytes = try [UInt8](Foundation.Data(contentsOf: URL(fileURLWithPath: file)))
        try Fixtures.write(Array(bytes[..<(bytes.count / 2)]), to: file)
        assertDataError(file, "gzip", "truncated") { _ = try DatasetLoader.load(path: dir, split: .train) }
    }

    func testCorruptGzip() throws {
        _ = try Fixtures.writeIDX(dir: dir, trainN: 200, h: 10, w: 10, gzip: true)
        let file = path("train-images-idx3-ubyte.gz")
        var bytes = try [UInt8](Foundation.Data(contentsOf: URL(fileURLWithPath: file)))
        for i in 12..<min(bytes.count - 8, 60) { bytes[i] ^= 0x5A }
        try Fixtures.write(bytes, to: file)
        assertDataError(file, "not a valid gzip file") { _ = try DatasetLoader.load(path: dir, split: .train) }
    }

    func testCountMismatch() throws {
        _ = try Fixtures.writeIDX(dir: dir)
        let labels = path("train-labels-idx1-ubyte")
        try Fixtures.write(Fixtures.idxLabels(Fixtures.labels(n: 11, classes: 4)), to: labels)
        assertDataError(path("train-images-idx3-ubyte"), labels, "12 images", "11 labels") {
            _ = try DatasetLoader.load(path: dir, split: .train)
        }
    }

    func testEmptyFile() throws {
        _ = try Fixtures.writeIDX(dir: dir)
        let file = path("t10k-images-idx3-ubyte")
        try Fixtures.write([], to: file)
        assertDataError(file, "empty") { _ = try DatasetLoader.load(path: dir, split: .test) }
    }

    func testEmptyDataset() throws {
        try Fixtures.write(Fixtures.idxImages([], n: 0, h: 4, w: 4), to: path("train-images-idx3-ubyte"))
        try Fixtures.write(Fixtures.idxLabels([]), to: path("train-labels-idx1-ubyte"))
        assertDataError(path("train-images-idx3-ubyte"), "no images") { _ = try DatasetLoader.load(path: dir, split: .train) }

        let empty = Dataset(name: "e/train", sampleShape: [1, 2, 2], uint8Pixels: [], labels: [])
        let one = Dataset(name: "e/test", sampleShape: [1, 2, 2], uint8Pixels: [1, 2, 3, 4], labels: [0])
        let file = path("empty.h5")
        try HDF5DatasetWriter.write(train: empty, test: one, to: file)
        assertDataError(file, "no samples") { _ = try DatasetLoader.load(path: file, split: .train) }
    }

    func testEmptyHDF5File() throws {
        let file = path("zero.h5")
        try Fixtures.write([], to: file)
        assertDataError(file, "empty") { _ = try DatasetLoader.load(path: file, split: .train) }
        try Fixtures.write([1, 2, 3, 4, 5, 6, 7, 8, 9], to: file)
        assertDataError(file, "not an HDF5 file") { _ = try DatasetLoader.load(path: file, split: .train) }
    }

    func testCIFARTruncatedAndBadLabel() throws {
        var record = [UInt8](repeating: 7, count: 3073)
        try Fixtures.write(record + record.dropLast(100), to: path("data_batch_1.bin"))
        try Fixtures.write(record, to: path("test_batch.bin"))
        assertDataError(path("data_batch_1.bin"), "truncated") { _ = try DatasetLoader.load(path: dir, split: .train) }
        record[0] = 10
        try Fixtures.write(record, to: path("test_batch.bin"))
        assertDataError(path("test_batch.bin"), "label 10") { _ = try DatasetLoader.load(path: dir, split: .test) }
    }

    func testCIFARMissingSplitFile() throws {
        let record = [UInt8](repeating: 1, count: 3073)
        try Fixtures.write(record, to: path("data_batch_1.bin"))
        try Fixtures.write(record, to: path("data_batch_3.bin"))
        assertDataError(path("data_batch_2.bin"), "missing") { _ = try DatasetLoader.load(path: dir, split: .train) }
        assertDataError(path("test_batch.bin"), "missing") { _ = try DatasetLoader.load(path: dir, split: .test) }
    }

    func testHDF5LabelOutOfRange() throws {
        let file = path("range.h5")
        func make(labels: [Int32], numClasses: Int?) {
            RawH5.create(file) { f in
                RawH5.group(f, "train")
                RawH5.uint8(f, "train/images", dims: [labels.count, 1, 1, 2], [UInt8](repeating: 9, count: 2 * labels.count))
                RawH5.int32(f, "train/labels", labels)
                if let c = numClasses { RawH5.intAttribute(f, "num_classes", c) }
            }
        }
        make(labels: [0, 5], numClasses: 6)
        XCTAssertEqual(try DatasetLoader.load(path: file, split: .train).classes, 6)
        make(labels: [0, 2], numClasses: 2)
        assertDataError(file, "/train/labels[1] = 2", "out of range", "num_classes") { _ = try DatasetLoader.load(path: file, split: .train) }
        make(labels: [0, -1], numClasses: nil)
        assertDataError(file, "/train/labels[1] = -1", "out of range") { _ = try DatasetLoader.load(path: file, split: .train) }
    }

    /// The loader hands mean/std attributes to normalisation as they are; std 0 would divide by zero.
    func testHDF5StatisticsAttributesMustBeUsable() throws {
        let file = path("stats.h5")
        func make(mean: [Double], std: [Double]) {
            RawH5.create(file) { f in
                RawH5.group(f, "train")
                RawH5.uint8(f, "train/images", dims: [2, 1, 1, 2], [1, 2, 3, 4])
                RawH5.int32(f, "train/labels", [0, 1])
                RawH5.doublesAttribute(f, "mean", mean)
                RawH5.doublesAttribute(f, "std", std)
            }
        }
        make(mean: [0.5], std: [0.25])
        XCTAssertEqual(try DatasetLoader.load(path: file, split: .train).channelStatistics().std, [0.25])
        make(mean: [0.5], std: [0])
        assertDataError(file, "mean/std", "channel 0 has std 0.0", "delete the attributes") { _ = try DatasetLoader.load(path: file, split: .train) }
        make(mean: [0.5], std: [-1])
        assertDataError(file, "channel 0 has std -1.0") { _ = try DatasetLoader.load(path: file, split: .train) }
        make(mean: [Double.nan], std: [1])
        assertDataError(file, "channel 0 has mean nan") { _ = try DatasetLoader.load(path: file, split: .train) }
    }

    /// Found by FuzzTests: a damaged header's shape was allocated before HDF5 read a byte (a
    /// flipped bit asked for terabytes), and a damaged num_classes or label sized the histogram.
    func testHDF5ImpossibleSizes() throws {
        let file = path("huge.h5")
        // A chunked dataset whose chunks were never written: its shape is all the file holds.
        RawH5.create(file) { f in
            RawH5.group(f, "train")
            let dcpl = H5Pcreate(cd_h5p_dataset_create())
            var chunk: [hsize_t] = [1, 1, 1, 1]
            H5Pset_chunk(dcpl, 4, &chunk)
            var dims: [hsize_t] = [1 << 40, 1, 1, 2]
            let s = H5Screate_simple(4, &dims, nil)
            H5Dclose(H5Dcreate2(f, "train/images", cd_h5t_std_u8le(), s, cd_h5p_default(), dcpl, cd_h5p_default()))
            H5Sclose(s); H5Pclose(dcpl)
            RawH5.int32(f, "train/labels", [0, 1])
        }
        assertDataError(file, "/train/images", "declares shape [1099511627776, 1, 1, 2]", "damaged") {
            _ = try DatasetLoader.load(path: file, split: .train)
        }
        func make(labels: [Int32], numClasses: Int?) {
            RawH5.create(file) { f in
                RawH5.group(f, "train")
                RawH5.uint8(f, "train/images", dims: [2, 1, 1, 2], [1, 2, 3, 4])
                RawH5.int32(f, "train/labels", labels)
                if let c = numClasses { RawH5.intAttribute(f, "num_classes", c) }
            }
        }
        make(labels: [0, 1], numClasses: 1 << 40)
        assertDataError(file, "num_classes is 1099511627776", "1048576 classes") { _ = try DatasetLoader.load(path: file, split: .train) }
        make(labels: [0, Int32.max], numClasses: nil)
        assertDataError(file, "/train/labels holds label 2147483647", "1048576 classes") { _ = try DatasetLoader.load(path: file, split: .train) }
    }

    func testHDF5CountMismatchAndMissingSplit() throws {
        let file = path("mismatch.h5")
        RawH5.create(file) { f in
            RawH5.group(f, "train")
            RawH5.uint8(f, "train/images", dims: [2, 1, 1, 2], [1, 2, 3, 4])
            RawH5.int32(f, "train/labels", [0, 1, 1])
        }
        assertDataError(file, "2 images", "3 labels") { _ = try DatasetLoader.load(path: file, split: .train) }
        assertDataError(file, "no /test/images") { _ = try DatasetLoader.load(path: file, split: .test) }
    }

    func testHDF5MissingSplit() throws {
        let d = Dataset(name: "x/train", sampleShape: [1, 1, 2], uint8Pixels: [1, 2], labels: [0])
        let file = path("split.h5")
        try HDF5DatasetWriter.write(train: d, test: d, to: file)
        XCTAssertNoThrow(try DatasetLoader.load(path: file, split: .test))
        assertDataError(path("missing.h5"), "does not exist") { _ = try DatasetLoader.load(path: path("missing.h5"), split: .test) }
    }

    func testSingleIDXFileAndArchive() throws {
        _ = try Fixtures.writeIDX(dir: dir)
        assertDataError(path("train-images-idx3-ubyte"), "pass the directory") {
            _ = try DatasetLoader.load(path: path("train-images-idx3-ubyte"), split: .train)
        }
        try Fixtures.write([0x1F, 0x8B, 0, 0], to: path("cifar-10-binary.tar.gz"))
        assertDataError(path("cifar-10-binary.tar.gz"), "extract") {
            _ = try DatasetLoader.load(path: path("cifar-10-binary.tar.gz"), split: .train)
        }
    }

    func testAmbiguousDirectory() throws {
        _ = try Fixtures.writeIDX(dir: dir) { "emnist-letters-\($0)-\($1)" }
        _ = try Fixtures.writeIDX(dir: dir) { "emnist-digits-\($0)-\($1)" }
        assertDataError(dir, "several", "emnist-digits-train-images-idx3-ubyte") { _ = try DatasetLoader.load(path: dir, split: .train) }
    }
}
