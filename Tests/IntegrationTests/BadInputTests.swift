import Foundation
import XCTest

/// Each bad input: one clear message, a non-zero exit, every rank ended within seconds, and
/// existing checkpoints untouched.
final class BadInputTests: XCTestCase {
    func assertFails(ranks: Int = 2, _ args: [String], mentions needles: [String], untouched dir: String? = nil,
                     file: StaticString = #filePath, line: UInt = #line) throws {
        let before = dir.map(Harness.fingerprint)
        let r = try Harness.run(ranks: ranks, args, timeout: 60)
        XCTAssertNotEqual(r.status, 0, "must fail: \(r.output)", file: file, line: line)
        XCTAssertNotEqual(r.status, 124, "timed out (a rank hung): \(r.output)", file: file, line: line)
        XCTAssertLessThan(r.seconds, 30, "took \(r.seconds) s", file: file, line: line)
        for n in needles { XCTAssert(r.stderr.contains(n), "stderr should mention '\(n)': \(r.output)", file: file, line: line) }
        let count = r.stderr.components(separatedBy: "codistill: error:").count - 1
        XCTAssertEqual(count, 1, "exactly one error message: \(r.stderr)", file: file, line: line)
        if let dir, let before { XCTAssertEqual(Harness.fingerprint(dir), before, "checkpoints changed", file: file, line: line) }
    }

