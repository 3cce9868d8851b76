import DataFree
import Foundation
import XCTest
@testable import RunConfig

/// Experiment files with tables, misspelt keys and wrong types; the option enums' stored form.
final class ConfigSettingsTests: XCTestCase {
    func write(_ text: String, _ ext: String) throws -> String {
        let path = NSTemporaryDirectory() + "settings-\(UUID().uuidString).\(ext)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func assertFails(_ text: String, _ ext: String, mentions needles: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write(text, ext)
        XCTAssertThrowsError(try ExperimentFile.load(path: path), file: file, line: line) { error in
            for n in needles { XCTAssert("\(error)".contains(n), "'\(error)' should mention '\(n)'", file: file, line: line) }
        }
    }

    func testNestedTOMLTablesOnlyGroupKeys() throws {
        let c = try ExperimentFile.load(path: try write("""
            model = "mlp"
            [optimizer]
            optimizer = "adamw"
            lr = 0.1
            weight-decay = 1e-4
            [codistillation]
            burn_in = 100
            exchange = "none"
            topology = "ring"
            [data.augmentation]
            horizontal_flip = true
            """, "toml"))
        XCTAssertEqual(c.model, "mlp")
        XCTAssertEqual(c.optimizer, .adamw)
        XCTAssertEqual(c.lr, 0.1)
        XCTAssertEqual(c.weightDecay, 1e-4)
        XCTAssertEqual(c.burnIn, 100)
        XCTAssertEqual(c.exchange, ExchangeKind.none)
        XCTAssertEqual(c.topology, .ring)
        XCTAssertTrue(c.horizontalFlip)
        XCTAssertEqual(c.batch, TrainConfig().batch, "unset keys keep their defaults")
    }

    func testNestedYAMLMappingsOnlyGroupKeys() throws {
        let c = try ExperimentFile.load(path: try write("""
            model: mlp
            optimizer:
              optimizer: sgd
              lr: 0.2
              weight_decay: 1e-4
              nesterov: true
            codistillation:
              burn-in: 50
              data_split: same
            seed: 7
            """, "yaml"))
        XCTAssertEqual(c.model, "mlp")
        XCTAssertEqual(c.optimizer, .sgd)
        XCTAssertEqual(c.lr, 0.2)
        XCTAssertEqual(c.weightDecay, 1e-4)
        XCTAssertTrue(c.nesterov)
        XCTAssertEqual(c.burnIn, 50)
        XCTAssertEqual(c.dataSplit, .same)
        XCTAssertEqual(c.seed, 7)
    }

    func testMisspeltKeySuggestsTheClosest() throws {
        try assertFails("[optimizer]\nlearning_rate = 0.1\n", "toml", mentions: ["unknown key 'learning_rate'", "table [optimizer]", "did you mean 'lr'?"])
        try assertFails("wieght_decay = 0.1\n", "toml", mentions: ["unknown key 'wieght_decay'", "did you mean 'weight_decay'?"])
        try assertFails("optimizer:\n  momentun: 0.5\n", "yaml", mentions: ["unknown key 'momentun'", ".yaml:2", "did you mean 'momentum'?"])
        // Nothing close: no guess, a pointer to the list instead.
        try assertFails("colour_of_the_sky = 1\n", "toml", mentions: ["unknown key 'colour_of_the_sky'", "codistill train --help"])
    }

    func testWrongTypesNameKeyAndType() throws {
        try assertFails("batch = \"lots\"\n", "toml", mentions: ["'batch'", "must be an integer", "the string 'lots'"])
        try assertFails("batch: 3.5\n", "yaml", mentions: ["'batch'", "must be an integer", "3.5"])
        try assertFails("lr = true\n", "toml", mentions: ["'lr'", "must be a number"])
        try assertFails("nesterov = 1\n", "toml", mentions: ["'nesterov'", "must be true or false"])
        try assertFails("model = 3\n", "toml", mentions: ["'model'", "must be a string"])
        try assertFails("[codistillation]\ntopology = \"rong\"\n", "toml", mentions: ["unknown --topology 'rong'", "all, ring"])
        try assertFails("lr = 0.1\n[optimizer]\nlr = 0.2\n", "toml", mentions: ["sets lr again"])
    }

