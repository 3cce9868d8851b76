import Checkpoint
import Foundation
import NN
import XCTest
@testable import Training

/// The file exchange as a snapshot transport, on files the test writes and breaks.
final class FileExchangeTransportTests: XCTestCase {
    func testUnreadableNewestSnapshotFallsBackToTheOlderOne() throws {
        let dir = NSTemporaryDirectory() + "codistill-files-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let spec = ModelSpec(name: "mlp", inputShape: [1, 8, 8], classes: 4)
        var logged: [String] = []
        let a = try FileExchange(directory: dir, name: "a", owner: "/jobs/a", spec: spec, configJSON: "{}", log: { logged.append($0) })
        let b = try FileExchange(directory: dir, name: "b", owner: "/jobs/b", spec: spec, configJSON: "{}", log: { _ in })
        let published = ParameterStore(model: try Models.make(spec), seed: 3)
        b.publish(published, step: 10)
        let atTen = published.checksum()
        published.values[0] += 1
        b.publish(published, step: 20, torn: true)  // cut short, as a copy interrupted mid-write
        XCTAssertEqual(a.peerNames(), ["b"])

        let received = ParameterStore(model: try Models.make(spec), seed: 4)
        XCTAssertEqual(a.fetch(peer: "b", into: received, after: nil), .fresh(SnapshotStamp(version: 1, step: 10)))
        XCTAssertEqual(received.checksum(), atTen, "the older, intact snapshot arrived")
        XCTAssert(logged.contains { $0.contains("peer b: skipped newer unreadable snapshots") }, "\(logged)")
        // Nothing newer than step 10 is readable: the broken file is reported, the store kept.
        guard case .refused = a.fetch(peer: "b", into: received, after: SnapshotStamp(version: 1, step: 10)) else {
            return XCTFail("a newer unreadable snapshot is refused")
        }
        XCTAssertEqual(received.checksum(), atTen)
    }

    func testStaleTemporaryFilesOfTheJobAreRemovedAtStart() throws {
        let dir = NSTemporaryDirectory() + "codistill-files-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/a", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/b", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/a/step-00000050.h5.tmp", contents: Data(count: 10))
        FileManager.default.createFile(atPath: dir + "/b/step-00000050.h5.tmp", contents: Data(count: 10))
        let spec = ModelSpec(name: "mlp", inputShape: [1, 8, 8], classes: 4)
        _ = try FileExchange(directory: dir, name: "a", owner: "/jobs/a", spec: spec, configJSON: "{}", log: { _ in })
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/a/step-00000050.h5.tmp"), "a's own stale .tmp is removed")
        XCTAssert(FileManager.default.fileExists(atPath: dir + "/b/step-00000050.h5.tmp"), "another job's files are never touched")
    }
}

final class FileExchangeOwnershipTests: XCTestCase {
    let spec = ModelSpec(name: "mlp", inputShape: [1, 8, 8], classes: 4)

    func testTwoJobsCannotPublishUnderOneName() throws {
        let dir = NSTemporaryDirectory() + "codistill-files-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try FileExchange(directory: dir, name: "run1", owner: "/scratch/alice/run1", spec: spec, configJSON: "{}", log: { _ in })
        // The same job restarted: its folder.
        _ = try FileExchange(directory: dir, name: "run1", owner: "/scratch/alice/run1", spec: spec, configJSON: "{}", log: { _ in })
        // Another job whose checkpoint folder has the same last component.
        XCTAssertThrowsError(try FileExchange(directory: dir, name: "run1", owner: "/scratch/bob/run1", spec: spec, configJSON: "{}", log: { _ in })) {
            XCTAssert("\($0)".contains("belongs to another job (checkpoints in /scratch/alice/run1)") && "\($0)".contains("--peer-name"), "\($0)")
        }
    }

    func testARestartThatGoesBackIsFollowedByReadersAndItsOldFilesGo() throws {
        let dir = NSTemporaryDirectory() + "codistill-files-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var readerLog: [String] = [], publisherLog: [String] = []
        let reader = try FileExchange(directory: dir, name: "a", owner: "/jobs/a", spec: spec, configJSON: "{}", log: { readerLog.append($0) })
        let store = ParameterStore(model: try Models.make(spec), seed: 3)
        let before = try FileExchange(directory: dir, name: "b", owner: "/jobs/b", spec: spec, configJSON: "{}", log: { _ in })
        before.publish(store, step: 100)
        before.publish(store, step: 200)
        let received = ParameterStore(model: try Models.make(spec), seed: 4)
        XCTAssertEqual(reader.fetch(peer: "b", into: received, after: nil), .fresh(SnapshotStamp(version: 1, step: 200)))

        // b was killed and resumed from its checkpoint of step 100; it publishes step 120.
        let after = try FileExchange(directory: dir, name: "b", owner: "/jobs/b", spec: spec, configJSON: "{}", log: { publisherLog.append($0) })
        store.values[0] += 1
        after.publish(store, step: 120)
        XCTAssertEqual(Checkpoint.stepFiles(directory: dir, folder: "b").map(\.step), [120, 100], "the abandoned step 200 is gone, the fresh one kept")
        XCTAssert(publisherLog.contains { $0.contains("removing this job's published snapshots of steps [200]") }, "\(publisherLog)")
        XCTAssertEqual(reader.fetch(peer: "b", into: received, after: SnapshotStamp(version: 1, step: 200)),
                       .fresh(SnapshotStamp(version: 2, step: 120)), "the reader takes the restarted peer's snapshot")
        XCTAssertEqual(received.checksum(), store.checksum())
        XCTAssert(readerLog.contains { $0.contains("peer b went back from its step 200 to 120") }, "\(readerLog)")
    }
}

extension SnapshotTransport {
    /// Publishes a store's snapshot (sequence number = step), as a test needs it.
    func publish(_ store: ParameterStore, step: Int, torn: Bool = false) {
        store.snapshot().withUnsafeBufferPointer { publish($0, stamp: SnapshotStamp(version: UInt64(step), step: step), torn: torn) }
    }
}
