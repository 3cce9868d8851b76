import Engine
import Foundation
import HDF5
import NN

/// A checkpoint that cannot be written, read or restored. The description names the file, the
/// problem and the fix.
public struct CheckpointError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Everything exact resume needs besides tensors.
public struct RunState: Codable, Equatable {
    /// Optimizer steps completed.
    public var step: Int
    public var epoch: Int
    /// `RandomGenerator.words` of the training RNG (4 words).
    public var rngWords: [UInt64]
    public var dataSeed: UInt64
    public var stepInEpoch: Int
    public init(step: Int, epoch: Int, rngWords: [UInt64], dataSeed: UInt64, stepInEpoch: Int) {
        self.step = step; self.epoch = epoch; self.rngWords = rngWords
        self.dataSeed = dataSeed; self.stepInEpoch = stepInEpoch
    }
}

public struct CheckpointMetadata: Codable, Equatable {
    /// The layout version; `write` always writes `Checkpoint.formatVersion`.
    public var formatVersion: Int
    public var step: Int, epoch: Int, group: Int, numGroups: Int, worldSize: Int
    public var model: ModelSpec
    /// The run's full configuration as JSON (attribute "config").
    public var configJSON: String
    /// ISO 8601.
    public var created: String
    public init(formatVersion: Int = Checkpoint.formatVersion, step: Int, epoch: Int, group: Int, numGroups: Int,
                worldSize: Int, model: ModelSpec, configJSON: String, created: String = Checkpoint.timestamp()) {
        self.formatVersion = formatVersion; self.step = step; self.epoch = epoch; self.group = group
        self.numGroups = numGroups; self.worldSize = worldSize; self.model = model
        self.configJSON = configJSON; self.created = created
    }
}

/// One snapshot of a codistilled run's exchange, kept in its checkpoints so that a resumed run
/// publishes what it had published and distils from the same peer snapshots.
public struct ExchangeSnapshot: Equatable {
    public enum Role: String { case published, peer }
    public var role: Role
    /// The publisher: "self" for this group's own, else the peer's name.
    public var name: String
    public var sequence: UInt64
    public var step: Int
    /// A flat snapshot (ParameterStore.writeSnapshot layout).
    public var values: [Float]
    public init(role: Role, name: String, sequence: UInt64, step: Int, values: [Float]) {
        self.role = role; self.name = name; self.sequence = sequence; self.step = step; self.values = values
    }
}

public struct LoadedCheckpoint {
    public let path: String
    public let metadata: CheckpointMetadata
    public let state: RunState
    /// /model/<name>: parameters and buffers.
    public let tensors: [String: (shape: [Int], values: [Float])]
    /// /model/<bn name>.num_batches_tracked (int64 scalars, PyTorch's name).
    public let numBatchesTracked: [String: Int]
    /// "sgd", "adam", "adamw"; nil when the file has no /optimizer.
    public let optimizerKind: String?
    public let optimizerStep: Int
    /// State name ("momentum", "exp_avg", ...) -> view name -> values.
    public let optimizerState: [String: [String: [Float]]]
    /// /metrics attributes.
    public let metrics: [String: Double]
    /// /codistillation: empty for runs without an exchange.
    public var exchange: [ExchangeSnapshot] = []

    public init(path: String, metadata: CheckpointMetadata, state: RunState,
                tensors: [String: (shape: [Int], values: [Float])], numBatchesTracked: [String: Int],
                optimizerKind: String?, optimizerStep: Int, optimizerState: [String: [String: [Float]]],
                metrics: [String: Double]) {
        self.path = path; self.metadata = metadata; self.state = state; self.tensors = tensors
        self.numBatchesTracked = numBatchesTracked; self.optimizerKind = optimizerKind
        self.optimizerStep = optimizerStep; self.optimizerState = optimizerState; self.metrics = metrics
    }
}

public enum Checkpoint {
    public static let format = "codistill-checkpoint"
    /// The newest layout this build writes and reads.
    public static let formatVersion = 1
    static let bnSuffix = ".num_batches_tracked"

    /// Now, in ISO 8601 (UTC), for `CheckpointMetadata.created`.
    public static func timestamp(_ date: Date = Date()) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    static func bnDatasetName(_ module: String) -> String {
        module.isEmpty ? String(bnSuffix.dropFirst()) : module + bnSuffix
    }