    func testFlagsOverrideTheFile() throws {
        let file = try ExperimentFile.load(path: try write("lr = 0.1\nbatch = 16\n", "toml"))
        let c = try file.applying([ConfigSetting(name: "lr", value: Float(0.3), place: "the command line"),
                                   ConfigSetting(name: "optimizer", value: OptimizerKind.adam, place: "the command line")])
        XCTAssertEqual(c.lr, 0.3)
        XCTAssertEqual(c.optimizer, .adam)
        XCTAssertEqual(c.batch, 16, "a key the flags do not give keeps the file's value")
    }

    func testEnumsRoundTripThroughTheirStoredStrings() throws {
        func roundTrip<E: OptionChoice & Equatable>(_ type: E.Type) throws {
            for value in E.allCases {
                let json = try JSONEncoder().encode([value])
                XCTAssertEqual(String(decoding: json, as: UTF8.self), "[\"\(value.rawValue)\"]")
                XCTAssertEqual(try JSONDecoder().decode([E].self, from: json), [value])
                XCTAssertEqual(try E.parse(value.rawValue), value)
            }
            XCTAssertThrowsError(try E.parse("bogus")) { XCTAssert("\($0)".contains(E.choiceNames.joined(separator: ", ")), "\($0)") }
        }
        try roundTrip(OptimizerKind.self)
        try roundTrip(ScheduleKind.self)
        try roundTrip(ExchangeKind.self)
        try roundTrip(Topology.self)
        try roundTrip(DataSplit.self)
        try roundTrip(SynthesisMethod.self)
        XCTAssertEqual(SynthesisMethod.allCases.map(\.rawValue), ["fastdfkd", "deepinversion"])
    }

    /// A checkpoint's config as versions with string-typed options wrote it (no testData field).
    func testOldStringConfigStillDecodes() throws {
        let old = """
            {"model":"cnn","data":"/d","groups":2,"batch":64,"epochs":3,"steps":0,"optimizer":"adamw","lr":0.05,
             "schedule":"step","warmupSteps":0,"stepEvery":1000,"stepGamma":0.1,"momentum":0.9,"nesterov":false,
             "weightDecay":0.0005,"labelSmoothing":0,"seed":1,"normalize":true,"randomCropPadding":0,"horizontalFlip":false,
             "evalEvery":0,"checkpointDir":"runs/x","checkpointEvery":0,"keepLast":3,"logEvery":50,"consistencyEvery":0,
             "blasThreads":1,"metrics":"","exchange":"files","exchangeEvery":50,"distillWeight":1,"burnIn":0,"distillRamp":0,
             "temperature":1,"topology":"ring","dataSplit":"same","weightDecayAfterBurnIn":-1,"peerDir":"/p","peerName":""}
            """
        let c = try TrainConfig.decode(json: old)
        XCTAssertEqual(c.optimizer, .adamw)
        XCTAssertEqual(c.schedule, .step)
        XCTAssertEqual(c.exchange, .files)
        XCTAssertEqual(c.topology, .ring)
        XCTAssertEqual(c.dataSplit, .same)
        XCTAssertEqual(c.testData, "", "a field added since takes its default")
        // And the JSON written now keeps the same strings.
        XCTAssert(c.json.contains("\"optimizer\":\"adamw\"") && c.json.contains("\"topology\":\"ring\""), c.json)
    }

    func testEditDistance() {
        XCTAssertEqual(TrainConfig.editDistance("kitten", "sitting"), 3)
        XCTAssertEqual(TrainConfig.editDistance("", "abc"), 3)
        XCTAssertEqual(TrainConfig.editDistance("lr", "lr"), 0)
        XCTAssertEqual(TrainConfig.closestKey(to: "batch-size"), "batch")
    }
}
