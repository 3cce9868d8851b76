import Data
import Foundation
import XCTest

/// A fresh temporary directory per test, removed afterwards.
class DataTestCase: XCTestCase {
    var dir: String = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "codistill-data-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func path(_ name: String) -> String { dir + "/" + name }

    /// Asserts that `body` throws a DataError whose message contains every one of `fragments`.
    func assertDataError(_ fragments: String..., file: StaticString = #filePath, line: UInt = #line,
                         _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected a DataError containing \(fragments)", file: file, line: line)
        } catch let e as DataError {
            for f in fragments {
                XCTAssertTrue(e.description.contains(f), "message \"\(e.description)\" lacks \"\(f)\"", file: file, line: line)
            }
        } catch {
            XCTFail("expected a DataError, got \(error)", file: file, line: line)
        }
    }
}

enum Fixtures {
    /// A deterministic tiny image set: n images of h x w with labels cycling through `classes`.
    static func images(n: Int, h: Int, w: Int, channels: Int = 1, seed: Int = 1) -> [UInt8] {
        (0..<(n * channels * h * w)).map { UInt8(truncatingIfNeeded: ($0 &* 37 &+ seed &* 11) ^ ($0 >> 3)) }
    }

    static func labels(n: Int, classes: Int, offset: Int = 0) -> [UInt8] {
        (0..<n).map { UInt8(($0 + offset) % classes) }
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    static func idxImages(_ pixels: [UInt8], n: Int, h: Int, w: Int, magic: UInt32 = 0x0000_0803) -> [UInt8] {
        bigEndian(magic) + bigEndian(UInt32(n)) + bigEndian(UInt32(h)) + bigEndian(UInt32(w)) + pixels
    }

    static func idxLabels(_ labels: [UInt8], magic: UInt32 = 0x0000_0801) -> [UInt8] {
        bigEndian(magic) + bigEndian(UInt32(labels.count)) + labels
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        try Foundation.Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// gzips `path` in place with /bin/gzip (giving path.gz).
    static func gzip(_ path: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-f", "-n", path]
        try p.run()
        p.waitUntilExit()
        precondition(p.terminationStatus == 0, "gzip failed on \(path)")
    }

    /// Writes an MNIST-style directory with the given file name prefix pattern.
    /// `names` maps (split, kind) to a file name.
    static func writeIDX(dir: String, trainN: Int = 12, testN: Int = 5, h: Int = 4, w: Int = 3, classes: Int = 4,
                         gzip: Bool = false, names: (String, String) -> String = { "\($0)-\($1)" }) throws
        -> (train: [UInt8], trainLabels: [UInt8], test: [UInt8], testLabels: [UInt8]) {
        let train = images(n: trainN, h: h, w: w, seed: 1), test = images(n: testN, h: h, w: w, seed: 2)
        let trainLabels = labels(n: trainN, classes: classes), testLabels = labels(n: testN, classes: classes, offset: 1)
        let files: [(String, [UInt8])] = [
            (names("train", "images-idx3-ubyte"), idxImages(train, n: trainN, h: h, w: w)),
            (names("train", "labels-idx1-ubyte"), idxLabels(trainLabels)),
            (names("t10k", "images-idx3-ubyte"), idxImages(test, n: testN, h: h, w: w)),
            (names("t10k", "labels-idx1-ubyte"), idxLabels(testLabels)),
        ]
        for (name, bytes) in files {
            try write(bytes, to: dir + "/" + name)
            if gzip { try Fixtures.gzip(dir + "/" + name) }
        }
        return (train, trainLabels, test, testLabels)
    }

    /// Every sample's pixels of `d`, as floats.
    static func pixels(_ d: Dataset) -> [Float] {
        var out = [Float](repeating: 0, count: d.count * d.sampleSize)
        out.withUnsafeMutableBufferPointer { b in
            for i in 0..<d.count { d.copySample(i, into: b.baseAddress! + i * d.sampleSize) }
        }
        return out
    }

    static func scaled(_ bytes: [UInt8]) -> [Float] { bytes.map { Float($0) * Dataset.byteScale } }
}

import CHDF5

/// Writes HDF5 files with the raw C API, as another tool might (and to make broken ones).
enum RawH5 {
    static func create(_ path: String, _ body: (hid_t) -> Void) {
        cd_h5_silence_errors()
        let f = H5Fcreate(path, cd_h5f_acc_trunc(), cd_h5p_default(), cd_h5p_default())
        precondition(f >= 0, "cannot create \(path)")
        body(f)
        H5Fclose(f)
    }

    static func group(_ f: hid_t, _ name: String) {
        H5Gclose(H5Gcreate2(f, name, cd_h5p_default(), cd_h5p_default(), cd_h5p_default()))
    }

    static func dataset(_ f: hid_t, _ name: String, dims: [Int], fileType: hid_t, memType: hid_t, bytes: UnsafeRawPointer) {
        let d = dims.map { hsize_t($0) }
        let s = H5Screate_simple(Int32(d.count), d, nil)
        let ds = H5Dcreate2(f, name, fileType, s, cd_h5p_default(), cd_h5p_default(), cd_h5p_default())
        precondition(ds >= 0, "cannot create \(name)")
        H5Dwrite(ds, memType, cd_h5s_all(), cd_h5s_all(), cd_h5p_default(), bytes)
        H5Dclose(ds)
        H5Sclose(s)
    }

    static func uint8(_ f: hid_t, _ name: String, dims: [Int], _ values: [UInt8]) {
        values.withUnsafeBytes { dataset(f, name, dims: dims, fileType: cd_h5t_std_u8le(), memType: cd_h5t_native_uint8(), bytes: $0.baseAddress!) }
    }

    static func int32(_ f: hid_t, _ name: String, _ values: [Int32]) {
        values.withUnsafeBytes { dataset(f, name, dims: [values.count], fileType: cd_h5t_native_int32(), memType: cd_h5t_native_int32(), bytes: $0.baseAddress!) }
    }

    static func intAttribute(_ f: hid_t, _ name: String, _ value: Int) {
        var v = Int64(value)
        let s = H5Screate(H5S_SCALAR)
        let a = H5Acreate2(f, name, cd_h5t_std_i64le(), s, cd_h5p_default(), cd_h5p_default())
        H5Awrite(a, cd_h5t_native_int64(), &v)
        H5Aclose(a)
        H5Sclose(s)
    }

    /// A 1-D array attribute of float64 values (as h5py writes a numpy float array).
    static func doublesAttribute(_ f: hid_t, _ name: String, _ values: [Double]) {
        let s = H5Screate_simple(1, [hsize_t(values.count)], nil)
        let a = H5Acreate2(f, name, cd_h5t_ieee_f64le(), s, cd_h5p_default(), cd_h5p_default())
        _ = values.withUnsafeBytes { H5Awrite(a, cd_h5t_native_double(), $0.baseAddress) }
        H5Aclose(a)
        H5Sclose(s)
    }

    /// A 1-D array attribute of fixed-length strings (numpy's `S` dtype, as h5py writes `np.array([...], 'S')`).
    static func fixedStringsAttribute(_ f: hid_t, _ name: String, _ values: [String]) {
        let width = values.map { $0.utf8.count }.max()! + 1
        var bytes = [UInt8](repeating: 0, count: width * values.count)
        for (i, v) in values.enumerated() { for (k, b) in v.utf8.enumerated() { bytes[i * width + k] = b } }
        let t = H5Tcopy(cd_h5t_c_s1())
        H5Tset_size(t, width)
        let s = H5Screate_simple(1, [hsize_t(values.count)], nil)
        let a = H5Acreate2(f, name, t, s, cd_h5p_default(), cd_h5p_default())
        _ = bytes.withUnsafeBytes { H5Awrite(a, t, $0.baseAddress) }
        H5Aclose(a)
        H5Sclose(s)
        H5Tclose(t)
    }
}
