import Checkpoint
import Foundation
import NN

/// The file-based exchange: groups may be separate `mpirun` jobs sharing a directory.
///
/// Each publisher writes its snapshot atomically (a checkpoint without optimizer state, written
/// to `.tmp`, fsync'd and renamed) into `PEER_DIR/<name>/step-<step>.h5`, keeping the newest two.
/// Readers list the other folders and load the newest complete snapshot of each, so a peer that
/// died or stalls never blocks anybody: its last snapshot stays in use and its age is reported;
/// a restarted job resumes from its own checkpoint and simply publishes again under its name.
/// Each folder records its owner (the publishing job's checkpoint folder) in `.owner`, so two
/// jobs can never publish under one name unknowingly.
final class FileExchange: SnapshotTransport {
    let directory: String
    let name: String
    let spec: ModelSpec
    let configJSON: String
    private var warned = Set<String>()
    /// Snapshots taken of each peer so far: the reader's version counter.
    private var versions: [String: UInt64] = [:]
    let log: (String) -> Void

    /// `owner`: what identifies the publishing job across restarts (its checkpoint folder).
    init(directory: String, name: String, owner: String, spec: ModelSpec, configJSON: String, log: @escaping (String) -> Void) throws {
        self.directory = directory; self.name = name; self.spec = spec; self.configJSON = configJSON; self.log = log
        let own = directory + "/" + name
        do {
            try FileManager.default.createDirectory(atPath: own, withIntermediateDirectories: true)
        } catch {
            throw TrainingError("cannot create the peer directory \(own) (\(error.localizedDescription)): pass a writable shared --peer-dir")
        }
        let ownerFile = own + "/.owner"
        if let recorded = try? String(contentsOfFile: ownerFile, encoding: .utf8), recorded != owner {
            throw TrainingError("the peer folder \(own) belongs to another job (checkpoints in \(recorded)), not to this one (\(owner)): jobs publish under the last part of --checkpoint-dir, so give each job its own --peer-name (or remove \(own) if that job is gone)")
        }
        do {
            try owner.write(toFile: ownerFile, atomically: true, encoding: .utf8)
        } catch {
            throw TrainingError("cannot write \(ownerFile) (\(error.localizedDescription)): pass a writable shared --peer-dir")
        }
        // A job killed mid-publication leaves a .tmp in its own folder; nobody else writes there.
        for stale in (try? FileManager.default.contentsOfDirectory(atPath: own))?.filter({ $0.hasSuffix(".tmp") }) ?? [] {
            try? FileManager.default.removeItem(atPath: own + "/" + stale)
        }
    }

    /// Holds a snapshot while it is written as a checkpoint file.
    private lazy var scratch: ParameterStore? = (try? Models.make(spec)).map { ParameterStore(model: $0, seed: 0) }

    /// `torn`: the file is cut short after writing, as a copy interrupted mid-write looks.
    func publish(_ snapshot: UnsafeBufferPointer<Float>, stamp: SnapshotStamp, torn: Bool) {
        guard let store = scratch else { return }
        store.readSnapshot(from: snapshot.baseAddress!)
        let step = stamp.step
        let path = Checkpoint.path(directory: directory, folder: name, step: step)
        // Snapshots of later steps are from before a restart that went back to an older
        // checkpoint: that timeline is abandoned, and keeping its files would make pruning
        // delete the fresh ones while peers go on reading the stale ones.
        let abandoned = Checkpoint.stepFiles(directory: directory, folder: name).filter { $0.step > step }
        if !abandoned.isEmpty {
            log("warning: removing this job's published snapshots of steps \(abandoned.map(\.step).sorted()) in \(directory)/\(name): it continues from step \(step)")
            for file in abandoned { try? FileManager.default.removeItem(atPath: file.path) }
        }
        let meta = CheckpointMetadata(formatVersion: 1, step: step, epoch: 0, group: 0, numGroups: 1, worldSize: 1,
                                      model: spec, configJSON: configJSON, created: Checkpoint.timestamp())
        let state = RunState(step: step, epoch: 0, rngWords: [0, 0, 0, 0], dataSeed: 0, stepInEpoch: 0)
        do {
            let health = stamp.health.map { ["train_loss": $0.loss, "train_accuracy": $0.accuracy] } ?? [:]
            try Checkpoint.write(path: path, store: store, optimizer: nil, metadata: meta, state: state, metrics: health)
            if torn, let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int {
                truncate(path, off_t(size / 2))
            }
            try Checkpoint.prune(directory: directory, folder: name, keep: 2)
        } catch {
            // A full or unreachable shared directory must not stop training: peers keep our last snapshot.
            log("warning: could not publish the snapshot to \(path): \(error)")
        }
    }

    /// Names of the other publishers in the directory, sorted.
    func peerNames() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { n in
            var isDir: ObjCBool = false
            return n != name && !n.hasPrefix(".") && FileManager.default.fileExists(atPath: directory + "/" + n, isDirectory: &isDir) && isDir.boolValue
        }.sorted()
    }

    /// Loads `peer`'s newest readable snapshot into `store` if it is newer than `after`. A newest
    /// file that cannot be read (cut short, damaged) is reported and the older one tried.
    /// A peer whose newest file is older than the one held has restarted from an older
    /// checkpoint: its newest snapshot is taken again.
    func fetch(peer: String, into store: ParameterStore, after: SnapshotStamp?) -> FetchOutcome {
        var problems: [String] = []
        let files = Checkpoint.stepFiles(directory: directory, folder: peer)
        var after = after
        if let held = after, let newest = files.first, newest.step < held.step {
            log("peer \(peer) went back from its step \(held.step) to \(newest.step) (it restarted from an older checkpoint)")
            after = nil
        }
        for (step, path) in files where step > after?.step ?? -1 {
            let ckpt: LoadedCheckpoint
            do { ckpt = try Checkpoint.read(path: path) } catch { problems.append("\(error)"); continue }
            do {
                try Checkpoint.restore(ckpt, into: store, optimizer: nil, model: spec)
            } catch {
                if warned.insert(peer).inserted { log("warning: ignoring peer \(peer): \(error)") }
                return .unchanged
            }
            if !problems.isEmpty { log("warning: peer \(peer): skipped newer unreadable snapshots: \(problems.joined(separator: "; "))") }
            let version = versions[peer, default: 0] + 1
            versions[peer] = version
            let health = ckpt.metrics["train_loss"].flatMap { loss in
                ckpt.metrics["train_accuracy"].map { SnapshotHealth(loss: loss, accuracy: $0) }
            }
            return .fresh(SnapshotStamp(version: version, step: ckpt.state.step, health: health))
        }
        return problems.isEmpty ? .unchanged : .refused(reason: problems.joined(separator: "; "))
    }

    /// Seconds since `peer`'s newest file was written (nil if it has none).
    func secondsSinceLastPublication(peer: String) -> Double? {
        Checkpoint.latest(directory: directory, folder: peer).path.map(age)
    }

    func age(of path: String) -> Double {
        let date = (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? Date()
        return Date().timeIntervalSince(date)
    }
}
