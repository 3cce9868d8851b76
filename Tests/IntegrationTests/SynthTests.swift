import Foundation
import XCTest

/// `codistill synth` end to end on a teacher a short training run writes: both methods run,
/// report synthesis time and accuracy, and leave a student checkpoint `eval` reads.
final class SynthTests: XCTestCase {
    func testSynthDistilsAStudentFromATeacherCheckpoint() throws {
        let dir = Harness.temporaryDirectory("synth")
        try Harness.writeTinyIDX(in: dir)
        let trained = try Harness.run(ranks: 1, ["train", "--data", dir, "--model", "cnn", "--steps", "60", "--batch", "32",
                                                 "--checkpoint-dir", dir + "/teacher"])
        XCTAssertEqual(trained.status, 0, trained.output)
        let teacher = dir + "/teacher/group-0/step-00000060.h5"
        // Data-free for real: the training split is gone (the teacher's checkpoint records its
        // input normalisation); only the test split remains, for evaluation.
        for f in try FileManager.default.contentsOfDirectory(atPath: dir) where f.hasPrefix("train-") {
            try FileManager.default.removeItem(atPath: dir + "/" + f)
        }

        for (method, steps) in [("fastdfkd", "2"), ("deepinversion", "4")] {
            let student = dir + "/\(method)/student.h5", metrics = dir + "/\(method)/metrics.jsonl"
            let r = try Harness.run(ranks: 0, ["synth", "--teacher", teacher, "--method", method, "--student", "mlp",
                                               "--rounds", "4", "--batch", "16", "--steps", steps, "--kd-steps", "5",
                                               "--kd-batch", "16", "--adv-warmup", "1", "--eval-every", "2",
                                               "--out", student, "--metrics", metrics])
            XCTAssertEqual(r.status, 0, r.output)
            for needle in ["synthesis_s=", "teacher_acc=", "test_acc=", "round 4/4"] {
                XCTAssert(r.stdout.contains(needle), "\(method): stdout should contain \(needle): \(r.output)")
            }
            let rows = try String(contentsOfFile: metrics, encoding: .utf8).split(separator: "\n")
            XCTAssertEqual(rows.count, 4, "one metrics row per round")
            let last = try JSONSerialization.jsonObject(with: Data(rows[3].utf8)) as? [String: Any]
            XCTAssertEqual(last?["pool_size"] as? Int, 64)
            XCTAssertGreaterThan(last?["synthesis_seconds"] as? Double ?? 0, 0)
            XCTAssertNotEqual(last?["adv_loss"] as? Double ?? 0, 0, "the adversarial term is on after warm-up")

            XCTAssertFalse(r.stdout.contains("computing it from the training split"), r.output)
            let eval = try Harness.run(ranks: 0, ["eval", student])
            XCTAssertEqual(eval.status, 0, eval.output)
        }
    }
}