    func testUncreatablePeerDirectoryEndsEveryRank() throws {
        // Only the group leader creates the exchange; the other rank used to wait in a broadcast.
        let dir = Harness.temporaryDirectory("peerdir")
        try Harness.writeTinyIDX(in: dir)
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: dir + "/afile"))
        try assertFails(["train", "--data", dir, "--model", "mlp", "--steps", "2", "--batch", "8", "--exchange", "files",
                         "--peer-dir", dir + "/afile/peers", "--checkpoint-dir", dir + "/ck"],
                        mentions: ["afile/peers", "--peer-dir"])
    }

    func testGroupBatchLargerThanOneGroupsShare() throws {
        // 15 samples split into disjoint shares of 7 and 8: only group 0 cannot fill a batch of 8,
        // and group 1 used to wait for it forever.
        let dir = Harness.temporaryDirectory("share")
        try Harness.writeTinyIDX(in: dir, train: 15)
        try assertFails(["train", "--data", dir, "--model", "mlp", "--groups", "2", "--steps", "2", "--batch", "8",
                         "--checkpoint-dir", dir + "/ck"],
                        mentions: ["larger than the 7 training samples of group 0's share", "lower --batch"])
    }

    func testFailureInsideOneGroupEndsEveryRankWithItsMessage() throws {
        // Only group 1's metrics file cannot be created: its leader reports it and the job ends,
        // instead of world rank 0 (in group 0, which saw no failure) waiting in window creation.
        let dir = Harness.temporaryDirectory("groupfail")
        try Harness.writeTinyIDX(in: dir)
        try Data("not a directory".utf8).write(to: URL(fileURLWithPath: dir + "/m-1"))
        try assertFails(["train", "--data", dir, "--model", "mlp", "--groups", "2", "--steps", "2", "--batch", "8",
                         "--metrics", dir + "/m-{group}/metrics.csv", "--checkpoint-dir", dir + "/ck"],
                        mentions: ["m-1/metrics.csv"])
    }

    func testRanksOfAGroupResumeFromTheLeadersChoice() throws {
        // Rank 1 sees a directory whose newest checkpoint is older (a stale view of a shared
        // folder): both ranks must restore the leader's choice and agree on the parameters.
        let dir = Harness.temporaryDirectory("views")
        try Harness.writeTinyIDX(in: dir)
        let common = ["train", "--data", dir, "--model", "mlp", "--batch", "8", "--checkpoint-every", "2", "--keep-last", "0"]
        let first = try Harness.run(ranks: 2, common + ["--steps", "4", "--checkpoint-dir", dir + "/a"])
        XCTAssertEqual(first.status, 0, first.output)
        try FileManager.default.copyItem(atPath: dir + "/a", toPath: dir + "/b")
        try FileManager.default.removeItem(atPath: dir + "/b/group-0/step-00000004.h5")
        let more = common + ["--steps", "8", "--resume", "auto", "--consistency-every", "1"]
        let r = try Harness.run(ranks: 2, [], timeout: 60,
                                perRank: [more + ["--checkpoint-dir", dir + "/a"], more + ["--checkpoint-dir", dir + "/b"]])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssert(r.stdout.contains("resumed from \(dir)/a/group-0/step-00000004.h5 at step 4"), r.output)
    }

    func testRanksNotDivisibleByGroups() throws {
        try assertFails(ranks: 3, ["train", "--groups", "2", "--steps", "1"], mentions: ["3 ranks", "2 groups"])
    }

    func testUnknownModel() throws {
        try assertFails(["train", "--model", "resnet9000", "--steps", "1"], mentions: ["unknown model 'resnet9000'", "cnn"])
    }

    func testMissingDataset() throws {
        let dir = Harness.temporaryDirectory("missing")
        try assertFails(["train", "--data", dir + "/nowhere", "--steps", "1"], mentions: ["nowhere"])
    }

    func testCorruptDataset() throws {
        let dir = Harness.temporaryDirectory("corrupt")
        try Harness.writeTinyIDX(in: dir)
        try Data(repeating: 7, count: 100).write(to: URL(fileURLWithPath: dir + "/train-images-idx3-ubyte"))
        try assertFails(["train", "--data", dir, "--steps", "1", "--checkpoint-dir", dir + "/ck"], mentions: ["train-images-idx3-ubyte"])
    }

    func testLabelsOutOfRange() throws {
        // CIFAR-10 binary records: 1 label byte + 3072 pixel bytes; label 12 is outside 0..<10.
        let dir = Harness.temporaryDirectory("labels")
        func records(_ labels: [UInt8]) -> Data {
            var d = Data()
            for l in labels { d.append(l); d.append(contentsOf: [UInt8](repeating: 100, count: 3072)) }
            return d
        }
        for b in 1...5 { try records([0, 1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/data_batch_\(b).bin")) }
        try records([0, 12, 1]).write(to: URL(fileURLWithPath: dir + "/test_batch.bin"))
        try assertFails(["train", "--data", dir, "--steps", "2", "--batch", "4", "--checkpoint-dir", dir + "/ck"],
                        mentions: ["label 12", "test_batch.bin"])
    }

    func testCorruptCheckpointOnResume() throws {
        let dir = Harness.temporaryDirectory("badckpt")
        try Harness.writeTinyIDX(in: dir)
        let ok = try Harness.run(ranks: 2, ["train", "--data", dir, "--model", "mlp", "--steps", "4", "--batch", "8",
                                            "--checkpoint-dir", dir + "/ck"])
        XCTAssertEqual(ok.status, 0, ok.output)
        let bad = dir + "/ck/group-0/garbage.h5"
        try Data(repeating: 1, count: 4096).write(to: URL(fileURLWithPath: bad))
        try assertFails(["train", "--data", dir, "--model", "mlp", "--steps", "8", "--batch", "8", "--checkpoint-dir", dir + "/ck",
                         "--resume", bad], mentions: ["garbage.h5"], untouched: dir + "/ck")
        // A truncated copy of a real checkpoint.
        let real = dir + "/ck/group-0/step-00000004.h5", cut = dir + "/ck/group-0/truncated.h5"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: real))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
        try assertFails(["train", "--data", dir, "--model", "mlp", "--steps", "8", "--batch", "8", "--checkpoint-dir", dir + "/ck",
                         "--resume", cut], mentions: ["truncated.h5"], untouched: dir + "/ck")
    }

    func testCheckpointOfAnotherModel() throws {
        let dir = Harness.temporaryDirectory("othermodel")
        try Harness.writeTinyIDX(in: dir)
        let ok = try Harness.run(ranks: 2, ["train", "--data", dir, "--model", "mlp", "--steps", "2", "--batch", "8",
                                            "--checkpoint-dir", dir + "/ck"])
        XCTAssertEqual(ok.status, 0, ok.output)
        try assertFails(["train", "--data", dir, "--model", "cnn", "--steps", "4", "--batch", "8", "--checkpoint-dir", dir + "/ck",
                         "--resume", "auto"], mentions: ["mlp", "cnn"], untouched: dir + "/ck")
    }

    func testSynthBadInput() throws {
        let dir = Harness.temporaryDirectory("synth-bad")
        try assertFails(ranks: 0, ["synth", "--teacher", dir + "/absent.h5"], mentions: ["absent.h5"])
        try Data(repeating: 3, count: 64).write(to: URL(fileURLWithPath: dir + "/garbage.h5"))
        try assertFails(ranks: 0, ["synth", "--teacher", dir + "/garbage.h5"], mentions: ["garbage.h5"])
        try assertFails(ranks: 0, ["synth", "--teacher", dir + "/garbage.h5", "--method", "dreaming"],
                        mentions: ["dreaming", "fastdfkd", "deepinversion"])
    }
}

