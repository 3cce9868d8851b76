import Foundation
import XCTest

/// The lock-step exchange: two runs of one command end with the same weights bit for bit, and a
/// run stopped (every group at its own step) and resumed ends with the weights of an
/// uninterrupted one, because checkpoints keep the snapshots each group published and read,
/// also when the stop comes while a group waits for a peer's snapshot.
final class LockStepTests: XCTestCase {
    func args(_ dir: String, ck: String, steps: Int) -> [String] {
        ["train", "--data", dir, "--model", "mlp", "--groups", "2", "--steps", String(steps), "--batch", "16",
         "--burn-in", "100", "--exchange-every", "50", "--exchange-mode", "lockstep", "--log-every", "500",
         "--checkpoint-dir", ck, "--resume", "auto"]
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

        // A stop reaching a group while it waits for a peer's snapshot: group 0 is frozen
        // (SIGSTOP), so group 1 soon waits in its next exchange; a SIGUSR1 to group 1 alone must
        // end that wait (its peer may never publish: it may have stopped itself) instead of
        // holding the job until --peer-timeout.
        let waitLog = dir + "/d.log"
        let waiting = try Harness.start(ranks: 2, args(dir, ck: dir + "/d", steps: steps), log: waitLog, timeout: 180)
        defer { if waiting.isRunning { waiting.terminate() } }
        XCTAssert(Harness.waitFor(text: "step 1000/", in: waitLog, seconds: 90), "the run never reached step 1000")
        let ranks = Harness.rankProcesses(of: waiting)
        let (rank0, rank1) = (try XCTUnwrap(ranks[0]), try XCTUnwrap(ranks[1]))
        kill(rank0, SIGSTOP)
        usleep(1_500_000)
        kill(rank1, SIGUSR1)
        let gaveUp = Harness.waitFor(text: "[group 1] stopping", in: waitLog, seconds: 10)
        kill(rank0, SIGCONT)
        XCTAssert(gaveUp, "group 1 went on waiting for its frozen peer after a stop signal")
        waiting.waitUntilExit()
        let waitStopped = try String(contentsOfFile: waitLog, encoding: .utf8)
        XCTAssertEqual(waiting.terminationStatus, 75, waitStopped)
        XCTAssert(waitStopped.contains("[group 0] stopping because another group of the job stopped"), waitStopped)
        let waitResumed = try Harness.run(ranks: 2, args(dir, ck: dir + "/d", steps: steps), timeout: 180)
        XCTAssertEqual(waitResumed.status, 0, waitResumed.output)

        let final = String(format: "step-%08d.h5", steps)
        for g in 0..<2 {
            let a = try Harness.modelTensors(dir + "/a/group-\(g)/" + final)
            XCTAssertFalse(a.isEmpty)
            XCTAssertEqual(a, try Harness.modelTensors(dir + "/b/group-\(g)/" + final), "group \(g): two lock-step runs differ")
            XCTAssertEqual(a, try Harness.modelTensors(dir + "/c/group-\(g)/" + final), "group \(g): the stopped and resumed run differs")
            XCTAssertEqual(a, try Harness.modelTensors(dir + "/d/group-\(g)/" + final),
                           "group \(g): the run stopped during an exchange wait and resumed differs")
        }
    }
}
