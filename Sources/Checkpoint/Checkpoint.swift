import CHDF5
import Engine
import Foundation
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

    /// Writes `path` atomically: `<path>.tmp` in the same folder (created if missing), H5Fflush +
    /// H5Fclose, fsync the file, rename, fsync the folder. On any error the temporary file is
    /// removed and an existing `path` is left untouched.
    ///
    /// Layout: root attributes format, format_version, step, epoch, group, num_groups, world_size,
    /// model (JSON of ModelSpec), config, created; /model/<state_dict name> float32 with real
    /// shapes (trainable and buffer views); /model/<bn>.num_batches_tracked int64 scalars;
    /// /optimizer (attributes kind, step) with /optimizer/<state name>/<view name> float32;
    /// /state/rng uint64[4]; /state/data attributes epoch, step_in_epoch, seed (uint64), step;
    /// /metrics attributes (float64).
    public static func write(path: String, store: ParameterStore, optimizer: Optimizer?, metadata: CheckpointMetadata,
                             state: RunState, metrics: [String: Double] = [:]) throws {
        _ = H5.setup
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

        let tmp = path + ".tmp"
        var file: hid_t = -1
        do {
            let fapl = try H5.strongCloseFapl()
            defer { H5Pclose(fapl) }
            errno = 0
            file = H5Fcreate(tmp, cd_h5f_acc_trunc(), H5.P, fapl)
            if file < 0 { throw H5Failure("cannot create \(tmp)\(systemError())") }
            try writeContents(file: file, store: store, optimizer: optimizer, metadata: metadata,
                              modelJSON: modelJSON, state: state, metrics: metrics)
            errno = 0
            try H5.ok(H5Fflush(file, H5F_SCOPE_GLOBAL), "cannot flush \(tmp)\(systemError())")
            let f = file
            file = -1
            try H5.ok(H5Fclose(f), "cannot close \(tmp)\(systemError())")
            try fsyncPath(tmp, directory: false)
            guard rename(tmp, path) == 0 else { throw H5Failure("cannot rename \(tmp) to \(path)\(systemError())") }
        } catch {
            if file >= 0 { H5Fclose(file) }
            unlink(tmp)
            throw fail((error as? H5Failure)?.message ?? "\(error)")
        }
        // The rename is durable once the folder is synced; a folder that cannot be synced (some
        // network file systems) still has the complete file.
        try? fsyncPath(dir, directory: true)
    }

    static func systemError() -> String {
        errno == 0 ? "" : " (\(String(cString: strerror(errno))))"
    }

    static func fsyncPath(_ path: String, directory: Bool) throws {
        let fd = open(path, directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY)
        guard fd >= 0 else { throw H5Failure("cannot open \(path) to sync it\(systemError())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw H5Failure("cannot sync \(path) to disk\(systemError())") }
    }

    static func writeContents(file: hid_t, store: ParameterStore, optimizer: Optimizer?, metadata: CheckpointMetadata,
                              modelJSON: String, state: RunState, metrics: [String: Double]) throws {
        try H5.setAttribute(file, "format", format)
        try H5.setAttribute(file, "format_version", formatVersion)
        try H5.setAttribute(file, "step", metadata.step)
        try H5.setAttribute(file, "epoch", metadata.epoch)
        try H5.setAttribute(file, "group", metadata.group)
        try H5.setAttribute(file, "num_groups", metadata.numGroups)
        try H5.setAttribute(file, "world_size", metadata.worldSize)
        try H5.setAttribute(file, "model", modelJSON)
        try H5.setAttribute(file, "config", metadata.configJSON)
        try H5.setAttribute(file, "created", metadata.created)

        let model = try H5.createGroup(file, "model")
        defer { H5Gclose(model) }
        for v in store.trainable {
            try H5.writeFloats(model, v.name, shape: v.shape, store.values + v.offset)
        }
        for v in store.buffersLayout {
            try H5.writeFloats(model, v.name, shape: v.shape, store.buffers + v.offset)
        }
        for (name, bn) in store.batchNorms {
            var n = Int64(bn.numBatchesTracked)
            try H5.writeDataset(model, bnDatasetName(name), shape: [], fileType: cd_h5t_std_i64le(),
                                memType: cd_h5t_native_int64(), data: &n)
        }

        if let optimizer {
            let og = try H5.createGroup(file, "optimizer")
            defer { H5Gclose(og) }
            try H5.setAttribute(og, "kind", optimizer.kind)
            try H5.setAttribute(og, "step", optimizer.stepCount)
            for (stateName, buffer) in optimizer.stateBuffers {
                let sg = try H5.createGroup(og, stateName)
                defer { H5Gclose(sg) }
                for v in store.trainable {
                    try H5.writeFloats(sg, v.name, shape: v.shape, buffer + v.offset)
                }
            }
        }

        let sg = try H5.createGroup(file, "state")
        defer { H5Gclose(sg) }
        var dummy: UInt64 = 0
        let words = state.rngWords
        try withUnsafePointer(to: &dummy) { empty in
            try words.withUnsafeBytes { buf in
                try H5.writeDataset(sg, "rng", shape: [words.count], fileType: cd_h5t_native_uint64(),
                                    memType: cd_h5t_native_uint64(), data: buf.baseAddress ?? UnsafeRawPointer(empty))
            }
        }
        let data = try H5.createGroup(sg, "data")
        defer { H5Gclose(data) }
        try H5.setAttribute(data, "epoch", state.epoch)
        try H5.setAttribute(data, "step_in_epoch", state.stepInEpoch)
        try H5.setAttribute(data, "seed", state.dataSeed)
        try H5.setAttribute(data, "step", state.step)

        let mg = try H5.createGroup(file, "metrics")
        defer { H5Gclose(mg) }
        for (k, v) in metrics.sorted(by: { $0.key < $1.key }) {
            try H5.setAttribute(mg, k, v)
        }
    }

    // MARK: Read

    /// Opens `path` read-only after checking that it is a complete codistill checkpoint this build
    /// can read; each problem (missing, not HDF5, truncated, not a checkpoint, too new) has its own message.
    static func openChecked(_ path: String) throws -> hid_t {
        _ = H5.setup
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw CheckpointError("no checkpoint at \(path): the file does not exist. Check the path; checkpoints are "
                                  + "CHECKPOINT_DIR/group-<g>/step-<8-digit step>.h5.")
        }
        if isDir.boolValue {
            throw CheckpointError("\(path) is a folder, not a checkpoint; pass one of its step-<8-digit step>.h5 files.")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
        let file = H5Fopen(path, cd_h5f_acc_rdonly(), H5.P)
        if file < 0 {
            guard FileManager.default.isReadableFile(atPath: path) else {
                throw CheckpointError("cannot read checkpoint \(path): permission denied. Make the file readable (chmod) or run as its owner.")
            }
            if size == 0 {
                throw CheckpointError("checkpoint \(path) is empty (0 bytes): its write was cut off. Delete it and use an older "
                                      + "checkpoint of the group (resume picks the newest complete one).")
            }
            let header = FileHandle(forReadingAtPath: path).map { h -> Data in defer { try? h.close() }; return h.readData(ofLength: 8) }
            if header != Data([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]) {
                throw CheckpointError("\(path) is not an HDF5 file (it lacks the HDF5 signature), so it is not a codistill "
                                      + "checkpoint. Pass a step-<8-digit step>.h5 file written by codistill.")
            }
            throw CheckpointError("checkpoint \(path) is truncated or damaged: it starts like an HDF5 file but HDF5 cannot "
                                  + "open it (\(size) bytes), typically a copy or write that was cut off. Delete it and use "
                                  + "an older checkpoint of the group (resume picks the newest complete one).")
        }
        do {
            guard H5.attributeExists(file, "format") else {
                throw CheckpointError("\(path) is an HDF5 file but not a codistill checkpoint: it has no root attribute "
                                      + "'format'. Pass a step-<8-digit step>.h5 file written by codistill.")
            }
            let f = try? H5.stringAttribute(file, "format")
            guard f == format else {
                throw CheckpointError("\(path) is an HDF5 file but not a codistill checkpoint: its 'format' attribute is "
                                      + "\(f.map { "'\($0)'" } ?? "not a string"), expected '\(format)'.")
            }
            guard let version = try? H5.intAttribute(file, "format_version") else {
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
        } catch {
            H5Fclose(file)
            throw error
        }
        return file
    }

    public static func read(path: String) throws -> LoadedCheckpoint {
        let file = try openChecked(path)
        defer { H5Fclose(file) }
        do {
            return try readContents(file: file, path: path)
        } catch let e as H5Failure {
            throw CheckpointError("checkpoint \(path) is damaged or incomplete: \(e.message). Delete it and use an older "
                                  + "checkpoint of the group (resume picks the newest complete one).")
        }
    }

    static func require(_ loc: hid_t, _ name: String, in where_: String) throws {
        guard H5.exists(loc, name) else { throw H5Failure("\(where_)\(name) is missing") }
    }

    static func readContents(file: hid_t, path: String) throws -> LoadedCheckpoint {
        for a in ["step", "epoch", "group", "num_groups", "world_size", "model", "config", "created"]
        where !H5.attributeExists(file, a) {
            throw H5Failure("root attribute '\(a)' is missing")
        }
        let modelJSON = try H5.stringAttribute(file, "model")
        let spec: ModelSpec
        do {
            spec = try JSONDecoder().decode(ModelSpec.self, from: Data(modelJSON.utf8))
        } catch {
            throw H5Failure("root attribute 'model' is not a model spec: \(modelJSON)")
        }
        let metadata = CheckpointMetadata(
            formatVersion: try H5.intAttribute(file, "format_version"),
            step: try H5.intAttribute(file, "step"), epoch: try H5.intAttribute(file, "epoch"),
            group: try H5.intAttribute(file, "group"), numGroups: try H5.intAttribute(file, "num_groups"),
            worldSize: try H5.intAttribute(file, "world_size"), model: spec,
            configJSON: try H5.stringAttribute(file, "config"), created: try H5.stringAttribute(file, "created"))

        // /model
        try require(file, "model", in: "/")
        let mg = try H5.openGroup(file, "model")
        defer { H5Gclose(mg) }
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        var tracked: [String: Int] = [:]
        for name in try H5.linkNames(mg) {
            guard try H5.kind(mg, name) == .dataset else { continue }
            if name == String(bnSuffix.dropFirst()) || name.hasSuffix(bnSuffix) {
                let (_, v) = try H5.readDataset(mg, name, as: Int64.self, memType: cd_h5t_native_int64(), requireClass: H5T_INTEGER)
                guard v.count == 1 else { throw H5Failure("/model/\(name) should be one integer, has \(v.count) values") }
                let module = name == String(bnSuffix.dropFirst()) ? "" : String(name.dropLast(bnSuffix.count))
                tracked[module] = Int(v[0])
            } else {
                let t = try H5.readDataset(mg, name, as: Float.self, memType: cd_h5t_native_float(), requireClass: H5T_FLOAT)
                tensors[name] = (t.shape, t.values)
            }
        }

        // /optimizer
        var kind: String? = nil, optStep = 0
        var optState: [String: [String: [Float]]] = [:]
        if H5.exists(file, "optimizer") {
            let og = try H5.openGroup(file, "optimizer")
            defer { H5Gclose(og) }
            kind = try H5.stringAttribute(og, "kind")
            optStep = try H5.intAttribute(og, "step")
            for stateName in try H5.linkNames(og) where try H5.kind(og, stateName) == .group {
                let sg = try H5.openGroup(og, stateName)
                defer { H5Gclose(sg) }
                var views: [String: [Float]] = [:]
                for name in try H5.linkNames(sg) where try H5.kind(sg, name) == .dataset {
                    views[name] = try H5.readDataset(sg, name, as: Float.self, memType: cd_h5t_native_float(),
                                                     requireClass: H5T_FLOAT).values
                }
                optState[stateName] = views
            }
        }

        // /state
        try require(file, "state", in: "/")
        let sg = try H5.openGroup(file, "state")
        defer { H5Gclose(sg) }
        try require(sg, "rng", in: "/state/")
        try require(sg, "data", in: "/state/")
        let rng = try H5.readDataset(sg, "rng", as: UInt64.self, memType: cd_h5t_native_uint64(), requireClass: H5T_INTEGER).values
        let dg = try H5.openGroup(sg, "data")
        defer { H5Gclose(dg) }
        let state = RunState(
            step: H5.attributeExists(dg, "step") ? try H5.intAttribute(dg, "step") : metadata.step,
            epoch: try H5.intAttribute(dg, "epoch"), rngWords: rng,
            dataSeed: try H5.uint64Attribute(dg, "seed"), stepInEpoch: try H5.intAttribute(dg, "step_in_epoch"))

        // /metrics
        var metrics: [String: Double] = [:]
        if H5.exists(file, "metrics") {
            let g = try H5.openGroup(file, "metrics")
            defer { H5Gclose(g) }
            for name in try H5.attributeNames(g) {
                if let v = try? H5.doubleAttribute(g, name) { metrics[name] = v }
            }
        }

        return LoadedCheckpoint(path: path, metadata: metadata, state: state, tensors: tensors,
                                numBatchesTracked: tracked, optimizerKind: kind, optimizerStep: optStep,
                                optimizerState: optState, metrics: metrics)
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
    static func stepFiles(directory: String, folder: String) -> [(step: Int, path: String)] {
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
            if let file = try? openChecked(path) {
                H5Fclose(file)
                return (path, skipped)
            }
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
