import Checkpoint
import Cluster
import Data
import Engine
import Foundation
import NN
import RunConfig

/// What a finished run reports.
public struct TrainResult {
    public var steps: Int
    public var testAccuracy: Double
    public var testLoss: Double
    public var lastCheckpoint: String?
}

public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A failure the ranks of one group agreed on while the other groups carry on: its leader
/// reports it and the job must end at once, or the other groups wait for it in their next
/// world-wide call (the window teardown, a peer read).
public struct GroupFailure: Error, CustomStringConvertible {
    public let message: String
    public let group: Int
    public var description: String { message }
}

/// Thrown after a clean checkpoint when SIGTERM/SIGUSR1 asked the job to stop.
public struct StopRequested: Error, CustomStringConvertible {
    public let checkpoint: String?
    public var description: String { "stopped on signal; checkpoint \(checkpoint ?? "-")" }
}

/// One rank's part of `codistill train`: the world is split into `groups` contiguous blocks of
/// ranks; inside a block, synchronous data-parallel SGD with one fused allreduce per step.
/// `start()` sets a run up (data, model, resume, metrics, codistillation); the returned
/// `TrainingRun` advances it step by step. `run()` does both.
public final class Trainer {
    public private(set) var config: TrainConfig
    let world: Collectives
    let group: Collectives
    public let groupIndex: Int
    public var isGroupLeader: Bool { group.rank == 0 }
    /// A checkpoint file, "auto" (newest complete one in the checkpoint dir, if any) or nil.
    let resume: String?
    let log: (String) -> Void
    /// Replaces the transport the exchange option names (in-process tests use InMemoryTransport).
    public var transportOverride: SnapshotTransport?
    /// Wraps the snapshot transport, e.g. in FaultInjectingTransport.
    public var wrapTransport: ((SnapshotTransport) -> SnapshotTransport)?
    /// Fault injection for tests: changes the averaged gradients of step `step` (1-based)
    /// before they are checked.
    public var gradientFault: ((_ step: Int, _ store: ParameterStore) -> Void)?

    public init(config: TrainConfig, resume: String?, world: Collectives, log: @escaping (String) -> Void) throws {
        try config.validate()
        guard world.size % config.groups == 0 else {
            throw ConfigError(description: "\(world.size) ranks do not divide into \(config.groups) groups: "
                + "start a multiple of \(config.groups) ranks (mpirun -np \(config.groups * max(1, world.size / config.groups))) or change --groups")
        }
        self.config = config
        self.resume = resume
        self.world = world
        let perGroup = world.size / config.groups
        groupIndex = world.rank / perGroup
        group = world.split(color: groupIndex, key: world.rank)
        self.log = log
    }

    public func run() throws -> TrainResult {
        let run = try start()
        defer { run.close() }
        while try run.advance() {}
        return run.finish()
    }

