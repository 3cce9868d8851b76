import Foundation
import CHDF5
import HDF5
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class HDF5Tests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "codistill-hdf5-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    func path(_ name: String) -> String { dir + "/" + name }

    /// Asserts that `body` throws an HDF5Error with `problem` whose message contains `fragments`.
    func assertHDF5Error(_ problem: HDF5Error.Problem, _ fragments: String..., file: StaticString = #filePath,
                         line: UInt = #line, _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("expected an HDF5Error (\(problem))", file: file, line: line)
        } catch let e as HDF5Error {
            XCTAssertEqual(e.problem, problem, e.description, file: file, line: line)
            for f in fragments {
                XCTAssert(e.description.contains(f), "\"\(e.description)\" lacks \"\(f)\"", file: file, line: line)
            }
        } catch {
            XCTFail("expected an HDF5Error, got \(error)", file: file, line: line)
        }
    }

    /// A small file with one of everything; returns its path.
    @discardableResult
    func writeSample(_ name: String = "sample.h5") throws -> String {
        let p = path(name)
        try HDF5File.createAtomically(at: p) { root in
            try root.setAttribute("count", 42)
            try root.setAttribute("negative", -7)
            try root.setAttribute("seed", UInt64.max - 1)
            try root.setAttribute("rate", 0.125)
            try root.setAttribute("name", "grüße, codistill")
            try root.setAttribute("mean", [Float(0.5), 0.25, -1])
            try root.setAttribute("ids", [Int32(3), -4])
            try root.setAttribute("bytes", [UInt8(1), 255])
            try root.setAttribute("empty", [Double]())
            let g = try root.createGroup("group")
            try g.setAttribute("inner", "x")
            try g.writeDataset("floats", shape: [2, 3, 1], (0..<6).map { Float($0) / 4 })
            try g.writeDataset("pixels", shape: [2, 2, 2], (0..<8).map { UInt8($0 * 30) })
            try g.writeDataset("int32s", shape: [3], [Int32(-1), 0, 1])
            try g.writeDataset("int64s", shape: [2], [Int64.min, Int64.max])
            try g.writeScalar("scalar", Int64(21))
            try g.writeDataset("nothing", shape: [0], [Float]())
            _ = try g.createGroup("sub")
        }
        return p
    }

    // MARK: Round trip

    func testAttributesAndDatasetsRoundTrip() throws {
        let p = try writeSample()
        XCTAssertFalse(FileManager.default.fileExists(atPath: p + ".tmp"))
        let file = try HDF5File.open(p)
        let root = file.root
        XCTAssertEqual(try root.attributeNames(), ["bytes", "count", "empty", "ids", "mean", "name", "negative", "rate", "seed"])
        XCTAssertEqual(try root.intAttribute("count"), 42)
        XCTAssertEqual(try root.intAttribute("negative"), -7)
        XCTAssertEqual(try root.uint64Attribute("seed"), UInt64.max - 1)
        XCTAssertEqual(try root.doubleAttribute("rate"), 0.125)
        XCTAssertEqual(try root.doubleAttribute("count"), 42)
        XCTAssertEqual(try root.stringAttribute("name"), "grüße, codistill")
        XCTAssertEqual(try root.doublesAttribute("mean"), [0.5, 0.25, -1])
        XCTAssertEqual(try root.attribute("ids"), .integers([3, -4]))
        XCTAssertEqual(try root.attribute("bytes"), .unsignedIntegers([1, 255]))
        XCTAssertEqual(try root.doublesAttribute("empty"), [])
        XCTAssertEqual(try root.attribute("name").text, "\"grüße, codistill\"")

        XCTAssertEqual(try root.childNames(), ["group"])
        XCTAssertEqual(try root.kind(of: "group"), .group)
        XCTAssert(root.contains("group/floats"))
        XCTAssertFalse(root.contains("group/absent/floats"))
        let g = try root.group("group")
        XCTAssertEqual(g.path, "/group")
        XCTAssertEqual(try g.stringAttribute("inner"), "x")
        XCTAssertEqual(try g.childNames(), ["floats", "int32s", "int64s", "nothing", "pixels", "scalar", "sub"])
        XCTAssertEqual(try g.kind(of: "floats"), .dataset)
        XCTAssertEqual(try g.kind(of: "sub"), .group)

        let floats = try g.dataset("floats")
        XCTAssertEqual(floats.shape, [2, 3, 1])
        XCTAssertEqual(floats.storedType, .float(bits: 32))
        XCTAssertEqual(try floats.read(Float.self, expectedShape: [2, 3, 1]), (0..<6).map { Float($0) / 4 })
        XCTAssertEqual(try floats.read(Double.self), (0..<6).map { Double($0) / 4 })
        let pixels = try g.dataset("pixels")
        XCTAssertEqual(pixels.storedType.description, "uint8")
        var raw = [UInt8](repeating: 0, count: 8)
        try raw.withUnsafeMutableBufferPointer { try pixels.read(into: $0) }
        XCTAssertEqual(raw, (0..<8).map { UInt8($0 * 30) })
        XCTAssertEqual(try g.dataset("int32s").read(Int32.self), [-1, 0, 1])
        XCTAssertEqual(try g.dataset("int32s").read(Int64.self), [-1, 0, 1])
        XCTAssertEqual(try g.dataset("int64s").read(Int64.self), [Int64.min, Int64.max])
        let scalar = try g.dataset("scalar")
        XCTAssertEqual(scalar.shape, [])
        XCTAssertEqual(try scalar.read(Int64.self), [21])
        XCTAssertEqual(try g.dataset("nothing").read(Float.self), [])
    }

    // MARK: Files that cannot be opened

    func testUnopenableFilesHaveDistinctErrors() throws {
        assertHDF5Error(.missingFile, path("absent.h5"), "does not exist") { _ = try HDF5File.open(path("absent.h5")) }
        assertHDF5Error(.isDirectory, dir, "folder") { _ = try HDF5File.open(dir) }

        let empty = path("empty.h5")
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        assertHDF5Error(.emptyFile, empty, "0 bytes") { _ = try HDF5File.open(empty) }

        let text = path("text.h5")
        _ = FileManager.default.createFile(atPath: text, contents: Data("just some text, no HDF5 here\n".utf8))
        XCTAssertFalse(HDF5File.hasSignature(text))
        assertHDF5Error(.notHDF5, text, "not an HDF5 file") { _ = try HDF5File.open(text) }

        let good = try writeSample()
        XCTAssert(HDF5File.hasSignature(good))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        // Files this layer writes are sealed, so a cut one is refused before libhdf5 parses it;
        // with the seal blanked out (a user block of another tool), libhdf5 itself refuses it.
        var unsealed = bytes
        unsealed.replaceSubrange(0..<HDF5Seal.userBlockBytes, with: Data(count: HDF5Seal.userBlockBytes))
        for fraction in [0.5, 0.05] {
            let cut = path("cut-\(fraction).h5")
            try bytes.prefix(Int(Double(bytes.count) * fraction)).write(to: URL(fileURLWithPath: cut))
            XCTAssert(HDF5File.hasSignature(cut))
            assertHDF5Error(.failsSeal, cut, "truncated or damaged", "cut short", "h5dump") { _ = try HDF5File.open(cut) }
            let cutUnsealed = path("cut-unsealed-\(fraction).h5")
            try unsealed.prefix(Int(Double(unsealed.count) * fraction)).write(to: URL(fileURLWithPath: cutUnsealed))
            assertHDF5Error(.damaged, cutUnsealed, "truncated or damaged", "h5dump") { _ = try HDF5File.open(cutUnsealed) }
        }
    }

    /// The seal: intact files open, changed or cut ones are refused by name before libhdf5 reads
    /// them, files of other tools open unsealed, and `seal` never writes over a superblock.
    func testSealRefusesChangedFilesBeforeHDF5ReadsThem() throws {
        let good = try writeSample()
        XCTAssertEqual(HDF5Seal.check(good), .intact)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        XCTAssert(bytes.prefix(17) == Data("codistill-seal 1\n".utf8))
        XCTAssert(bytes.dropFirst(HDF5Seal.userBlockBytes).prefix(8) == Data(HDF5File.signature))

        var flipped = bytes
        flipped[bytes.count / 2] ^= 0x10
        let changed = path("flipped.h5")
        try flipped.write(to: URL(fileURLWithPath: changed))
        assertHDF5Error(.failsSeal, changed, "fail their checksum", "changed after it was written") { _ = try HDF5File.open(changed) }

        var badMagic = bytes
        badMagic[3] ^= 0x01
        let magic = path("bad-magic.h5")
        try badMagic.write(to: URL(fileURLWithPath: magic))
        assertHDF5Error(.failsSeal, magic, "its seal", "damaged") { _ = try HDF5File.open(magic) }

        var added = bytes
        added.append(contentsOf: [1, 2, 3])
        let longer = path("longer.h5")
        try added.write(to: URL(fileURLWithPath: longer))
        assertHDF5Error(.failsSeal, longer, "bytes were added") { _ = try HDF5File.open(longer) }

        // Another tool's user block: read as it is.
        var foreign = bytes
        foreign.replaceSubrange(0..<64, with: Data(repeating: 0x41, count: 64))
        let other = path("foreign-user-block.h5")
        try foreign.write(to: URL(fileURLWithPath: other))
        XCTAssertEqual(HDF5Seal.check(other), .unsealed)
        XCTAssertNoThrow(try HDF5File.open(other))

        // A deliberate edit, sealed again, opens.
        try flipped.write(to: URL(fileURLWithPath: changed))
        try HDF5Seal.seal(changed)
        XCTAssertEqual(HDF5Seal.check(changed), .intact)

        // No user block: sealing would overwrite the superblock, so it refuses.
        let plain = path("plain.h5")
        let f = H5Fcreate(plain, cd_h5f_acc_trunc(), cd_h5p_default(), cd_h5p_default())
        XCTAssertGreaterThanOrEqual(f, 0)
        H5Fclose(f)
        XCTAssertEqual(HDF5Seal.check(plain), .unsealed)
        XCTAssertThrowsError(try HDF5Seal.seal(plain)) { XCTAssert("\($0)".contains("no 512-byte user block"), "\($0)") }
        XCTAssertNoThrow(try HDF5File.open(plain))
    }

    // MARK: Objects that are missing or do not fit

    func testMissingObjectsAndWrongShapesThrow() throws {
        let p = try writeSample()
        let root = try HDF5File.open(p).root
        assertHDF5Error(.missingObject, p, "/nowhere") { _ = try root.dataset("nowhere") }
        assertHDF5Error(.missingObject, p, "/group/missing") { _ = try root.group("group").dataset("missing") }
        assertHDF5Error(.missingObject, p, "/absent") { _ = try root.group("absent") }
        assertHDF5Error(.missingObject, p, "attribute 'absent' of /") { _ = try root.intAttribute("absent") }
        assertHDF5Error(.wrongType, p, "/group is not a readable dataset") { _ = try root.dataset("group") }

        let g = try root.group("group")
        assertHDF5Error(.wrongShape, "/group/floats", "[2, 3, 1]", "[6]") { _ = try g.dataset("floats").read(Float.self, expectedShape: [6]) }
        assertHDF5Error(.wrongShape, "/group/floats", "5 were expected") {
            var small = [Float](repeating: 0, count: 5)
            try small.withUnsafeMutableBufferPointer { try g.dataset("floats").read(into: $0) }
        }
        assertHDF5Error(.wrongType, "/group/floats", "float32") { _ = try g.dataset("floats").read(Int64.self) }
        assertHDF5Error(.wrongType, "/group/int64s", "int64") { _ = try g.dataset("int64s").read(Float.self) }
        assertHDF5Error(.wrongType, "attribute 'name' of /", "one integer") { _ = try root.intAttribute("name") }
        assertHDF5Error(.wrongType, "attribute 'mean' of /", "a string") { _ = try root.stringAttribute("mean") }
        assertHDF5Error(.wrongType, "attribute 'negative' of /", "unsigned") { _ = try root.uint64Attribute("negative") }

        // Writing more or fewer values than the shape holds is refused before anything is written.
        let out = path("shape.h5")
        assertHDF5Error(.wrongShape, "shape [2, 2]", "3 values") {
            try HDF5File.createAtomically(at: out) { try $0.writeDataset("x", shape: [2, 2], [Float(1), 2, 3]) }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".tmp"))
    }

    // MARK: Atomic create

    func testFailedCreateLeavesThePreviousFileWhole() throws {
        struct Stop: Error {}
        let p = try writeSample("atomic.h5")
        let before = try Data(contentsOf: URL(fileURLWithPath: p))
        XCTAssertThrowsError(try HDF5File.createAtomically(at: p) { root in
            try root.setAttribute("half", 1)
            throw Stop()
        }) { XCTAssert($0 is Stop, "the body's own error comes back unchanged: \($0)") }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: p)), before)
        XCTAssertFalse(FileManager.default.fileExists(atPath: p + ".tmp"))

        // A temporary file that cannot be created (a folder is in its way) names it and the fix.
        try FileManager.default.createDirectory(atPath: p + ".tmp", withIntermediateDirectories: false)
        assertHDF5Error(.failed, p + ".tmp", "cannot create", "writable") {
            try HDF5File.createAtomically(at: p) { try $0.setAttribute("x", 1) }
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: p)), before)
        try FileManager.default.removeItem(atPath: p + ".tmp")

        try HDF5File.createAtomically(at: p) { try $0.setAttribute("replaced", 1) }
        XCTAssertEqual(try HDF5File.open(p).root.attributeNames(), ["replaced"])
    }

    // MARK: The process-wide policy

    /// Whatever the first HDF5 call is (here an open for reading, as when `--data file.h5` is
    /// loaded before any checkpoint), the policy is in force for it: file locking is off, so a
    /// file another process (here another descriptor) holds an exclusive flock on still opens,
    /// as on NFS/Lustre mounts where flock fails.
    func testLockingPolicyHoldsForAFileOpenedForReading() throws {
        guard ProcessInfo.processInfo.environment["HDF5_USE_FILE_LOCKING"].map({ $0.isEmpty || $0 == "FALSE" }) ?? true else {
            throw XCTSkip("HDF5_USE_FILE_LOCKING is set in the test environment, and the user's choice wins")
        }
        let p = try writeSample("locked.h5")
        let fd = Glibc.open(p, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(flock(fd, LOCK_EX | LOCK_NB), 0, "cannot take the test's own lock")

        let file = try HDF5File.open(p)
        XCTAssert(HDF5Library.isPrepared)
        XCTAssert(HDF5Library.lockingDisabledByPolicy)
        XCTAssertEqual(ProcessInfo.processInfo.environment["HDF5_USE_FILE_LOCKING"], "FALSE")
        XCTAssertEqual(try file.root.group("group").dataset("int32s").read(Int32.self), [-1, 0, 1])
    }
}
