import Foundation
import TOMLKit
import Yams

/// Reads an experiment file into a TrainConfig: TOML (.toml) or YAML (.yaml/.yml). Keys are the
/// option names in snake_case or kebab-case (`weight_decay`, `checkpoint-dir`). Tables (TOML
/// `[optimizer]`, YAML nested mappings) only group keys: any table name is accepted and
/// `[codistillation]` with `burn_in = 100` sets the same option as a top-level `burn_in = 100`.
/// Command-line flags override the file.
public enum ExperimentFile {
    public static func load(path: String, into base: TrainConfig = TrainConfig()) throws -> TrainConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(description: "cannot read the experiment file '\(path)' (--config): check the path")
        }
        let settings: [ConfigSetting]
        if path.hasSuffix(".yaml") || path.hasSuffix(".yml") {
            settings = try yamlSettings(text, path: path)
        } else if path.hasSuffix(".toml") {
            settings = try tomlSettings(text, path: path)
        } else {
            throw ConfigError(description: "experiment file \(path): use a .toml or .yaml file")
        }
        return try base.applying(settings)
    }

    // MARK: TOML

    static func tomlSettings(_ text: String, path: String) throws -> [ConfigSetting] {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let line = error.source.begin.line
            throw ConfigError(description: "\(path):\(line): \(tomlHint(forLine: line, of: text) ?? error.description)")
        }
        var settings: [ConfigSetting] = []
        func walk(_ table: TOMLTable, tables: [String]) {
            for key in table.keys.sorted() {
                guard let value = table[key] else { continue }
                if let inner = value.table {
                    walk(inner, tables: tables + [key])
                } else {
                    let place = tables.isEmpty ? path : "\(path), table [\(tables.joined(separator: "."))]"
                    settings.append(ConfigSetting(name: key, value: native(value), place: place))
                }
            }
        }
        walk(root, tables: [])
        return settings
    }

    /// The usual mistake, an unquoted word as a value, said in the file's terms; nil for others
    /// (toml++'s own message is then shown).
    static func tomlHint(forLine line: Int, of text: String) -> String? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard line >= 1, line <= lines.count, let eq = lines[line - 1].firstIndex(of: "=") else { return nil }
        let value = lines[line - 1][lines[line - 1].index(after: eq)...].trimmingCharacters(in: .whitespaces)
        guard let first = value.first, first.isLetter, !value.hasPrefix("true"), !value.hasPrefix("false"),
              !value.hasPrefix("inf"), !value.hasPrefix("nan") else { return nil }
        let word = value.prefix { !$0.isWhitespace && $0 != "#" }
        return "expected a number, true/false or a quoted string, got '\(word)' (write \"\(word)\" for a string)"
    }

    /// A TOML value as a plain Swift value; dates and times stay text (no option takes one).
    static func native(_ value: TOMLValueConvertible) -> Any {
        switch value.type {
        case .string: return value.string!
        case .int: return value.int!
        case .double: return value.double!
        case .bool: return value.bool!
        case .array: return value.array!.map { native($0) }
        case .table: return value.table!.keys.reduce(into: [String: Any]()) { $0[$1] = native(value.table![$1]!) }
        case .date, .time, .dateTime: return value.debugDescription
        }
    }

    // MARK: YAML

    static func yamlSettings(_ text: String, path: String) throws -> [ConfigSetting] {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(description: "experiment file \(path) is not valid YAML: \(error)")
        }
        guard let root else { return [] }
        guard let mapping = root.mapping else {
            throw ConfigError(description: "experiment file \(path): expected 'key: value' lines, got \(root.any)")
        }
        var settings: [ConfigSetting] = []
        func walk(_ mapping: Node.Mapping) {
            for (keyNode, valueNode) in mapping {
                let place = "\(path):\(valueNode.mark?.line ?? keyNode.mark?.line ?? 0)"
                if let inner = valueNode.mapping {
                    walk(inner)
                } else {
                    settings.append(ConfigSetting(name: keyNode.string ?? "\(keyNode.any)", value: valueNode.any, place: place))
                }
            }
        }
        walk(mapping)
        return settings
    }
}

private extension Node {
    /// The node as plain Swift values (String, Int, Double, Bool, arrays, dictionaries).
    var any: Any { Constructor.default.any(from: self) }
}