    // MARK: Write

    /// Writes `path` atomically (`HDF5File.createAtomically`: `<path>.tmp` in the same folder,
    /// created if missing, then flush, close, fsync, rename, fsync the folder). On any error the
    /// temporary file is removed and an existing `path` is left untouched. What goes where is
    /// `Checkpoint.layout` (docs/CHECKPOINTS.md shows it as a tree).
    /// Fault injection for tests: seconds every write pauses after the parameters and before the
    /// optimizer state and run state (0: no pause).
    nonisolated(unsafe) public static var pauseMidWriteSeconds = 0.0

    public static func write(path: String, store: ParameterStore, optimizer: Optimizer?, metadata: CheckpointMetadata,
                             state: RunState, metrics: [String: Double] = [:], exchange: [ExchangeSnapshot] = []) throws {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        func fail(_ why: String) -> CheckpointError {
            CheckpointError("cannot write checkpoint \(path): \(why). Any previous checkpoint at that path is unchanged; "
                            + "check that \(dir) is writable and its disk has space.")
        }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw fail("cannot create the folder \(dir) (\(error.localizedDescription))")
        }
        let modelJSON: String
        do {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            modelJSON = String(decoding: try enc.encode(metadata.model), as: UTF8.self)
        } catch {
            throw fail("cannot encode the model spec as JSON (\(error))")
        }
        do {
            try HDF5File.createAtomically(at: path) { root in
                try writeContents(root: root, store: store, optimizer: optimizer, metadata: metadata,
                                  modelJSON: modelJSON, state: state, metrics: metrics)
                try writeExchange(exchange, root: root)
            }
        } catch let e as HDF5Error {
            throw fail("\(e.file): \(e.reason)")
        }
    }

    /// Sets attribute `entry` (of `object`, its group) to `value`, as the layout's type says.
    static func set(_ entry: CheckpointEntry, on object: HDF5Object, name: String? = nil, _ value: Any) throws {
        let name = name ?? entry.name
        switch (entry.kind, value) {
        case (.attribute(.string), let v as String): try object.setAttribute(name, v)
        case (.attribute(.int64), let v as Int): try object.setAttribute(name, v)
        case (.attribute(.uint64), let v as UInt64): try object.setAttribute(name, v)
        case (.attribute(.float64), let v as Double): try object.setAttribute(name, v)
        default: preconditionFailure("\(entry) is \(entry.kind) in Checkpoint.layout, not \(type(of: value))")
        }
    }

    /// Writes float32 views of `base` (a store's values, buffers or an optimizer state) as datasets of `group`.
    static func writeViews(_ views: [ParameterStore.View], of base: UnsafeMutablePointer<Float>, entry: CheckpointEntry,
                           into group: HDF5Group) throws {
        guard case .dataset(.float32, _) = entry.kind else { preconditionFailure("\(entry) is not float32 in Checkpoint.layout") }
        for v in views {
            try group.writeDataset(v.name, shape: v.shape, from: UnsafeBufferPointer(start: base + v.offset, count: v.count))
        }
    }

    static func writeContents(root: HDF5Group, store: ParameterStore, optimizer: Optimizer?, metadata: CheckpointMetadata,
                              modelJSON: String, state: RunState, metrics: [String: Double]) throws {
        let rootValues: [(CheckpointEntry, Any)] = [
            (.format, format), (.formatVersion, formatVersion), (.step, metadata.step), (.epoch, metadata.epoch),
            (.group, metadata.group), (.numGroups, metadata.numGroups), (.worldSize, metadata.worldSize),
            (.model, modelJSON), (.config, metadata.configJSON), (.created, metadata.created),
        ]
        for (entry, value) in rootValues { try set(entry, on: root, value) }

        let model = try root.createGroup(CheckpointEntry.modelGroup.name)
        try writeViews(store.trainable, of: store.values, entry: .tensor, into: model)
        try writeViews(store.buffersLayout, of: store.buffers, entry: .tensor, into: model)
        for (name, bn) in store.batchNorms {
            try model.writeScalar(bnDatasetName(name), Int64(bn.numBatchesTracked))
        }
        if pauseMidWriteSeconds > 0 { usleep(UInt32(pauseMidWriteSeconds * 1e6)) }

        if let optimizer {
            let og = try root.createGroup(CheckpointEntry.optimizer.name)
            try set(.optimizerKind, on: og, optimizer.kind)
            try set(.optimizerStep, on: og, optimizer.stepCount)
            for (stateName, buffer) in optimizer.stateBuffers {
                try writeViews(store.trainable, of: buffer, entry: .optimizerView, into: try og.createGroup(stateName))
            }
        }

        let sg = try root.createGroup(CheckpointEntry.state.name)
        try sg.writeDataset(CheckpointEntry.rng.name, shape: [state.rngWords.count], state.rngWords)
        let data = try sg.createGroup(CheckpointEntry.data.name)
        try set(.dataEpoch, on: data, state.epoch)
        try set(.stepInEpoch, on: data, state.stepInEpoch)
        try set(.dataSeed, on: data, state.dataSeed)
        try set(.dataStep, on: data, state.step)

        let mg = try root.createGroup(CheckpointEntry.metrics.name)
        for (k, v) in metrics.sorted(by: { $0.key < $1.key }) {
            try set(.metric, on: mg, name: k, v)
        }
    }

    static func writeExchange(_ snapshots: [ExchangeSnapshot], root: HDF5Group) throws {
        guard !snapshots.isEmpty else { return }
        let g = try root.createGroup(CheckpointEntry.exchange.name)
        var counts: [ExchangeSnapshot.Role: Int] = [:]
        for s in snapshots {
            let name = "\(s.role.rawValue)-\(counts[s.role, default: 0])"
            counts[s.role, default: 0] += 1
            try g.writeDataset(name, shape: [s.values.count], s.values)
            let d = try g.dataset(name)
            try set(.exchangeName, on: d, s.name)
            try set(.exchangeSequence, on: d, s.sequence)
            try set(.exchangeStep, on: d, s.step)
        }
    }

    static func readExchange(root: HDF5Group) throws -> [ExchangeSnapshot] {
        guard root.contains(CheckpointEntry.exchange.name) else { return [] }
        let g = try root.group(CheckpointEntry.exchange.name)
        var out: [ExchangeSnapshot] = []
        for name in try g.childNames().sorted() where try g.kind(of: name) == .dataset {
            let d = try g.dataset(name)
            guard let role = ExchangeSnapshot.Role(rawValue: String(name.prefix { $0 != "-" })) else {
                throw damaged(root, "\(d.path) is neither published-<slot> nor peer-<i>")
            }
            out.append(ExchangeSnapshot(role: role, name: try d.stringAttribute(CheckpointEntry.exchangeName.name),
                                        sequence: try d.uint64Attribute(CheckpointEntry.exchangeSequence.name),
                                        step: try d.intAttribute(CheckpointEntry.exchangeStep.name),
                                        values: try d.read(Float.self)))
        }
        return out
    }

    // MARK: Read

    /// Opens `path` read-only after checking that it is a complete codistill checkpoint this build
    /// can read; each problem (missing, not HDF5, truncated, not a checkpoint, too new) has its own message.
    static func openChecked(_ path: String) throws -> HDF5File {
        let file: HDF5File
        do {
            file = try HDF5File.open(path)
        } catch let e as HDF5Error {
            switch e.problem {
            case .missingFile:
                throw CheckpointError("no checkpoint at \(path): the file does not exist. Check the path; checkpoints are "
                                      + "CHECKPOINT_DIR/group-<g>/step-<8-digit step>.h5.")
            case .isDirectory:
                throw CheckpointError("\(path) is a folder, not a checkpoint; pass one of its step-<8-digit step>.h5 files.")
            case .permissionDenied:
                throw CheckpointError("cannot read checkpoint \(path): permission denied. Make the file readable (chmod) or run as its owner.")
            case .emptyFile:
                throw CheckpointError("checkpoint \(path) is empty (0 bytes): its write was cut off. Delete it and use an older "
                                      + "checkpoint of the group (resume picks the newest complete one).")
            case .failsSeal:
                throw CheckpointError("checkpoint \(path) is \(e.reason). Delete it and use an "
                                      + "older checkpoint of the group (resume picks the newest complete one); if you changed it on purpose "
                                      + "with another HDF5 tool, `codistill inspect --reseal \(path)` seals it again.")
            case .notHDF5:
                throw CheckpointError("\(path) is not an HDF5 file (it lacks the HDF5 signature), so it is not a codistill "
                                      + "checkpoint. Pass a step-<8-digit step>.h5 file written by codistill.")
            default:
                let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
                throw CheckpointError("checkpoint \(path) is truncated or damaged: it starts like an HDF5 file but HDF5 cannot "
                                      + "open it (\(size) bytes), typically a copy or write that was cut off. Delete it and use "
                                      + "an older checkpoint of the group (resume picks the newest complete one).")
            }
        }
        let root = file.root
        guard root.hasAttribute(CheckpointEntry.format.name) else {
            throw CheckpointError("\(path) is an HDF5 file but not a codistill checkpoint: it has no root attribute "
                                  + "'format'. Pass a step-<8-digit step>.h5 file written by codistill.")
        }
        let f = try? root.stringAttribute(CheckpointEntry.format.name)
        guard f == format else {
            throw CheckpointError("\(path) is an HDF5 file but not a codistill checkpoint: its 'format' attribute is "
                                  + "\(f.map { "'\($0)'" } ?? "not a string"), expected '\(format)'.")
        }
        guard let version = try? root.intAttribute(CheckpointEntry.formatVersion.name) else {
            throw CheckpointError("checkpoint \(path) has no readable root attribute 'format_version'; it is damaged "
                                  + "or was not written by codistill.")
        }
        guard version <= formatVersion else {
            throw CheckpointError("checkpoint \(path) has format_version \(version), newer than this build supports "
                                  + "(\(formatVersion)). Upgrade codistill to read it.")
        }
        guard version >= 1 else {
            throw CheckpointError("checkpoint \(path) has an invalid format_version \(version); it is damaged.")
        }
        return file
    }

    /// Seals `path` again (HDF5Seal) after a deliberate edit by another HDF5 tool, so that it
    /// opens; the checks of `read` still apply after it.
    public static func reseal(path: String) throws {
        do { try HDF5Seal.seal(path) } catch let e as HDF5Error {
            throw CheckpointError("cannot seal \(path): \(e.reason); \(e.fix).")
        }
    }

    public static func read(path: String) throws -> LoadedCheckpoint {
        let file = try openChecked(path)
        do {
            return try readContents(root: file.root)
        } catch let e as HDF5Error {
            throw CheckpointError("checkpoint \(path) is damaged or incomplete: \(e.reason). Delete it and use an older "
                                  + "checkpoint of the group (resume picks the newest complete one).")
        }
    }

    /// A layout violation, reported like a damaged object.
    static func damaged(_ root: HDF5Group, _ reason: String) -> HDF5Error {
        HDF5Error(.missingObject, file: root.file, reason, fix: "write it again")
    }

    /// Every required, fixed-name entry of the layout whose group is in the file must be there too.
    static func requireLayout(_ root: HDF5Group) throws {
        for entry in layout where entry.required && !entry.isTemplate && entry != .root {
            let parent = entry.parent == "/" ? root : (root.contains(String(entry.parent.dropFirst())) ? try root.group(String(entry.parent.dropFirst())) : nil)
            guard let parent else { continue }  // an optional group that is absent (else reported as missing itself)
            let present = entry.isAttribute ? parent.hasAttribute(entry.name) : parent.contains(entry.name)
            guard present else {
                throw damaged(root, entry.parent == "/" && entry.isAttribute ? "root attribute '\(entry.name)' is missing" : "\(entry) is missing")
            }
        }
    }

    static func readContents(root: HDF5Group) throws -> LoadedCheckpoint {
        try requireLayout(root)
        let modelJSON = try root.stringAttribute(CheckpointEntry.model.name)
        let spec: ModelSpec
        do {
            spec = try JSONDecoder().decode(ModelSpec.self, from: Data(modelJSON.utf8))
        } catch {
            throw damaged(root, "root attribute 'model' is not a model spec: \(modelJSON)")
        }
        func int(_ e: CheckpointEntry, _ g: HDF5Group) throws -> Int { try g.intAttribute(e.name) }
        let metadata = CheckpointMetadata(
            formatVersion: try int(.formatVersion, root), step: try int(.step, root), epoch: try int(.epoch, root),
            group: try int(.group, root), numGroups: try int(.numGroups, root), worldSize: try int(.worldSize, root),
            model: spec, configJSON: try root.stringAttribute(CheckpointEntry.config.name),
            created: try root.stringAttribute(CheckpointEntry.created.name))

        // /model: each dataset is what the first matching layout entry says it is.
        let mg = try root.group(CheckpointEntry.modelGroup.name)
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        var tracked: [String: Int] = [:]
        for name in try mg.childNames() where try mg.kind(of: name) == .dataset {
            let d = try mg.dataset(name)
            if entry(for: d.path) == .batchesTracked {
                let v: [Int64] = try d.read()
                guard v.count == 1 else { throw damaged(root, "\(d.path) should be one integer, has \(v.count) values") }
                let module = name == String(bnSuffix.dropFirst()) ? "" : String(name.dropLast(bnSuffix.count))
                tracked[module] = Int(v[0])
            } else {
                tensors[name] = (d.shape, try d.read(Float.self))
            }
        }

        // /optimizer
        var kind: String? = nil, optStep = 0
        var optState: [String: [String: [Float]]] = [:]
        if root.contains(CheckpointEntry.optimizer.name) {
            let og = try root.group(CheckpointEntry.optimizer.name)
            kind = try og.stringAttribute(CheckpointEntry.optimizerKind.name)
            optStep = try int(.optimizerStep, og)
            for stateName in try og.childNames() where try og.kind(of: stateName) == .group {
                let sg = try og.group(stateName)
                var views: [String: [Float]] = [:]
                for name in try sg.childNames() where try sg.kind(of: name) == .dataset {
                    views[name] = try sg.dataset(name).read(Float.self)
                }
                optState[stateName] = views
            }
        }

        // /state
        let sg = try root.group(CheckpointEntry.state.name)
        let rng: [UInt64] = try sg.dataset(CheckpointEntry.rng.name).read()
        let dg = try sg.group(CheckpointEntry.data.name)
        let state = RunState(
            step: dg.hasAttribute(CheckpointEntry.dataStep.name) ? try int(.dataStep, dg) : metadata.step,
            epoch: try int(.dataEpoch, dg), rngWords: rng,
            dataSeed: try dg.uint64Attribute(CheckpointEntry.dataSeed.name), stepInEpoch: try int(.stepInEpoch, dg))

        // /metrics
        var metrics: [String: Double] = [:]
        if root.contains(CheckpointEntry.metrics.name) {
            let g = try root.group(CheckpointEntry.metrics.name)
            for name in try g.attributeNames() {
                if let v = try? g.doubleAttribute(name) { metrics[name] = v }
            }
        }

        var loaded = LoadedCheckpoint(path: root.file, metadata: metadata, state: state, tensors: tensors,
                                      numBatchesTracked: tracked, optimizerKind: kind, optimizerStep: optStep,
                                      optimizerState: optState, metrics: metrics)
        loaded.exchange = try readExchange(root: root)
        return loaded
    }

    // MARK: Restore

    static func describe(_ spec: ModelSpec) -> String {
        "'\(spec.name)' (input \(spec.inputShape.map(String.init).joined(separator: "x")), \(spec.classes) classes)"
    }

    /// Copies a loaded checkpoint into `store` (and `optimizer`): every tensor of the store must be
    /// in the checkpoint with the same shape and the checkpoint may hold no other tensor, else a
    /// `CheckpointError` listing the first mismatches. Everything is validated before anything is
    /// copied, so on error the store and optimizer are unchanged. Also restores
    /// `BatchNorm.numBatchesTracked` and `optimizer.stepCount`.
    ///
    /// `model`, the spec this run built the store from, is optional; when given, the error names it
    /// next to the checkpoint's model.
    public static func restore(_ ckpt: LoadedCheckpoint, into store: ParameterStore, optimizer: Optimizer?,
                               model: ModelSpec? = nil) throws {
        func shape(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
        // Tensor mismatches by kind, so the message shows some of each.
        var wrongShape: [String] = [], onlyHere: [String] = [], onlyThere: [String] = []
        for v in store.trainable + store.buffersLayout {
            guard let t = ckpt.tensors[v.name] else { onlyHere.append("\(v.name) \(shape(v.shape))"); continue }
            if t.shape != v.shape {
                wrongShape.append("\(v.name) is \(shape(t.shape)) in the checkpoint but \(shape(v.shape)) in this model")
            } else if t.values.count != v.count {
                wrongShape.append("\(v.name) has \(t.values.count) values in the checkpoint, \(v.count) expected")
            }
        }
        let known = Set(store.trainable.map(\.name) + store.buffersLayout.map(\.name))
        for name in ckpt.tensors.keys.sorted() where !known.contains(name) {
            onlyThere.append("\(name) \(shape(ckpt.tensors[name]!.shape))")
        }
        let bnNames = Set(store.batchNorms.map(\.0))
        for (name, _) in store.batchNorms where ckpt.numBatchesTracked[name] == nil {
            onlyHere.append(bnDatasetName(name))
        }
        for name in ckpt.numBatchesTracked.keys.sorted() where !bnNames.contains(name) {
            onlyThere.append(bnDatasetName(name))
        }

        var optimizerProblems: [String] = []
        if let optimizer {
            if let kind = ckpt.optimizerKind {
                if kind != optimizer.kind {
                    optimizerProblems.append("the checkpoint's optimizer is '\(kind)' but this run uses '\(optimizer.kind)'")
                } else {
                    let mine = optimizer.stateBuffers.map(\.0)
                    for name in mine {
                        guard let views = ckpt.optimizerState[name] else {
                            optimizerProblems.append("optimizer state '\(name)' is missing from the checkpoint"); continue
                        }
                        for v in store.trainable {
                            guard let values = views[v.name] else {
                                optimizerProblems.append("/optimizer/\(name)/\(v.name) is missing from the checkpoint"); continue
                            }
                            if values.count != v.count {
                                optimizerProblems.append("/optimizer/\(name)/\(v.name) has \(values.count) values, \(v.count) expected")
                            }
                        }
                        for extra in Set(views.keys).subtracting(store.trainable.map(\.name)).sorted() {
                            optimizerProblems.append("/optimizer/\(name)/\(extra) is in the checkpoint but not in this model")
                        }
                    }
                    for name in ckpt.optimizerState.keys.sorted() where !mine.contains(name) {
                        optimizerProblems.append("the checkpoint has optimizer state '\(name)' that this '\(kind)' optimizer "
                                                 + "does not keep (different momentum setting?)")
                    }
                }
            } else {
                optimizerProblems.append("the checkpoint has no optimizer state but this run uses '\(optimizer.kind)'")
            }
        }

        let tensorProblems = wrongShape.count + onlyHere.count + onlyThere.count
        if tensorProblems + optimizerProblems.count > 0 {
            var head = "checkpoint \(ckpt.path) was written for model \(describe(ckpt.metadata.model))"
            if let model {
                head += "; this run builds \(describe(model))"
            } else if let first = store.trainable.first {
                head += "; this run's model has \(store.trainable.count + store.buffersLayout.count) tensors, the first "
                    + "\(first.name) \(shape(first.shape))"
            }
            func some(_ items: [String], _ n: Int, separator: String) -> String {
                items.prefix(n).joined(separator: separator) + (items.count > n ? "\(separator)... (\(items.count - n) more)" : "")
            }
            var lines: [String] = []
            if !wrongShape.isEmpty { lines.append("  - shapes differ: " + some(wrongShape, 4, separator: "; ")) }
            if !onlyHere.isEmpty { lines.append("  - only in this model: " + some(onlyHere, 4, separator: ", ")) }
            if !onlyThere.isEmpty { lines.append("  - only in the checkpoint: " + some(onlyThere, 4, separator: ", ")) }
            // Per-view optimizer problems only repeat tensor ones; show them when the tensors fit.
            if !optimizerProblems.isEmpty && tensorProblems == 0 { lines.append("  - optimizer: " + some(optimizerProblems, 4, separator: "; ")) }
            let what = tensorProblems > 0 ? "its tensors do not fit" : "its optimizer state does not fit"
            let fix = tensorProblems > 0
                ? "Resume with the model, input shape and class count the checkpoint names (`codistill inspect \(ckpt.path)`), or start a new run in another checkpoint folder."
                : "Resume with the optimizer settings the checkpoint was written with (`codistill inspect \(ckpt.path)`), or start a new run in another checkpoint folder."
            throw CheckpointError("\(head), and \(what):\n" + lines.joined(separator: "\n") + "\n" + fix + " Nothing was restored.")
        }

        // Everything fits: copy.
        func copy(_ values: [Float], to dest: UnsafeMutablePointer<Float>) {
            values.withUnsafeBufferPointer { if let src = $0.baseAddress { dest.update(from: src, count: $0.count) } }
        }
        for v in store.trainable { copy(ckpt.tensors[v.name]!.values, to: store.values + v.offset) }
        for v in store.buffersLayout { copy(ckpt.tensors[v.name]!.values, to: store.buffers + v.offset) }
        for (name, bn) in store.batchNorms { bn.numBatchesTracked = ckpt.numBatchesTracked[name]! }
        if let optimizer {
            for (name, buffer) in optimizer.stateBuffers {
                let views = ckpt.optimizerState[name]!
                for v in store.trainable { copy(views[v.name]!, to: buffer + v.offset) }
            }
            optimizer.stepCount = ckpt.optimizerStep
        }
    }

    // MARK: Files of a group

    /// CHECKPOINT_DIR/group-<g>/step-<8-digit step>.h5
    public static func path(directory: String, group: Int, step: Int) -> String {
        path(directory: directory, folder: "group-\(group)", step: step)
    }

    /// DIRECTORY/<folder>/step-<8-digit step>.h5 (the file exchange names folders after jobs).
    public static func path(directory: String, folder: String, step: Int) -> String {
        let digits = String(step)
        let padded = String(repeating: "0", count: max(0, 8 - digits.count)) + digits
        return URL(fileURLWithPath: directory).appendingPathComponent(folder)
            .appendingPathComponent("step-\(padded).h5").path
    }

    /// The step files of a folder (never *.tmp), newest step first.
    public static func stepFiles(directory: String, folder: String) -> [(step: Int, path: String)] {
        let dir = URL(fileURLWithPath: directory).appendingPathComponent(folder)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { return [] }
        var out: [(Int, String)] = []
        for name in names where name.hasPrefix("step-") && name.hasSuffix(".h5") {
            let digits = name.dropFirst(5).dropLast(3)
            guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let step = Int(digits) else { continue }
            out.append((step, dir.appendingPathComponent(name).path))
        }
        return out.sorted { ($0.0, $0.1) > ($1.0, $1.1) }
    }

    /// The newest complete checkpoint of a group: scans group-<g>/step-*.h5 (never *.tmp), newest
    /// step first, and returns the first that opens and has format "codistill-checkpoint" (and a
    /// format_version this build reads). Newer files that fail are returned in `skipped`.
    public static func latest(directory: String, group: Int) -> (path: String?, skipped: [String]) {
        latest(directory: directory, folder: "group-\(group)")
    }

    /// The same for any folder under `directory`.
    public static func latest(directory: String, folder: String) -> (path: String?, skipped: [String]) {
        var skipped: [String] = []
        for (_, path) in stepFiles(directory: directory, folder: folder) {
            if (try? openChecked(path)) != nil { return (path, skipped) }
            skipped.append(path)
        }
        return (nil, skipped)
    }

    /// Deletes all but the newest `keep` step files of the group (never *.tmp, never other
    /// groups). `keep <= 0` keeps all.
    public static func prune(directory: String, group: Int, keep: Int) throws {
        try prune(directory: directory, folder: "group-\(group)", keep: keep)
    }

    public static func prune(directory: String, folder: String, keep: Int) throws {
        // Called after a checkpoint was completed by the folder's only writer: any other
        // `.tmp` there is what a killed write left behind.
        let dir = directory + "/" + folder
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasSuffix(".h5.tmp") {
            try? FileManager.default.removeItem(atPath: dir + "/" + name)
        }
        guard keep > 0 else { return }
        for (_, path) in stepFiles(directory: directory, folder: folder).dropFirst(keep) {
            do {
                try FileManager.default.removeItem(atPath: path)
            } catch {
                throw CheckpointError("cannot delete old checkpoint \(path) (\(error.localizedDescription)); check that its "
                                      + "folder is writable, or set the number of checkpoints to keep to 0 to keep all.")
            }
        }
    }
}
