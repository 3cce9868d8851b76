import Foundation
import XCTest
@testable import RunConfig

/// The experiment-file parser (TOML and YAML) on mutated files: values replaced by huge, negative,
/// non-finite, empty and wrongly typed ones, unknown keys, repeated and deleted lines, and bytes
/// mutated on top. What loads must then validate or be refused, as `train --config` does.
final class ExperimentFileFuzzTests: XCTestCase {
    /// Every key with its default, so each option's value is mutated: `key = value` or `key: value`.
    static func seed(separator: String) throws -> String {
        func literal(_ v: Any) -> String {
            switch v {
            case let s as String: return "\"\(s)\""
            case let c as any OptionChoice: return "\"\(c.rawValue)\""
            case let a as [Float]: return "[" + a.map { "\($0)" }.joined(separator: ", ") + "]"
            default: return "\(v)"
            }
        }
        return Mirror(reflecting: TrainConfig()).children.compactMap { child in
            child.label.map { TrainConfig.snakeCase($0) + separator + literal(child.value) }
        }.joined(separator: "\n") + "\n"
    }

    func fuzz(_ name: String, ext: String, separator: String) throws {
        let path = NSTemporaryDirectory() + "codistill-fuzz-\(UUID().uuidString).\(ext)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let seed = try Self.seed(separator: separator)
        try seed.write(toFile: path, atomically: false, encoding: .utf8)
        XCTAssertEqual(try ExperimentFile.load(path: path), TrainConfig(), "the seed \(ext) file must give the defaults")

        var campaign = Campaign(name)
        try campaign.run(input: { _, rng in
            var mutator = TextMutator(rng: SplitMix64(seed: rng.next()))
            let text = mutator.mutate(seed, separator: separator)
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            let changed = zip(seed.split(separator: "\n"), text.split(separator: "\n")).first { $0 != $1 }
            return "first changed line: \(changed.map { "\($0.1)" } ?? "(lines removed or added)")"
        }, read: {
            try ExperimentFile.load(path: path).validate()
        })
    }

    func testTOML() throws { try fuzz("experiment toml", ext: "toml", separator: " = ") }
    func testYAML() throws { try fuzz("experiment yaml", ext: "yaml", separator: ": ") }
}
