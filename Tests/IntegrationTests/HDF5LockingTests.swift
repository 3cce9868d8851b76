import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// HDF5 file locking is off for every HDF5 file the binary opens, also when the first HDF5 call
/// of the process is loading `--data file.h5` (HDF5 reads its locking setting when it starts, so
/// a policy applied only at the first checkpoint came too late for the dataset).
final class HDF5LockingTests: XCTestCase {
    func testADatasetFileLockedByAnotherHolderStillTrainsAndCheckpoints() throws {
        let dir = Harness.temporaryDirectory("locking")
        try Harness.writeTinyIDX(in: dir)
        let h5 = dir + "/tiny.h5"
        let convert = try Harness.run(ranks: 0, ["data", "convert", dir, h5])
        XCTAssertEqual(convert.status, 0, convert.output)

        // Stands in for NFS/Lustre mounts where flock fails: with locking on, HDF5's own flock on
        // opening the file fails against this exclusive one.
        let fd = open(h5, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        XCTAssertEqual(flock(fd, LOCK_EX | LOCK_NB), 0)

        let noChoice = ["HDF5_USE_FILE_LOCKING"]
        let info = try Harness.run(ranks: 0, ["data", "info", h5], unsetting: noChoice)
        XCTAssertEqual(info.status, 0, info.output)
        let train = try Harness.run(ranks: 1, ["train", "--data", h5, "--model", "mlp", "--steps", "4", "--batch", "8",
                                               "--checkpoint-dir", dir + "/ck"], unsetting: noChoice)
        XCTAssertEqual(train.status, 0, train.output)
        XCTAssert(FileManager.default.fileExists(atPath: dir + "/ck/group-0/step-00000004.h5"), train.output)

        // The user's choice wins: with locking asked for, the locked file is refused (so the
        // success above is the policy's doing, not a file system without flock).
        let locked = try Harness.run(ranks: 0, ["data", "info", h5], environment: ["HDF5_USE_FILE_LOCKING": "TRUE"])
        XCTAssertNotEqual(locked.status, 0, locked.output)
        XCTAssert(locked.stderr.contains("tiny.h5"), locked.output)
    }
}
