import Foundation
import XCTest

/// eval, inspect and data on files a short training run writes.
final class CommandTests: XCTestCase {
    func testEvalInspectAndDataOnATrainedRun() throws {
        let dir = Harness.temporaryDirectory("commands")
        try Harness.writeTinyIDX(in: dir)
        for seed in ["1", "2"] {
            let r = try Harness.run(ranks: 2, ["train", "--data", dir, "--model", "cnn", "--steps", "20", "--batch", "16",
                                               "--seed", seed, "--checkpoint-dir", dir + "/s" + seed, "--consistency-every", "5",
                                               "--metrics", dir + "/s" + seed + "/metrics-{group}.jsonl"])
            XCTAssertEqual(r.status, 0, r.output)
        }
        let a = dir + "/s1/group-0/step-00000020.h5", b = dir + "/s2/group-0/step-00000020.h5"
        let jsonl = try String(contentsOfFile: dir + "/s1/metrics-0.jsonl", encoding: .utf8)
        XCTAssert(jsonl.hasPrefix("{\"step\":"), jsonl)

        let eval = try Harness.run(ranks: 0, ["eval", a, b, "--ensemble", "--churn"])
        XCTAssertEqual(eval.status, 0, eval.output)
        XCTAssert(eval.stdout.contains("ensemble:"), eval.output)
        XCTAssert(eval.stdout.contains("per class:"), eval.output)
        XCTAssert(eval.stdout.contains("churn:"), eval.output)

        let json = try Harness.run(ranks: 0, ["eval", a, "--json"])
        XCTAssertEqual(json.status, 0, json.output)
        let obj = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        XCTAssertNotNil(obj?["results"], json.stdout)

        let inspect = try Harness.run(ranks: 0, ["inspect", a])
        XCTAssertEqual(inspect.status, 0, inspect.output)
        XCTAssert(inspect.stdout.contains("features.0.weight"), inspect.output)
        let inspectJSON = try Harness.run(ranks: 0, ["inspect", a, "--json"])
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(inspectJSON.stdout.utf8)), inspectJSON.output)

        let h5 = dir + "/tiny.h5"
        let convert = try Harness.run(ranks: 0, ["data", "convert", dir, h5])
        XCTAssertEqual(convert.status, 0, convert.output)
        let info = try Harness.run(ranks: 0, ["data", "info", h5])
        XCTAssertEqual(info.status, 0, info.output)
        XCTAssert(info.stdout.contains("512"), info.output)
        // The converted file trains like the original.
        let again = try Harness.run(ranks: 2, ["train", "--data", h5, "--model", "mlp", "--steps", "5", "--batch", "8",
                                               "--checkpoint-dir", dir + "/h5run"])
        XCTAssertEqual(again.status, 0, again.output)

        let missing = try Harness.run(ranks: 0, ["eval", dir + "/none.h5"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssert(missing.stderr.contains("none.h5"), missing.output)
    }

    func testResumeWithAnotherRankCountIsRefused() throws {
        let dir = Harness.temporaryDirectory("ranks")
        try Harness.writeTinyIDX(in: dir)
        let r = try Harness.run(ranks: 2, ["train", "--data", dir, "--model", "mlp", "--steps", "4", "--batch", "8", "--checkpoint-dir", dir + "/ck"])
        XCTAssertEqual(r.status, 0, r.output)
        let before = Harness.fingerprint(dir + "/ck")
        let again = try Harness.run(ranks: 1, ["train", "--data", dir, "--model", "mlp", "--steps", "8", "--batch", "8",
                                               "--checkpoint-dir", dir + "/ck", "--resume", "auto"], timeout: 60)
        XCTAssertNotEqual(again.status, 0, again.output)
        XCTAssert(again.stderr.contains("2 ranks") && again.stderr.contains("same mpirun -np"), again.output)
        XCTAssertEqual(Harness.fingerprint(dir + "/ck"), before)
    }
}
