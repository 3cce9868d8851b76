import Foundation

/// Reads an experiment file into a TrainConfig: flat TOML (`key = value`, `#` comments) or flat
/// YAML (`key: value`), chosen by extension (.toml, .yaml/.yml). Keys are the option names in
/// snake_case or kebab-case (`weight_decay`, `checkpoint-dir`); command-line flags override them.
public enum ExperimentFile {
    public static func load(path: String, into base: TrainConfig = TrainConfig()) throws -> TrainConfig {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ConfigError(description: "cannot read the experiment file \(path): check the path")
        }
        let yaml = path.hasSuffix(".yaml") || path.hasSuffix(".yml")
        guard yaml || path.hasSuffix(".toml") else {
            throw ConfigError(description: "experiment file \(path): use a .toml or .yaml file")
        }
        var dict = try JSONSerialization.jsonObject(with: JSONEncoder().encode(base)) as! [String: Any]
        // Property types, to parse "true" as a Bool and "3" as a number where the config wants them.
        var kinds: [String: Any.Type] = [:]
        for child in Mirror(reflecting: base).children { if let l = child.label { kinds[l] = type(of: child.value) } }
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = String(raw)
            line = stripComment(line)
            line = line.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line == "---" { continue }
            let sep: Character = yaml ? ":" : "="
            guard let i = line.firstIndex(of: sep) else {
                throw ConfigError(description: "\(path):\(number + 1): expected 'key \(sep) value', got '\(line)'")
            }
            let key = camelCase(line[..<i].trimmingCharacters(in: .whitespaces))
            let value = line[line.index(after: i)...].trimmingCharacters(in: .whitespaces)
            guard let current = dict[key] else {
                throw ConfigError(description: "\(path):\(number + 1): unknown key '\(line[..<i].trimmingCharacters(in: .whitespaces))'; known keys: \(dict.keys.sorted().map(snakeCase).joined(separator: ", "))")
            }
            _ = current
            dict[key] = try parse(value, as: kinds[key] ?? String.self, at: "\(path):\(number + 1)")
        }
        do {
            return try JSONDecoder().decode(TrainConfig.self, from: JSONSerialization.data(withJSONObject: dict))
        } catch {
            throw ConfigError(description: "experiment file \(path): \(error)")
        }
    }

    static func parse(_ value: String, as kind: Any.Type, at place: String) throws -> Any {
        var v = value
        if v.count >= 2, (v.hasPrefix("\"") && v.hasSuffix("\"")) || (v.hasPrefix("'") && v.hasSuffix("'")) {
            v = String(v.dropFirst().dropLast())
        }
        switch kind {
        case is String.Type: return v
        case is Bool.Type:
            guard let b = Bool(v.lowercased()) else { throw ConfigError(description: "\(place): expected true or false, got '\(value)'") }
            return b
        default:
            guard let d = Double(v.replacingOccurrences(of: "_", with: "")) else {
                throw ConfigError(description: "\(place): expected a number, got '\(value)'")
            }
            return d
        }
    }

    /// Drops a `#` comment that is not inside a quoted string.
    static func stripComment(_ line: String) -> String {
        var quote: Character? = nil
        for (i, c) in zip(line.indices, line) {
            if let q = quote { if c == q { quote = nil } } else if c == "\"" || c == "'" { quote = c } else if c == "#" {
                return String(line[..<i])
            }
        }
        return line
    }

    static func camelCase(_ s: String) -> String {
        let parts = s.split(whereSeparator: { $0 == "_" || $0 == "-" })
        guard let first = parts.first else { return s }
        return String(first) + parts.dropFirst().map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()
    }

    static func snakeCase(_ s: String) -> String {
        s.reduce(into: "") { out, c in
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
    }
}