    /// Sets the run up on every rank; every failure is agreed, so no rank is left waiting.
    public func start() throws -> TrainingRun {
        BLAS.setThreads(config.blasThreads)
        let testPath = config.testData.isEmpty ? config.data : config.testData
        let (train, test) = try collectively {
            (try DatasetLoader.load(path: config.data, split: .train), try DatasetLoader.load(path: testPath, split: .test))
        }
        if world.rank == 0, let trainAt = DatasetLoader.location(path: config.data, split: .train),
           trainAt == DatasetLoader.location(path: testPath, split: .test) {
            log("warning: the test set is the training set (\(testPath) has a single split): test accuracy measures memorisation; pass --test-data FILE to evaluate on held-out data")
        }
        try collectively {
            if test.sampleShape != train.sampleShape {
                throw TrainingError("\(testPath): test images are \(test.sampleShape) but training images \(train.sampleShape): both splits must have one shape")
            }
            if let bad = test.labels.first(where: { Int($0) >= train.classes }) {
                throw TrainingError("\(testPath): the test split (\(test.name)) has label \(bad), outside the \(train.classes) classes 0..<\(train.classes) of the training split: fix the labels or the file pairing")
            }
        }
        let spec = ModelSpec(name: config.model, inputShape: train.sampleShape, classes: train.classes)
        let model = try collectively { try Models.make(spec) }
        // Groups start from different weights and data orders (seed + group); ranks of a group agree.
        let groupSeed = config.seed &+ UInt64(groupIndex)
        let store = ParameterStore(model: model, seed: groupSeed)
        let optimizer: Optimizer = config.optimizer == .sgd
            ? SGD(parameters: store, momentum: config.momentum, weightDecay: config.weightDecay, nesterov: config.nesterov)
            : Adam(parameters: store, weightDecay: config.weightDecay, decoupled: config.optimizer == .adamw)

        let (mean, std): ([Float], [Float]) = config.normalize
            ? train.channelStatistics()
            : ([Float](repeating: 0, count: spec.inputShape[0]), [Float](repeating: 1, count: spec.inputShape[0]))
        if config.normalize {
            try collectively {
                try checkNormalization(mean: mean, std: std, channels: spec.inputShape[0], source: "\(config.data) (training split)",
                                       fix: "pass --no-normalize, or fix the data (a channel with one value carries no information).")
            }
        }
        let disjoint = config.groups > 1 && config.dataSplit == .disjoint
        let plan = ShardPlan(datasetCount: train.count, perRankBatch: config.batch, ranksInGroup: group.size,
                             rankInGroup: group.rank, seed: groupSeed,
                             partitions: disjoint ? config.groups : 1, partition: disjoint ? groupIndex : 0)
        // Agreed over the world: disjoint shares can differ by a sample, so one group alone may fail.
        try collectively {
            guard plan.stepsPerEpoch > 0 else {
                throw ConfigError(description: "the group batch (\(config.batch) x \(group.size) ranks) is larger than the \(plan.partitionRange.count) training samples\(disjoint ? " of group \(groupIndex)'s share" : ""): lower --batch")
            }
        }

        config = config.resolvingBurnIn(totalSteps: config.steps > 0 ? config.steps : config.epochs * plan.stepsPerEpoch)
        if exchangesWithPeers && world.rank == 0 && config.burnIn < config.exchangeEvery {
            log("warning: --burn-in \(config.burnIn) is shorter than --exchange-every \(config.exchangeEvery): the first snapshots exchanged come from models trained for \(config.burnIn) steps, and distilling towards them slows every group (docs/EXPERIMENTS.md); a burn-in of at least one exchange interval, or the default (-1: \(Int(TrainConfig.autoBurnInFraction * 100))% of the run), avoids it")
        }

        // Resume: every rank reads the same file, so every rank restores the same state.
        var startStep = 0
        var lastCheckpoint: String?
        var resumedExchange: [ExchangeSnapshot] = []
        // The group leader chooses the file and tells its group: ranks whose views of a shared
        // directory differ (NFS attribute caches) would otherwise restore different checkpoints.
        let chosen = try collectively { group.rank == 0 ? try resolveResume(spec: spec) : nil }
        let told = group.broadcast(Array((chosen ?? "").utf8), root: 0)
        if !told.isEmpty, let resumePath = Optional(String(decoding: told, as: UTF8.self)) {
            try collectively {
                let ckpt = try Checkpoint.read(path: resumePath)
                try checkCompatible(ckpt, spec: spec)
                try Checkpoint.restore(ckpt, into: store, optimizer: optimizer, model: spec)
                startStep = ckpt.state.step
                resumedExchange = ckpt.exchange
            }
            lastCheckpoint = resumePath
            if world.rank == 0 { log("resumed from \(resumePath) at step \(startStep)") }
        }

        let metrics = try collectivelyLeader { try MetricsWriter(path: metricsPath(), resume: startStep > 0) }
        let codistillation = try makeCodistillation(spec: spec, store: store)
        if let codistillation, !resumedExchange.isEmpty { try collectively { try codistillation.restore(resumedExchange) } }
        if group.rank == 0 {
            log((config.groups > 1 ? "[group \(groupIndex)] " : "")
                + "world ranks \(groupRanks.lowerBound)-\(groupRanks.upperBound - 1), leader on host \(ProcessInfo.processInfo.hostName)")
        }
        // Several groups: a stop decided by one of them reaches the others (see StopRelay).
        let stopRelay = (world as? Communicator).flatMap { mpi in config.groups > 1 ? StopRelay(world: mpi, group: groupRanks) : nil }
        let run = TrainingRun(trainer: self, spec: spec, model: model, store: store, optimizer: optimizer,
                              step: TrainingStep(model: model, store: store, optimizer: optimizer,
                                                 reduction: GradientSync(store: store, group: group)),
                              plan: plan, test: test, mean: mean, std: std,
                              builder: BatchBuilder(dataset: train, mean: mean, std: std,
                                                    augmentation: Augmentation(randomCropPadding: config.randomCropPadding,
                                                                               horizontalFlip: config.horizontalFlip),
                                                    seed: groupSeed),
                              metrics: metrics, codistillation: codistillation, stopRelay: stopRelay,
                              startStep: startStep, lastCheckpoint: lastCheckpoint)
        model.train()
        return run
    }

    /// The codistillation component when this run exchanges with peers: MPI windows connect the
    /// groups of this job, files connect groups of any jobs sharing --peer-dir.
    func makeCodistillation(spec: ModelSpec, store: ParameterStore) throws -> Codistillation? {
        guard exchangesWithPeers else { return nil }
        var transport: SnapshotTransport?
        if let transportOverride {
            transport = transportOverride
        } else if config.exchange == .files {
            var name = config.peerName
            if name.isEmpty { name = URL(fileURLWithPath: config.checkpointDir).lastPathComponent }
            if config.groups > 1 { name += "-group-\(groupIndex)" }
            // Only leaders touch the directory; the group agrees on the leader's failure.
            transport = try collectivelyLeader {
                try FileExchange(directory: config.peerDir, name: name,
                                 owner: URL(fileURLWithPath: config.checkpointDir).standardizedFileURL.path + (config.groups > 1 ? " group \(groupIndex)" : ""),
                                 spec: spec, configJSON: config.json, log: log)
            }
        } else {
            guard let mpi = world as? Communicator else {
                throw TrainingError("--exchange rma needs an MPI world: start with mpirun, or use --exchange files")
            }
            let perGroup = world.size / config.groups
            let followed: [Int] = config.topology == .ring
                ? [(groupIndex + config.groups - 1) % config.groups]
                : (0..<config.groups).filter { $0 != groupIndex }
            transport = try RMATransport(world: mpi, payloadCount: store.snapshotCount,
                                         isLeader: group.rank == 0, followed: followed, ranksPerGroup: perGroup)
        }
        if let t = transport, let wrapTransport { transport = wrapTransport(t) }
        return Codistillation(config: config, group: group, groupIndex: groupIndex, spec: spec, store: store,
                              transport: transport, log: log)
    }

    /// Whether this run codistils: over MPI windows between the groups of this job, over files
    /// with any jobs sharing --peer-dir, or over a test's transport.
    var exchangesWithPeers: Bool {
        transportOverride != nil ? config.exchange != .none
            : (config.groups > 1 && config.exchange == .rma) || config.exchange == .files
    }

    /// The world ranks of this rank's group (contiguous blocks).
    var groupRanks: Range<Int> { groupIndex * group.size ..< (groupIndex + 1) * group.size }

    /// Runs `body` on every rank of the world and throws the same error on all of them if any
    /// rank failed (so nobody is left waiting in a collective).
    func collectively<T>(_ body: () throws -> T) throws -> T {
        var result: T?
        var failure: String?
        do { result = try body() } catch { failure = "\(error)" }
        try world.agree(failure)
        return result!
    }

    /// Every rank of the group calls this; only the group leader runs `body` (file writes), and
    /// the whole group agrees on its failure.
    func collectivelyLeader<T>(_ body: () throws -> T) throws -> T? {
        var result: T?
        var failure: String?
        if group.rank == 0 {
            do { result = try body() } catch { failure = "\(error)" }
        }
        do {
            try group.agree(failure)
        } catch let agreed as CollectiveFailure where config.groups > 1 {
            // Agreed by this group only: the other groups know nothing of it (see GroupFailure).
            throw GroupFailure(message: agreed.message, group: groupIndex)
        }
        return result
    }

    func metricsPath() -> String {
        let template = config.metrics.isEmpty ? "\(config.checkpointDir)/group-{group}/metrics.csv" : config.metrics
        return template.replacingOccurrences(of: "{group}", with: String(groupIndex))
    }

    /// The checkpoint to resume from, or nil to start fresh.
    func resolveResume(spec: ModelSpec) throws -> String? {
        guard let resume else { return nil }
        if resume == "auto" {
            let found = Checkpoint.latest(directory: config.checkpointDir, group: groupIndex)
            for bad in found.skipped where world.rank == 0 {
                log("warning: skipping incomplete or corrupt checkpoint \(bad)")
            }
            return found.path
        }
        guard FileManager.default.fileExists(atPath: resume) else {
            throw TrainingError("--resume \(resume): no such file; give a checkpoint file or 'auto' (newest complete checkpoint in --checkpoint-dir)")
        }
        return resume
    }

    func checkCompatible(_ ckpt: LoadedCheckpoint, spec: ModelSpec) throws {
        let m = ckpt.metadata
        if m.model != spec {
            throw TrainingError("checkpoint \(ckpt.path) holds model '\(m.model.name)' for inputs \(m.model.inputShape) with \(m.model.classes) classes; this run builds '\(spec.name)' for \(spec.inputShape) with \(spec.classes): pass the same --model and dataset, or a fresh --checkpoint-dir")
        }
        if m.worldSize != world.size || m.numGroups != config.groups {
            throw TrainingError("checkpoint \(ckpt.path) was written by \(m.worldSize) ranks in \(m.numGroups) group(s); this run has \(world.size) ranks in \(config.groups): resume with the same mpirun -np and --groups (the data order depends on them)")
        }
    }

    /// Writes the group's checkpoint (its leader does; the group agrees on failure) and prunes old ones.
    func saveCheckpoint(store: ParameterStore, optimizer: Optimizer, spec: ModelSpec, step: Int, stepsPerEpoch: Int,
                        mean: [Float], std: [Float], metrics: [String: Double], exchange: [ExchangeSnapshot] = []) throws -> String {
        let path = Checkpoint.path(directory: config.checkpointDir, group: groupIndex, step: step)
        // Non-finite weights never become "the last good checkpoint" (every rank holds the same weights).
        guard store.isFinite else {
            throw TrainingError("the weights of group \(groupIndex) are not finite at step \(step); no checkpoint written: lower --lr (now \(config.lr)) and resume from the last good checkpoint with --resume auto")
        }
        _ = try collectivelyLeader {
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path,
                                                    withIntermediateDirectories: true)
            // The configuration as checkpoints record it: the options plus the input normalisation.
            var recorded = config
            recorded.inputMean = mean; recorded.inputStd = std
            let meta = CheckpointMetadata(formatVersion: 1, step: step, epoch: step / stepsPerEpoch, group: groupIndex,
                                          numGroups: config.groups, worldSize: world.size, model: spec,
                                          configJSON: recorded.json, created: ISO8601DateFormatter().string(from: Date()))
            let state = RunState(step: step, epoch: step / stepsPerEpoch, rngWords: RandomGenerator(seed: config.seed).words,
                                 dataSeed: config.seed, stepInEpoch: step % stepsPerEpoch)
            try Checkpoint.write(path: path, store: store, optimizer: optimizer, metadata: meta, state: state, metrics: metrics,
                                 exchange: exchange)
            try Checkpoint.prune(directory: config.checkpointDir, group: groupIndex, keep: config.keepLast)
        }
        return path
    }

    /// Test loss and accuracy of the group: each rank evaluates every size-th test sample.
    func evaluate(model: Module, test: Dataset, mean: [Float], std: [Float]) -> (loss: Double, accuracy: Double) {
        model.eval()
        defer { model.train() }
        var lossSum = 0.0, correct = 0.0
        BatchedInference(dataset: test, mean: mean, std: std)
            .forEachBatch(indices: Array(stride(from: group.rank, to: test.count, by: group.size)), forward: { model($0) }) { logits, labels in
                lossSum += Double(crossEntropy(logits, labels: labels).scalar) * Double(labels.count)
                correct += Double(countCorrect(logits, labels))
            }
        let sums = group.allreduceSum([lossSum, correct])
        return (sums[0] / Double(test.count), sums[1] / Double(test.count))
    }
}
