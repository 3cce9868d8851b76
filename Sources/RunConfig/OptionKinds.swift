/// The closed sets of values some options take. Each is stored (checkpoint JSON, experiment files,
/// the command line) as its raw string, the spelling users type, so checkpoints written when these
/// were plain strings decode unchanged.
public protocol OptionChoice: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {
    /// What the option is called in messages ("optimizer", "--exchange").
    static var optionName: String { get }
}

extension OptionChoice {
    /// Every accepted spelling, in declaration order.
    public static var choiceNames: [String] { allCases.map(\.rawValue) }

    /// Reads a spelling; the error names the option and lists the choices.
    public static func parse(_ text: String) throws -> Self {
        guard let value = Self(rawValue: text) else {
            throw ConfigError(description: "unknown \(optionName) '\(text)': choose one of \(choiceNames.joined(separator: ", "))")
        }
        return value
    }
}

public enum OptimizerKind: String, OptionChoice {
    case sgd, adam, adamw
    public static let optionName = "optimizer"
}

public enum ScheduleKind: String, OptionChoice {
    case constant, step, cosine
    public static let optionName = "schedule"
}

/// How groups exchange predictions: one-sided MPI windows, a shared directory, or not at all.
public enum ExchangeKind: String, OptionChoice {
    case rma, files, none
    public static let optionName = "--exchange"
}

/// When a group reads its peers: whatever they last published, never waiting (async), or exactly
/// their snapshot of the previous exchange step, waiting for a peer that is behind (lockstep:
/// reproducible bit for bit).
public enum ExchangeMode: String, OptionChoice {
    case async, lockstep
    public static let optionName = "--exchange-mode"
}

/// Which peers a group follows: every other group, or group g-1 only.
public enum Topology: String, OptionChoice {
    case all, ring
    public static let optionName = "--topology"
}

/// Whether each group trains on its own 1/G share of the training set or all on all of it.
public enum DataSplit: String, OptionChoice {
    case disjoint, same
    public static let optionName = "--data-split"
}
