import Foundation

/// One named value for a TrainConfig field, from an experiment file or the command line.
public struct ConfigSetting {
    /// The name as the user wrote it: snake_case, kebab-case or camelCase (`weight_decay`,
    /// `weight-decay`, `weightDecay`).
    public var name: String
    /// String, Bool, Int, Double, Float, UInt64, an `OptionChoice` value, or an array of numbers.
    public var value: Any
    /// Where it was written, for messages: "exp.yaml:3", "exp.toml, table [optimizer]".
    public var place: String

    public init(name: String, value: Any, place: String) {
        self.name = name; self.value = value; self.place = place
    }
}

/// Applies named settings on top of a configuration. The one place that knows the option names:
/// they are TrainConfig's property names, read from the type itself, so a new field is settable
/// from files and flags without being listed anywhere else.
extension TrainConfig {
    /// Property names (camelCase) and their types, in declaration order.
    static let fields: [(name: String, type: Any.Type)] = Mirror(reflecting: TrainConfig()).children.compactMap { child in
        child.label.map { ($0, type(of: child.value)) }
    }

    /// The option names as experiment files spell them (snake_case).
    public static var keyNames: [String] { fields.map { snakeCase($0.name) } }

    /// This configuration with `settings` applied in order. Each name must be a field (the error
    /// suggests the closest one), each value of the field's type, and no name may appear twice.
    public func applying(_ settings: [ConfigSetting]) throws -> TrainConfig {
        let types = Dictionary(uniqueKeysWithValues: Self.fields)
        var dict = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self)) as! [String: Any]
        var seen: [String: ConfigSetting] = [:]
        for setting in settings {
            let key = Self.camelCase(setting.name)
            guard let type = types[key] else {
                let hint = Self.closestKey(to: setting.name).map { "did you mean '\($0)'?" }
                    ?? "the keys are the option names of `codistill train --help`, e.g. weight_decay"
                throw ConfigError(description: "unknown key '\(setting.name)' in \(setting.place): \(hint)")
            }
            if let earlier = seen[key] {
                throw ConfigError(description: "'\(setting.name)' in \(setting.place) sets \(Self.snakeCase(key)) again (already set as '\(earlier.name)' in \(earlier.place)): keep one")
            }
            seen[key] = setting
            dict[key] = try Self.jsonValue(setting, as: type)
        }
        do {
            return try JSONDecoder().decode(TrainConfig.self, from: JSONSerialization.data(withJSONObject: dict))
        } catch {
            throw ConfigError(description: "the settings do not form a configuration (\(error)); this is a bug: please report it")
        }
    }

    /// The value as JSON for the field's Codable form, or an error naming key, place and the type wanted.
    static func jsonValue(_ setting: ConfigSetting, as type: Any.Type) throws -> Any {
        let value = setting.value
        func wrong(_ expected: String) -> ConfigError {
            ConfigError(description: "'\(setting.name)' in \(setting.place) must be \(expected), got \(describe(value))")
        }
        func number(_ v: Any) -> Double? {
            switch v {
            case let d as Double: return d
            case let f as Float: return Double(f)
            case let i as Int: return Double(i)
            default: return nil
            }
        }
        switch type {
        case is String.Type:
            guard let s = value as? String else { throw wrong("a string (in quotes)") }
            return s
        case is Bool.Type:
            guard let b = value as? Bool else { throw wrong("true or false") }
            return b
        case is Int.Type:
            guard let i = value as? Int else { throw wrong("an integer") }
            return i
        case is UInt64.Type:
            if let u = value as? UInt64 { return u }
            guard let i = value as? Int, i >= 0 else { throw wrong("a non-negative integer") }
            return i
        case is Float.Type:
            guard let d = number(value) else { throw wrong("a number") }
            // nan and inf (TOML's nan/inf, YAML's .nan/.inf, a flag's "nan") and numbers past
            // Float's range mean nothing for any option, and JSON, the configuration's stored
            // form, cannot hold them: refused here, by name, not later as "a bug".
            guard Self.isFiniteFloat(d) else { throw wrong("a finite number") }
            return d
        case is [Float].Type:
            guard let list = value as? [Any] else { throw wrong("a list of numbers") }
            let numbers = list.compactMap(number)
            guard numbers.count == list.count else { throw wrong("a list of numbers") }
            guard numbers.allSatisfy(Self.isFiniteFloat) else { throw wrong("a list of finite numbers") }
            return numbers
        case let choice as any OptionChoice.Type:
            if let given = value as? any OptionChoice { return given.rawValue }
            guard let s = value as? String else { throw wrong("one of \(choice.choiceNames.joined(separator: ", "))") }
            guard choice.choiceNames.contains(s) else {
                throw ConfigError(description: "unknown \(choice.optionName) '\(s)' in \(setting.place): choose one of \(choice.choiceNames.joined(separator: ", "))")
            }
            return s
        default:
            fatalError("TrainConfig field '\(setting.name)' has type \(type), which ConfigSetting cannot set: add a case")
        }
    }

    static func isFiniteFloat(_ d: Double) -> Bool { d.isFinite && abs(d) <= Double(Float.greatestFiniteMagnitude) }

    static func describe(_ value: Any) -> String {
        switch value {
        case let s as String: return "the string '\(s)'"
        case is Bool, is Int, is Double, is Float: return "\(value)"
        case is [Any]: return "a list"
        case is [String: Any]: return "a table"
        default: return "\(value)"
        }
    }

    /// The known key nearest to a misspelt one: fewest single-character edits, where a key that
    /// is the initials of the name's words (`learning_rate` -> `lr`) or its first words
    /// (`batch_size` -> `batch`) counts as one edit. Nil when even the nearest is too far to be
    /// a plausible slip.
    static func closestKey(to name: String) -> String? {
        let wanted = snakeCase(camelCase(name))
        let initials = String(wanted.split(separator: "_").compactMap(\.first))
        let scored = keyNames.map { key -> (key: String, distance: Int) in
            let abbreviates = (key == initials && initials.count > 1) || wanted.hasPrefix(key + "_")
            return (key, abbreviates ? 1 : editDistance(wanted, key))
        }
        guard let best = scored.min(by: { $0.distance < $1.distance }) else { return nil }
        return best.distance <= max(2, wanted.count / 3) ? best.key : nil
    }

    /// Levenshtein distance: insertions, deletions and substitutions.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        var row = Array(0...b.count)
        for i in 1...a.count {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let substitution = previous + (a[i - 1] == b[j - 1] ? 0 : 1)
                previous = row[j]
                row[j] = min(substitution, row[j] + 1, row[j - 1] + 1)
            }
        }
        return row[b.count]
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
