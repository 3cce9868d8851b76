import Foundation
import XCTest

/// Two separate mpirun jobs codistil through a shared directory; one is killed and restarted
/// mid-run while the other carries on.
final class FileExchangeTests: XCTestCase {
    func testKilledJobRestartsAndRejoinsWhileThePeerCarriesOn() throws {
        let dir = Harness.temporaryDirectory("files")
        try Harness.writeTinyIDX(in: dir)
        func args(_ name: String, steps: Int, seed: Int) -> [String] {
            ["train", "--data", dir, "--model", "cnn", "--steps", String(steps), "--batch", "32", "--exchange", "files",
             "--peer-dir", dir + "/peers", "--checkpoint-dir", dir + "/" + name, "--exchange-every", "20", "--burn-in", "20",
             "--checkpoint-every", "50", "--keep-last", "0", "--log-every", "100", "--seed", String(seed)]
        }
        let a = try Harness.start(ranks: 1, args("a", steps: 1500, seed: 1), log: dir + "/a.log")
        let b = try Harness.start(ranks: 1, args("b", steps: 600, seed: 2), log: dir + "/b.log")
        XCTAssert(Harness.waitFor(dir + "/b/group-0/step-00000100.h5", seconds: 90), "job b never reached step 100")
        // Kill job b hard (its rank and its mpirun), as a node failure would.
        let kill = Process()
        kill.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
        kill.arguments = ["-KILL", "-f", "checkpoint-dir \(dir)/b "]
        try kill.run(); kill.waitUntilExit()
        b.waitUntilExit()
        XCTAssertNotEqual(b.terminationStatus, 0, "b was killed")
        XCTAssertTrue(a.isRunning, "a carries on while b is down")

        let restarted = try Harness.run(ranks: 1, args("b", steps: 600, seed: 2) + ["--resume", "auto"], timeout: 180)
        XCTAssertEqual(restarted.status, 0, restarted.output)
        let resumedLine = try XCTUnwrap(restarted.stdout.split(separator: "\n").first { $0.hasPrefix("resumed from") },
                                        restarted.output)
        let resumedStep = Int(resumedLine.split(separator: " ").last!)!
        a.waitUntilExit()
        let aLog = try String(contentsOfFile: dir + "/a.log", encoding: .utf8)
        XCTAssertEqual(a.terminationStatus, 0, aLog)
        XCTAssert(aLog.contains("test_acc="), aLog)
        // a read b's snapshots from before the crash and from after the restart.
        let steps = aLog.split(separator: "\n").compactMap { line -> Int? in
            guard line.contains("peer b snapshot version"), let r = line.range(of: "from its step ") else { return nil }
            return Int(line[r.upperBound...].prefix(while: { $0.isNumber }))
        }
        XCTAssert(steps.contains { $0 <= resumedStep }, "snapshots before the crash: \(steps)")
        XCTAssert(steps.contains { $0 > resumedStep + 50 }, "snapshots after the restart at \(resumedStep): \(steps)")
        XCTAssert(restarted.stdout.contains("peer a snapshot version"), "the restarted job reads a again: \(restarted.output)")
        XCTAssert(aLog.contains("(its training loss "), "snapshot files carry the publisher's health record: \(aLog)")
    }

    func testFileExchangeNeedsAPeerDirectory() throws {
        let r = try Harness.run(ranks: 1, ["train", "--exchange", "files", "--steps", "1"], timeout: 60)
        XCTAssertNotEqual(r.status, 0)
        XCTAssert(r.stderr.contains("--peer-dir"), r.output)
    }
}
