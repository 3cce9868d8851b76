import Foundation
import XCTest

/// Faults injected into real mpirun runs: a non-finite gradient or loss, `kill -9` of one rank
/// while its checkpoint is half written, a checkpoint folder whose file system fills up. Each
/// must end every rank within seconds with one message naming the problem, and leave the last
/// complete checkpoint readable.
final class FaultInjectionTests: XCTestCase {
    func trainArgs(_ dir: String, groups: Int, steps: Int, extra: [String] = []) -> [String] {
        ["train", "--data", dir, "--model", "mlp", "--groups", String(groups), "--steps", String(steps), "--batch", "16",
         "--burn-in", "10", "--exchange-every", "10", "--checkpoint-every", "20", "--keep-last", "0", "--log-every", "1000",
         "--checkpoint-dir", dir + "/ck"] + extra
    }

    func stepFiles(_ folder: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasPrefix("step-") }.sorted()
    }

    /// `codistill inspect` reads the whole checkpoint (it exits 0 only on a readable file).
    func assertReadable(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try Harness.run(ranks: 0, ["inspect", path], timeout: 30)
        XCTAssertEqual(r.status, 0, "\(path) is not a readable checkpoint: \(r.output)", file: file, line: line)
    }

    func testNonFiniteGradientStopsTheGroupWithinOneStepAndKeepsItsLastCheckpoint() throws {
        let dir = Harness.temporaryDirectory("fault-gradient")
        try Harness.writeTinyIDX(in: dir)
        // Group 1's averaged gradient of step 35 gets a NaN; its loss stays finite.
        let r = try Harness.run(ranks: 2, trainArgs(dir, groups: 2, steps: 2000), timeout: 60,
                                environment: ["CODISTILL_FAULT_NAN_GRADIENT": "1:35"])
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertLessThan(r.seconds, 30, "every rank should end within seconds")
        XCTAssert(r.output.contains("group 1: the gradient norm became nan"), r.output)
        XCTAssert(r.output.contains("at step 35; the step was not applied"), r.output)
        XCTAssert(r.output.contains("the last good checkpoint is \(dir)/ck/group-1/step-00000020.h5"), r.output)
        XCTAssertEqual(stepFiles(dir + "/ck/group-1"), ["step-00000020.h5"], "no checkpoint after the fault")
        try assertReadable(dir + "/ck/group-1/step-00000020.h5")
    }

    func testDivergingLossStopsWithoutCheckpointingNaN() throws {
        let dir = Harness.temporaryDirectory("fault-loss")
        try Harness.writeTinyIDX(in: dir)
        let r = try Harness.run(ranks: 2, trainArgs(dir, groups: 1, steps: 2000, extra: ["--lr", "1e9", "--momentum", "0"]), timeout: 60)
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertLessThan(r.seconds, 30)
        XCTAssert(r.output.contains("became") && r.output.contains("the step was not applied") && r.output.contains("lower --lr"), r.output)
        for f in stepFiles(dir + "/ck/group-0") { try assertReadable(dir + "/ck/group-0/" + f) }
        let inspected = try stepFiles(dir + "/ck/group-0").map { try Harness.run(ranks: 0, ["inspect", dir + "/ck/group-0/" + $0], timeout: 30).output }
        XCTAssertFalse(inspected.joined().lowercased().contains("nan"), "a checkpoint holds NaN: \(inspected)")
    }

    /// A 2-rank job whose checkpoint writes pause 3 s halfway: once the first checkpoint (step 20)
    /// is complete and the second (step 40) half written, `kill` ends the job its way; then only
    /// step 20 is left, readable, and a resume continues from it and removes the `.tmp`.
    func killMidCheckpoint(_ name: String, kill: (Process) throws -> Void) throws {
        let dir = Harness.temporaryDirectory(name)
        try Harness.writeTinyIDX(in: dir)
        let job = try Harness.start(ranks: 2, trainArgs(dir, groups: 1, steps: 2_000_000) + ["--resume", "auto"], log: dir + "/log",
                                    timeout: 120, environment: ["CODISTILL_FAULT_SLOW_CHECKPOINT_SECONDS": "3"])
        defer { if job.isRunning { job.terminate() } }
        XCTAssert(Harness.waitFor(dir + "/ck/group-0/step-00000020.h5", seconds: 60), "no first checkpoint")
        XCTAssert(Harness.waitFor(dir + "/ck/group-0/step-00000040.h5.tmp", seconds: 60), "the second checkpoint never started")
        try kill(job)
        XCTAssertEqual(stepFiles(dir + "/ck/group-0").filter { $0.hasSuffix(".h5") }, ["step-00000020.h5"])
        try assertReadable(dir + "/ck/group-0/step-00000020.h5")

        let resumed = try Harness.run(ranks: 2, trainArgs(dir, groups: 1, steps: 60) + ["--resume", "auto"], timeout: 60)
        XCTAssertEqual(resumed.status, 0, resumed.output)
        XCTAssert(resumed.output.contains("resumed from \(dir)/ck/group-0/step-00000020.h5 at step 20"), resumed.output)
        XCTAssertFalse(stepFiles(dir + "/ck/group-0").contains { $0.hasSuffix(".tmp") }, "the killed write's .tmp stays")
    }

    func testKillNineOfOneRankMidCheckpointEndsTheJobAndLosesNothing() throws {
        try killMidCheckpoint("fault-kill9") { job in
            let leader = try XCTUnwrap(Harness.rankProcesses(of: job)[0])
            let killed = Date()
            kill(leader, SIGKILL)
            job.waitUntilExit()
            XCTAssertLessThan(Date().timeIntervalSince(killed), 15, "the other rank outlived the killed one by more than seconds")
            XCTAssertNotEqual(job.terminationStatus, 0)
        }
    }

    /// The whole job killed at once: `kill -9` of mpirun while a checkpoint is half written.
    /// Its ranks lose their launcher and must end within seconds, not train on unsupervised.
    func testKillNineOfMpirunMidCheckpointEndsEveryRankAndLosesNothing() throws {
        try killMidCheckpoint("fault-kill9-mpirun") { job in
            let ranks = Harness.rankProcesses(of: job)
            XCTAssertEqual(ranks.count, 2, "both ranks should be running")
            let mpirun = try XCTUnwrap(Harness.mpirunProcess(of: job))
            let killed = Date()
            kill(mpirun, SIGKILL)
            job.waitUntilExit()
            while ranks.values.contains(where: { kill($0, 0) == 0 }) && Date().timeIntervalSince(killed) < 30 { usleep(100_000) }
            let lasted = Date().timeIntervalSince(killed)
            XCTAssertFalse(ranks.values.contains { kill($0, 0) == 0 }, "ranks outlived the killed mpirun by 30 s")
            XCTAssertLessThan(lasted, 15, "ranks outlived the killed mpirun by more than seconds")
        }
    }

    /// Real torn reads of the snapshot window: a publisher rewrites its snapshots back to back
    /// while a reader copies them (shared memory within a node: the reader copies while the
    /// publisher writes; osc pt2pt, the multi-host path: a large read is served in fragments
    /// between which the publisher writes). Every copy the window accepts must be exactly a
    /// published snapshot, and the run must have overlapped reads with rewrites (caught ones
    /// counted), or it proves nothing.
    func testTornWindowReadsAreCaughtAndNoneAccepted() throws {
        for (label, extra, floats) in [("shared memory", [String](), "4096"), ("osc pt2pt", ["--mca", "osc", "pt2pt"], "262144")] {
            let r = try Harness.run(ranks: 2, ["bench", "window", "--floats", floats, "--seconds", "2", "--json"], timeout: 60,
                                    mpirunOptions: extra)
            XCTAssertEqual(r.status, 0, "\(label): \(r.output)")
            let line = try XCTUnwrap(r.output.split(separator: "\n").last { $0.hasPrefix("{") }, r.output)
            let o = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let n = { (k: String) in (o[k] as? Int) ?? -1 }
            XCTAssertEqual(n("corrupt_accepted"), 0, "\(label): a torn copy was accepted: \(line)")
            XCTAssertGreaterThan(n("accepted"), 10, "\(label): \(line)")
            XCTAssertGreaterThan(n("torn_caught") + n("lapped_caught"), 0, "\(label): no read overlapped a rewrite: \(line)")
            print("bench window, \(label): \(line)")
        }
    }

    /// A checkpoint folder on a 1 MiB tmpfs (root only: CI runs as root): the checkpoints fill it.
    func testFullDiskStopsWithAMessageAndKeepsTheLastCompleteCheckpoint() throws {
        let dir = Harness.temporaryDirectory("fault-full")
        try Harness.writeTinyIDX(in: dir)
        let mount = dir + "/ck"
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let mounted = try Harness.capture(["30", "mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount],
                                          environment: ProcessInfo.processInfo.environment)
        guard mounted.status == 0 else { return XCTFail("cannot mount a small tmpfs (needs root): \(mounted.output)") }
        defer { _ = try? Harness.capture(["30", "umount", "-l", mount], environment: ProcessInfo.processInfo.environment) }

        // mlp checkpoints of this data are about 120 KB: the tmpfs holds a handful.
        let r = try Harness.run(ranks: 2, trainArgs(dir, groups: 1, steps: 100_000), timeout: 60)
        XCTAssertNotEqual(r.status, 0, r.output)
        XCTAssertLessThan(r.seconds, 40)
        let errors = r.output.split(separator: "\n").filter { $0.contains("error") }
        XCTAssert(r.output.contains("the file system of \(mount)/group-0 is full"), r.output)
        XCTAssertEqual(Set(errors).count, 1, "one message, not one per rank: \(errors)")
        let complete = stepFiles(mount + "/group-0").filter { $0.hasSuffix(".h5") }
        XCTAssertFalse(complete.isEmpty, r.output)
        try assertReadable(mount + "/group-0/" + complete.last!)
        XCTAssertFalse(stepFiles(mount + "/group-0").contains { $0.hasSuffix(".tmp") }, "the failed write left its .tmp behind")
    }
}
