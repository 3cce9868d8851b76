import Foundation
import XCTest

/// The lock-step exchange: two runs of one command end with the same weights bit for bit, and a
/// run stopped (every group at its own step) and resumed ends with the weights of an
/// uninterrupted one, because checkpoints keep the snapshots each group published and read.
final class LockStepTests: XCTestCase {
    func args(_ dir: String, ck: String, steps: Int) -> [String] {
        ["train", "--data", dir, "--model", "mlp", "--groups", "2", "--steps", String(steps), "--batch", "16",
         "--burn-in", "100", "--exchange-every", "50", "--exchange-mode", "lockstep", "--log-every", "500",
         "--checkpoint-dir", ck, "--resume", "auto"]
    }

    /// The /model tensors of a checkpoint, dumped by h5dump (bitwise: the text of every float).
    func model(_ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/h5dump")
        p.arguments = ["-g", "/model", path]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        return String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst().joined(separator: "\n")
    }

    func testLockStepRunsAreReproducibleAndResumeExactly() throws {
        let dir = Harness.temporaryDirectory("lockstep")
        try Harness.writeTinyIDX(in: dir, train: 1024, test: 256, bright: 95, dark: 70, noise: 110)
        let steps = 20_000
        for run in ["a", "b"] {
            let r = try Harness.run(ranks: 2, args(dir, ck: dir + "/\(run)", steps: steps), timeout: 180)
            XCTAssertEqual(r.status, 0, r.output)
        }
        // Stopped mid-run by SIGUSR1 to mpirun, then resumed by the same command.
        let log = dir + "/c.log"
        let job = try Harness.start(ranks: 2, args(dir, ck: dir + "/c", steps: steps), log: log, timeout: 180)
        defer { if job.isRunning { job.terminate() } }
        XCTAssert(Harness.waitFor(text: "step 1000/", in: log, seconds: 90), "the run never reached step 1000")
        kill(try XCTUnwrap(Harness.mpirunProcess(of: job)), SIGUSR1)
        job.waitUntilExit()
        let stopped = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertEqual(job.terminationStatus, 75, stopped)
        XCTAssert(stopped.contains("[group 0] stopping") && stopped.contains("[group 1] stopping"), stopped)
        let resumed = try Harness.run(ranks: 2, args(dir, ck: dir + "/c", steps: steps), timeout: 180)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssert(resumed.output.contains("resumed from"), resumed.output)

        let final = String(format: "step-%08d.h5", steps)
        for g in 0..<2 {
            let a = try model(dir + "/a/group-\(g)/" + final)
            XCTAssertFalse(a.isEmpty)
            XCTAssertEqual(a, try model(dir + "/b/group-\(g)/" + final), "group \(g): two lock-step runs differ")
            XCTAssertEqual(a, try model(dir + "/c/group-\(g)/" + final), "group \(g): the stopped and resumed run differs")
        }
    }
}
