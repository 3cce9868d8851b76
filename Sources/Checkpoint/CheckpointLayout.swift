import HDF5

/// One object or attribute of a checkpoint file. `Checkpoint.layout` lists them all; the writer,
/// the reader and `inspect` take names, types and whether an entry must be there from it, so the
/// layout is spelled once.
public struct CheckpointEntry: Equatable, Sendable, CustomStringConvertible {
    public enum AttributeType: String, Sendable { case string, int64, uint64, float64 }

    public enum Kind: Equatable, Sendable {
        case group
        case attribute(AttributeType)
        /// A dataset of this element type; `shape` says which (for `inspect` and the docs).
        case dataset(HDF5ElementType, shape: String)
    }

    /// "/model", "/state/rng" for objects; "<group>@<name>" for attributes ("/@step",
    /// "/state/data@seed"). "<...>" is a name the file chooses ("/model/<tensor>").
    public let path: String
    public let kind: Kind
    /// Whether a file lacks it only when its group is missing (an optional group's children
    /// are required when that group is there).
    public let required: Bool
    /// What it holds, in words.
    public let holds: String

    init(_ path: String, _ kind: Kind, required: Bool = true, _ holds: String) {
        self.path = path; self.kind = kind; self.required = required; self.holds = holds
    }

    public var isAttribute: Bool { if case .attribute = kind { return true } else { return false } }

    /// The group it is in ("/", "/model", "/state/data").
    public var parent: String {
        if isAttribute { return String(path[..<path.firstIndex(of: "@")!]) }
        let up = path[..<path.lastIndex(of: "/")!]
        return up.isEmpty ? "/" : String(up)
    }

    /// Its own name ("step", "rng", "<tensor>").
    public var name: String {
        isAttribute ? String(path[path.index(after: path.firstIndex(of: "@")!)...])
                    : String(path[path.index(after: path.lastIndex(of: "/")!)...])
    }

    /// True when the file chooses the name (one entry per tensor, state, metric).
    public var isTemplate: Bool { path.contains("<") }

    /// "attribute 'step' of /" or "/state/rng", for messages.
    public var description: String { isAttribute ? "attribute '\(name)' of \(parent)" : path }

    /// Whether `path` (same notation) is an instance of this entry: a "<...>" part matches any
    /// name that ends with the text after it ("<batch norm>.num_batches_tracked").
    public func matches(_ other: String) -> Bool {
        let sep: Character = isAttribute ? "@" : "/"
        guard other.contains("@") == isAttribute else { return false }
        func split(_ p: String) -> [Substring] {
            guard sep == "@", let at = p.firstIndex(of: "@") else { return p.split(separator: "/", omittingEmptySubsequences: false) }
            return p[..<at].split(separator: "/", omittingEmptySubsequences: false) + [p[p.index(after: at)...]]
        }
        let mine = split(path), theirs = split(other)
        guard mine.count == theirs.count else { return false }
        for (pattern, part) in zip(mine, theirs) {
            if let close = pattern.firstIndex(of: ">"), pattern.first == "<" {
                let suffix = pattern[pattern.index(after: close)...]
                // A module at the root has no prefix: "num_batches_tracked" itself.
                guard !part.isEmpty, part.hasSuffix(suffix) || (suffix.first == "." && part == suffix.dropFirst()) else { return false }
            } else if pattern != part {
                return false
            }
        }
        return true
    }
}

extension CheckpointEntry {
    public static let root = CheckpointEntry("/", .group, "the run's metadata, as the attributes below")
    public static let format = CheckpointEntry("/@format", .attribute(.string), "\"\(Checkpoint.format)\"")
    public static let formatVersion = CheckpointEntry("/@format_version", .attribute(.int64), "the layout version, \(Checkpoint.formatVersion)")
    public static let step = CheckpointEntry("/@step", .attribute(.int64), "optimizer steps completed")
    public static let epoch = CheckpointEntry("/@epoch", .attribute(.int64), "the epoch")
    public static let group = CheckpointEntry("/@group", .attribute(.int64), "this group's index")
    public static let numGroups = CheckpointEntry("/@num_groups", .attribute(.int64), "groups in the run")
    public static let worldSize = CheckpointEntry("/@world_size", .attribute(.int64), "ranks in the run")
    public static let model = CheckpointEntry("/@model", .attribute(.string), "the ModelSpec as JSON, sorted keys")
    public static let config = CheckpointEntry("/@config", .attribute(.string), "the run's full configuration as JSON")
    public static let created = CheckpointEntry("/@created", .attribute(.string), "when it was written, ISO 8601 UTC")

