import Foundation
import HDF5
import NN

extension HDF5AttributeValue {
    /// The value for `inspect --json`: one value plainly, several as an array.
    var jsonValue: Any {
        func one<T>(_ v: [T]) -> Any { v.count == 1 ? v[0] as Any : v }
        switch self {
        case .integers(let v): return one(v)
        case .unsignedIntegers(let v): return one(v)
        case .reals(let v): return one(v)
        case .strings(let v): return one(v)
        case .other(let t): return "<\(t)>"
        }
    }
}

extension Checkpoint {
    /// One object of the file, for `describe`.
    struct Entry {
        var path: String
        var isGroup: Bool
        var dtype = ""
        var shape: [Int] = []
        var attributes: [(String, HDF5AttributeValue)] = []
        /// What `Checkpoint.layout` says it holds; nil for an object the layout does not have.
        var holds: String?
    }

    /// Every group and dataset below `group` (depth first, sorted by name) with its attributes.
    static func walk(_ group: HDF5Group, into out: inout [Entry]) throws {
        out.append(Entry(path: group.path, isGroup: true,
                         attributes: try group.attributeNames().map { ($0, try group.attribute($0)) },
                         holds: entry(for: group.path)?.holds))
        for name in try group.childNames() {
            switch try group.kind(of: name) {
            case .group:
                try walk(try group.group(name), into: &out)
            case .dataset:
                let d = try group.dataset(name)
                out.append(Entry(path: d.path, isGroup: false, dtype: d.storedType.description, shape: d.shape,
                                 attributes: try d.attributeNames().map { ($0, try d.attribute($0)) },
                                 holds: entry(for: d.path)?.holds))
            case .other:
                let path = group.path == "/" ? "/" + name : group.path + "/" + name
                out.append(Entry(path: path, isGroup: false, dtype: "other"))
            }
        }
    }

    /// `codistill inspect`: a human summary (step, model, config, metrics, parameter count and
    /// size in MB) and tree (groups, datasets with shapes and dtypes, attributes), or the same as JSON.
    public static func describe(path: String, json: Bool) throws -> String {
        let ckpt = try read(path: path)
        let file = try openChecked(path)
        var entries: [Entry] = []
        do { try walk(file.root, into: &entries) } catch let e as HDF5Error {
            throw CheckpointError("checkpoint \(path) is damaged: \(e.reason).")
        }

        // Trainable parameters vs buffers, as the model the checkpoint names declares them
        // (running statistics are buffers); if the spec does not build, every tensor counts as a parameter.
        var kinds: [String: Parameter.Kind] = [:]
        if let model = try? Models.make(ckpt.metadata.model) {
            for (name, p) in model.namedParameters() { kinds[name] = p.kind }
        }
        var trainable = 0, trainableTensors = 0, buffers = 0, bufferTensors = 0
        for (name, t) in ckpt.tensors {
            if kinds[name] == .buffer { buffers += t.values.count; bufferTensors += 1 }
            else { trainable += t.values.count; trainableTensors += 1 }
        }
        let floats = trainable + buffers
        let megabytes = Double(floats * MemoryLayout<Float>.size) / 1_000_000
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let m = ckpt.metadata, s = ckpt.state

        if json {
            var out: [String: Any] = [
                "path": path, "file_bytes": fileBytes, "format": format, "format_version": m.formatVersion,
                "step": m.step, "epoch": m.epoch, "group": m.group, "num_groups": m.numGroups, "world_size": m.worldSize,
                "model": ["name": m.model.name, "input_shape": m.model.inputShape, "classes": m.model.classes],
                "created": m.created,
                "state": ["step": s.step, "epoch": s.epoch, "step_in_epoch": s.stepInEpoch, "data_seed": s.dataSeed,
                          "rng": s.rngWords],
                "parameters": ["trainable": trainable, "trainable_tensors": trainableTensors, "buffers": buffers,
                               "buffer_tensors": bufferTensors, "total": floats, "size_mb": megabytes],
                "metrics": ckpt.metrics,
                "num_batches_tracked": ckpt.numBatchesTracked,
            ]
            if let data = m.configJSON.data(using: .utf8), let config = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) {
                out["config"] = config
            } else {
                out["config"] = m.configJSON
            }
            if let kind = ckpt.optimizerKind {
                out["optimizer"] = ["kind": kind, "step": ckpt.optimizerStep, "state": ckpt.optimizerState.keys.sorted()]
            }
            out["objects"] = entries.map { e -> [String: Any] in
                var o: [String: Any] = ["path": e.path, "type": e.isGroup ? "group" : "dataset"]
                if !e.isGroup { o["dtype"] = e.dtype; o["shape"] = e.shape }
                o["holds"] = e.holds ?? "not in the checkpoint layout"
                if !e.attributes.isEmpty {
                    o["attributes"] = Dictionary(e.attributes.map { ($0.0, $0.1.jsonValue) }, uniquingKeysWith: { a, _ in a })
                }
                return o
            }
            let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            return String(decoding: data, as: UTF8.self)
        }

        func mb(_ bytes: Int) -> String { String(format: "%.2f MB", Double(bytes) / 1_000_000) }
        var lines: [String] = []
        func row(_ k: String, _ v: String) { lines.append("  " + k.padding(toLength: 12, withPad: " ", startingAt: 0) + v) }
        lines.append("checkpoint \(path) (\(mb(fileBytes)) on disk)")
        row("format", "\(format), version \(m.formatVersion)")
        row("step", "\(m.step) (epoch \(m.epoch), step \(s.stepInEpoch) of the epoch, data seed \(s.dataSeed))")
        row("group", "\(m.group) of \(m.numGroups) (world size \(m.worldSize))")
        row("model", describe(m.model))
        row("parameters", "\(trainable) trainable in \(trainableTensors) tensors + \(buffers) buffer values in "
            + "\(bufferTensors) tensors = \(floats) float32, " + String(format: "%.2f MB", megabytes))
        if let kind = ckpt.optimizerKind {
            let st = ckpt.optimizerState.keys.sorted()
            row("optimizer", "\(kind), step \(ckpt.optimizerStep)" + (st.isEmpty ? "" : ", state: " + st.joined(separator: ", ")))
        } else {
            row("optimizer", "none saved")
        }
        row("created", m.created)
        row("metrics", ckpt.metrics.isEmpty ? "none" : ckpt.metrics.sorted { $0.key < $1.key }.map { "\($0.key) = \($0.value)" }.joined(separator: ", "))
        row("config", m.configJSON)
        lines.append("")
        let width = min(60, (entries.map(\.path.count).max() ?? 0) + 2)
        for e in entries {
            let kind = e.isGroup ? "group" : e.dtype + " " + (e.shape.isEmpty ? "scalar" : "[" + e.shape.map(String.init).joined(separator: ", ") + "]")
            lines.append(e.path.padding(toLength: max(width, e.path.count + 1), withPad: " ", startingAt: 0) + kind
                         + "  (" + (e.holds ?? "not in the checkpoint layout") + ")")
            for (name, value) in e.attributes {
                var text = value.text
                if text.count > 100 { text = String(text.prefix(97)) + "..." }
                lines.append("    @\(name) = \(text)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