/// Checks on what a user passes that sit in code built with -Ounchecked (or that only a bounds
/// check would catch): the release binary must report them, not crash or read out of bounds.
final class ReleaseCheckTests: XCTestCase {
    /// A 4-class checkpoint evaluated on a dataset of the same image shape with 8 classes: labels
    /// 4...7 have no output of the model. The -Ounchecked release binary indexed the
    /// per-class tallies with them (no bounds check): `free(): invalid pointer`, signal 6.
    func testEvalOnDatasetWithMoreClasses() throws {
        let dir = Harness.temporaryDirectory("eval-classes")
        let four = dir + "/four", eight = dir + "/eight"
        for d in [four, eight] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }
        try Harness.writeTinyIDX(in: four, classes: 4)
        try Harness.writeTinyIDX(in: eight, classes: 8)
        let ok = try Harness.run(ranks: 2, ["train", "--data", four, "--model", "mlp", "--steps", "2", "--batch", "8",
                                            "--checkpoint-dir", dir + "/ck"])
        XCTAssertEqual(ok.status, 0, ok.output)
        let ckpt = dir + "/ck/group-0/step-00000002.h5"
        let r = try Harness.run(ranks: 0, ["eval", ckpt, "--data", eight], timeout: 60)
        XCTAssertNotEqual(r.status, 0, "must fail: \(r.output)")
        XCTAssertEqual(r.status, 1, "an error exit, not a signal or timeout: \(r.output)")
        for needle in ["4 classes", "8 classes", eight] {
            XCTAssert(r.stderr.contains(needle), "stderr should mention '\(needle)': \(r.output)")
        }
        XCTAssertEqual(r.stderr.components(separatedBy: "codistill: error:").count - 1, 1, r.stderr)
        // The same dataset with fewer classes than the model is fine (every label has an output).
        let fine = try Harness.run(ranks: 0, ["eval", ckpt, "--data", four], timeout: 60)
        XCTAssertEqual(fine.status, 0, fine.output)
    }

    /// Images whose one channel is constant have std 0: normalising divides by it. The -Ounchecked
    /// binary (BatchBuilder's precondition removed) trained on such inputs without a word, exit 0.
    func testConstantChannelIsReported() throws {
        let dir = Harness.temporaryDirectory("constant")
        try Harness.writeTinyIDX(in: dir, bright: 100, dark: 100, noise: 1)   // every pixel 100
        let r = try Harness.run(ranks: 2, ["train", "--data", dir, "--model", "mlp", "--steps", "2", "--batch", "8",
                                           "--checkpoint-dir", dir + "/ck"], timeout: 60)
        XCTAssertNotEqual(r.status, 0, "must fail: \(r.output)")
        XCTAssertNotEqual(r.status, 124, "timed out (a rank hung): \(r.output)")
        for needle in ["channel 0", "std 0", "--no-normalize"] {
            XCTAssert(r.stderr.contains(needle), "stderr should mention '\(needle)': \(r.output)")
        }
        XCTAssertFalse(r.output.lowercased().contains("nan"), r.output)
        // The fix the message names works.
        let ok = try Harness.run(ranks: 2, ["train", "--data", dir, "--model", "mlp", "--steps", "2", "--batch", "8",
                                            "--no-normalize", "--checkpoint-dir", dir + "/ck2"], timeout: 60)
        XCTAssertEqual(ok.status, 0, ok.output)
    }
}