    public static let modelGroup = CheckpointEntry("/model", .group, "a PyTorch state_dict")
    // Before `tensor`: the first entry that matches a name describes it.
    public static let batchesTracked = CheckpointEntry("/model/<batch norm>.num_batches_tracked", .dataset(.int64, shape: "scalar"),
                                                       "BatchNorm.numBatchesTracked, under PyTorch's name")
    public static let tensor = CheckpointEntry("/model/<tensor>", .dataset(.float32, shape: "the tensor's shape"),
                                               "a parameter, or a buffer such as a running statistic")

    public static let optimizer = CheckpointEntry("/optimizer", .group, required: false,
                                                  "the optimizer state; absent in store-only snapshots")
    public static let optimizerKind = CheckpointEntry("/optimizer@kind", .attribute(.string), "sgd, adam or adamw")
    public static let optimizerStep = CheckpointEntry("/optimizer@step", .attribute(.int64), "the optimizer's step count")
    public static let optimizerState = CheckpointEntry("/optimizer/<state>", .group, required: false,
                                                       "one state buffer: momentum, exp_avg, ...")
    public static let optimizerView = CheckpointEntry("/optimizer/<state>/<tensor>", .dataset(.float32, shape: "the tensor's shape"),
                                                      "that state for one trainable tensor")

    public static let state = CheckpointEntry("/state", .group, "everything exact resume needs besides tensors")
    public static let rng = CheckpointEntry("/state/rng", .dataset(.uint64, shape: "[4]"), "the training RNG's words")
    public static let data = CheckpointEntry("/state/data", .group, "the position in the data order")
    public static let dataEpoch = CheckpointEntry("/state/data@epoch", .attribute(.int64), "the epoch")
    public static let stepInEpoch = CheckpointEntry("/state/data@step_in_epoch", .attribute(.int64), "steps done in the epoch")
    public static let dataSeed = CheckpointEntry("/state/data@seed", .attribute(.uint64), "the data order's seed")
    public static let dataStep = CheckpointEntry("/state/data@step", .attribute(.int64), required: false,
                                                 "optimizer steps completed; older files use /@step")

    public static let exchange = CheckpointEntry("/codistillation", .group, required: false,
                                                 "a codistilled run's exchange state, for exact resume")
    public static let exchangeSnapshot = CheckpointEntry("/codistillation/<snapshot>", .dataset(.float32, shape: "[values, then buffers]"),
                                                         required: false,
                                                         "a flat snapshot: published-<slot> (this group's last two publications) or peer-<i> (what it distils from)")
    public static let exchangeName = CheckpointEntry("/codistillation/<snapshot>@name", .attribute(.string), required: false,
                                                     "the publisher: this group, or the peer's name")
    public static let exchangeSequence = CheckpointEntry("/codistillation/<snapshot>@sequence", .attribute(.uint64), required: false,
                                                         "the publication's number (1 at the end of burn-in)")
    public static let exchangeStep = CheckpointEntry("/codistillation/<snapshot>@step", .attribute(.int64), required: false,
                                                     "the training step it was taken at")

    public static let metrics = CheckpointEntry("/metrics", .group, required: false, "evaluation results")
    public static let metric = CheckpointEntry("/metrics@<name>", .attribute(.float64), required: false, "one metric: test_acc, loss, ...")
}

extension Checkpoint {
    /// The checkpoint file format, version `formatVersion`: every group, dataset and attribute.
    public static let layout: [CheckpointEntry] = [
        .root, .format, .formatVersion, .step, .epoch, .group, .numGroups, .worldSize, .model, .config, .created,
        .modelGroup, .batchesTracked, .tensor,
        .optimizer, .optimizerKind, .optimizerStep, .optimizerState, .optimizerView,
        .state, .rng, .data, .dataEpoch, .stepInEpoch, .dataSeed, .dataStep,
        .exchange, .exchangeSnapshot, .exchangeName, .exchangeSequence, .exchangeStep,
        .metrics, .metric,
    ]

    /// The layout entry that describes `path` (same notation as `CheckpointEntry.path`), if any.
    static func entry(for path: String) -> CheckpointEntry? {
        layout.first { $0.path == path } ?? layout.first { $0.matches(path) }
    }
}
