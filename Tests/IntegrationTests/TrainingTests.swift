import Checkpoint
import Foundation
import XCTest

/// The real binary under real Open MPI, on a small dataset the test writes.
final class TrainingTests: XCTestCase {
    func common(_ data: String, _ ckpt: String) -> [String] {
        ["--data", data, "--checkpoint-dir", ckpt, "--log-every", "10", "--seed", "3"]
    }

    func params(_ path: String) throws -> LoadedCheckpoint { try Checkpoint.read(path: path) }

    /// 2 ranks x B/2 give the same weights after 20 steps as 1 rank x B (BN-free model).
    func testDataParallelismIsExact() throws {
        let dir = Harness.temporaryDirectory("dp")
        try Harness.writeTinyIDX(in: dir)
        let one = try Harness.run(ranks: 1, ["train", "--model", "mlp", "--steps", "20", "--batch", "32"] + common(dir, dir + "/one"))
        XCTAssertEqual(one.status, 0, one.output)
        let two = try Harness.run(ranks: 2, ["train", "--model", "mlp", "--steps", "20", "--batch", "16"] + common(dir, dir + "/two"))
        XCTAssertEqual(two.status, 0, two.output)
        let a = try params(dir + "/one/group-0/step-00000020.h5"), b = try params(dir + "/two/group-0/step-00000020.h5")
        // Per tensor, ||a - b|| / ||a||: the two runs sum the same numbers in a different order
        // (a 32-sample mean vs the mean of two 16-sample means), so single weights near zero
        // differ by rounding; the norm shows whether the training trajectories are the same.
        var worst = 0.0
        for (name, t) in a.tensors {
            let u = try XCTUnwrap(b.tensors[name], name)
            var diff = 0.0, norm = 0.0
            for (x, y) in zip(t.values, u.values) { diff += Double((x - y) * (x - y)); norm += Double(x * x) }
            worst = max(worst, (diff / max(norm, 1e-30)).squareRoot())
        }
        XCTAssertLessThanOrEqual(worst, 1e-5, "largest per-tensor relative difference between 1x32 and 2x16: \(worst)")
    }

    /// 40 steps straight == 20 steps + resume for 20, bitwise, parameters and optimizer state (2 ranks, with BN).
    func testResumeIsExact() throws {
        let dir = Harness.temporaryDirectory("resume")
        try Harness.writeTinyIDX(in: dir)
        let args = ["train", "--model", "cnn", "--steps", "40", "--batch", "8", "--checkpoint-every", "20", "--keep-last", "0"]
        let straight = try Harness.run(ranks: 2, args + common(dir, dir + "/a"))
        XCTAssertEqual(straight.status, 0, straight.output)
        let resumed = try Harness.run(ranks: 2, args + common(dir, dir + "/b") + ["--resume", dir + "/a/group-0/step-00000020.h5"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssert(resumed.stdout.contains("resumed from"), resumed.output)
        let a = try params(dir + "/a/group-0/step-00000040.h5"), b = try params(dir + "/b/group-0/step-00000040.h5")
        XCTAssertEqual(a.tensors.count, b.tensors.count)
        for (name, t) in a.tensors { XCTAssertEqual(t.values, b.tensors[name]?.values, "parameter \(name) differs") }
        XCTAssertEqual(a.optimizerState.count, b.optimizerState.count)
        for (kind, views) in a.optimizerState {
            for (name, v) in views { XCTAssertEqual(v, b.optimizerState[kind]?[name], "optimizer \(kind) \(name) differs") }
        }
        XCTAssertEqual(a.numBatchesTracked, b.numBatchesTracked)
        XCTAssertEqual(a.optimizerStep, b.optimizerStep)
    }

    func testPrintsFinalAccuracyAndWritesMetrics() throws {
        let dir = Harness.temporaryDirectory("acc")
        try Harness.writeTinyIDX(in: dir)
        let r = try Harness.run(ranks: 2, ["train", "--model", "cnn", "--steps", "30", "--batch", "16"] + common(dir, dir + "/c"))
        XCTAssertEqual(r.status, 0, r.output)
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("test_acc=") }, r.output)
        let acc = try XCTUnwrap(Double(line.dropFirst("test_acc=".count).prefix(while: { $0 != " " })))
        XCTAssertGreaterThan(acc, 60, "the tiny task is easy: \(line)")
        let csv = try String(contentsOfFile: dir + "/c/group-0/metrics.csv", encoding: .utf8)
        XCTAssert(csv.hasPrefix("step,epoch,time,loss"), csv)
        XCTAssertGreaterThanOrEqual(csv.split(separator: "\n").count, 4)
    }
}
