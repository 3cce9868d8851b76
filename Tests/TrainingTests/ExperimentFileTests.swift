import Foundation
import Inference
import XCTest
@testable import RunConfig

final class ExperimentFileTests: XCTestCase {
    func write(_ text: String, _ ext: String) throws -> String {
        let path = NSTemporaryDirectory() + "exp-\(UUID().uuidString).\(ext)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testTOMLAndYAMLGiveTheSameConfig() throws {
        let toml = try write("model = \"mlp\"  # comment\nweight_decay = 1e-4\nbatch = 32\nnesterov = true\ncheckpoint-dir = 'runs/x'\n", "toml")
        let yaml = try write("---\nmodel: mlp\nweight_decay: 1e-4\nbatch: 32\nnesterov: true\ncheckpoint-dir: runs/x\n", "yaml")
        let a = try ExperimentFile.load(path: toml), b = try ExperimentFile.load(path: yaml)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.model, "mlp")
        XCTAssertEqual(a.weightDecay, 1e-4)
        XCTAssertEqual(a.batch, 32)
        XCTAssertTrue(a.nesterov)
        XCTAssertEqual(a.checkpointDir, "runs/x")
        XCTAssertEqual(a.lr, TrainConfig().lr, "unset keys keep their defaults")
    }

    func testTheShippedExperimentFileLoads() throws {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let c = try ExperimentFile.load(path: url.appendingPathComponent("experiments/cnn.toml").path)
        XCTAssertEqual(c.model, "cnn")
        XCTAssertNoThrow(try c.validate())
    }

    func testUnknownKeyAndBadValuesAreNamed() throws {
        let unknown = try write("learning_rate = 0.1\n", "toml")
        XCTAssertThrowsError(try ExperimentFile.load(path: unknown)) { XCTAssert("\($0)".contains("unknown key 'learning_rate'"), "\($0)") }
        let bad = try write("batch = lots\n", "toml")
        XCTAssertThrowsError(try ExperimentFile.load(path: bad)) { XCTAssert("\($0)".contains(":1: expected a number"), "\($0)") }
        XCTAssertThrowsError(try ExperimentFile.load(path: "/nonexistent.toml")) { XCTAssert("\($0)".contains("cannot read"), "\($0)") }
    }

    /// Found by FuzzTests: nan and inf reached the JSON encoding of the configuration, which
    /// refused them with "this is a bug: please report it" instead of naming the key.
    func testNonFiniteNumbersAreNamed() throws {
        let toml = try write("lr = nan\n", "toml")
        XCTAssertThrowsError(try ExperimentFile.load(path: toml)) { XCTAssert("\($0)".contains("'lr' in \(toml) must be a finite number, got nan"), "\($0)") }
        let yaml = try write("momentum: .inf\n", "yaml")
        XCTAssertThrowsError(try ExperimentFile.load(path: yaml)) { XCTAssert("\($0)".contains("'momentum' in \(yaml):1 must be a finite number"), "\($0)") }
        let big = try write("temperature: 1e39\n", "yaml")
        XCTAssertThrowsError(try ExperimentFile.load(path: big)) { XCTAssert("\($0)".contains("must be a finite number"), "\($0)") }
        let flag = ConfigSetting(name: "weight-decay", value: Float.nan, place: "the command line")
        XCTAssertThrowsError(try TrainConfig().applying([flag])) { XCTAssert("\($0)".contains("'weight-decay' in the command line must be a finite number"), "\($0)") }
    }

    func testValidationNamesTheOption() throws {
        var c = TrainConfig()
        c.labelSmoothing = 1.5
        XCTAssertThrowsError(try c.validate()) { XCTAssert("\($0)".contains("--label-smoothing"), "\($0)") }
        // Found by OptionValuesTests: the schedule clamped these, so nonsense ran as something else;
        // an empty checkpoint directory wrote into the working directory.
        for (option, change) in [("--step-every", { (c: inout TrainConfig) in c.stepEvery = 0 }),
                                  ("--warmup-steps", { $0.warmupSteps = -1 }), ("--step-gamma", { $0.stepGamma = 0 }),
                                  ("--checkpoint-dir", { $0.checkpointDir = "" })] {
            var bad = TrainConfig()
            change(&bad)
            XCTAssertThrowsError(try bad.validate()) { XCTAssert("\($0)".contains(option), "\($0)") }
        }
        // An optimizer is an enum now, so a bad name cannot reach validate(); the file reader names it.
        let lamb = try write("optimizer = \"lamb\"\n", "toml")
        XCTAssertThrowsError(try ExperimentFile.load(path: lamb)) { XCTAssert("\($0)".contains("unknown optimizer 'lamb'"), "\($0)") }
    }

    func testChurnAndReport() {
        let a: [Float] = [0.9, 0.1, 0.2, 0.8], b: [Float] = [0.6, 0.4, 0.7, 0.3]
        let c = predictionChurn(a, b, classes: 2)
        XCTAssertEqual(c.disagreement, 0.5)
        XCTAssertEqual(c.meanAbsDiff, (0.3 + 0.3 + 0.5 + 0.5) / 4, accuracy: 1e-6)
        let r = EvaluationReport(probabilities: a, labels: [0, 0], classes: 2)
        XCTAssertEqual(r.accuracy, 0.5)
        XCTAssertEqual(r.perClassAccuracy, [0.5, 0])
    }
}

final class StoredConfigTests: XCTestCase {
    /// A checkpoint written before an option existed must still evaluate.
    func testConfigFromAnOlderVersionDecodesWithDefaults() throws {
        var c = TrainConfig()
        c.model = "mlp"
        var dict = try JSONSerialization.jsonObject(with: JSONEncoder().encode(c)) as! [String: Any]
        dict.removeValue(forKey: "weightDecayAfterBurnIn")
        dict.removeValue(forKey: "peerDir")
        dict["someRemovedOption"] = 3
        let json = String(decoding: try JSONSerialization.data(withJSONObject: dict), as: UTF8.self)
        let back = try TrainConfig.decode(json: json)
        XCTAssertEqual(back.model, "mlp")
        XCTAssertEqual(back.weightDecayAfterBurnIn, TrainConfig().weightDecayAfterBurnIn)
        XCTAssertThrowsError(try TrainConfig.decode(json: "[1]"))
    }
}
