import Checkpoint
import Cluster
import Data
import Engine
import Foundation
import NN

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

/// One rank's part of `codistill train`: the world is split into `groups` contiguous blocks of
/// ranks; inside a block, synchronous data-parallel SGD with one fused allreduce per step.
public final class Trainer {
    public let config: TrainConfig
    /// The input normalisation of this run, recorded in its checkpoints' configuration.
    var inputMean: [Float] = [], inputStd: [Float] = []
    let world: Communicator
    let group: Communicator
    public let groupIndex: Int
    public var isGroupLeader: Bool { group.rank == 0 }
    /// A checkpoint file, "auto" (newest complete one in the checkpoint dir, if any) or nil.
    let resume: String?
    let log: (String) -> Void

    public init(config: TrainConfig, resume: String?, world: Communicator, log: @escaping (String) -> Void) throws {
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

    /// Runs `body` on every rank of the world and throws the same error on all of them if any
    /// rank failed (so nobody is left waiting in a collective).
    func collectively<T>(_ body: () throws -> T) throws -> T {
        var result: T?
        var failure: String?
        do { result = try body() } catch { failure = "\(error)" }
        try world.agree(failure)
        return result!
    }

    public func run() throws -> TrainResult {
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
            ? SGD(store: store, momentum: config.momentum, weightDecay: config.weightDecay, nesterov: config.nesterov)
            : Adam(store: store, weightDecay: config.weightDecay, decoupled: config.optimizer == .adamw)

        let (mean, std): ([Float], [Float]) = config.normalize
            ? train.channelStatistics()
            : ([Float](repeating: 0, count: spec.inputShape[0]), [Float](repeating: 1, count: spec.inputShape[0]))
        inputMean = mean; inputStd = std
        let disjoint = config.groups > 1 && config.dataSplit == .disjoint
        let plan = ShardPlan(datasetCount: train.count, perRankBatch: config.batch, ranksInGroup: group.size,
                             rankInGroup: group.rank, seed: groupSeed,
                             partitions: disjoint ? config.groups : 1, partition: disjoint ? groupIndex : 0)
        guard plan.stepsPerEpoch > 0 else {
            throw ConfigError(description: "the group batch (\(config.batch) x \(group.size) ranks) is larger than the \(train.count) training samples: lower --batch")
        }
        let totalSteps = config.steps > 0 ? config.steps : config.epochs * plan.stepsPerEpoch
        let schedule = LRSchedule(base: config.lr, shape: scheduleShape(totalSteps: totalSteps), warmupSteps: config.warmupSteps)
        let builder = BatchBuilder(dataset: train, mean: mean, std: std,
                                   augmentation: Augmentation(randomCropPadding: config.randomCropPadding,
                                                              horizontalFlip: config.horizontalFlip),
                                   seed: groupSeed)

        // Resume: every rank reads the same file, so every rank restores the same state.
        var startStep = 0
        var lastCheckpoint: String?
        if let resumePath = try collectively({ try resolveResume(spec: spec) }) {
            try collectively {
                let ckpt = try Checkpoint.read(path: resumePath)
                try checkCompatible(ckpt, spec: spec)
                try Checkpoint.restore(ckpt, into: store, optimizer: optimizer, model: spec)
                startStep = ckpt.state.step
            }
            lastCheckpoint = resumePath
            if world.rank == 0 { log("resumed from \(resumePath) at step \(startStep)") }
        }

        let metrics = try collectivelyLeader { try MetricsWriter(path: metricsPath(), resume: startStep > 0) }
        let sync = GradientSync(store: store, group: group)
        let progress = Progress(enabled: config.groups == 1 ? world.rank == 0 : group.rank == 0, total: totalSteps,
                                logEvery: config.logEvery, log: log, prefix: config.groups > 1 ? "[group \(groupIndex)] " : "")
        // RMA connects the groups of this job; files connect groups of any jobs sharing --peer-dir.
        let codistill = (config.groups > 1 && config.exchange == .rma) || config.exchange == .files
            ? try Codistillation(config: config, world: world, group: group, groupIndex: groupIndex, spec: spec, store: store, log: log)
            : nil
        defer { codistill?.close() }
        model.train()

        var step = startStep
        var trainLossSum = 0.0, trainCorrect = 0.0, trainSeen = 0.0, windowSteps = 0
        var allreduceSeconds = 0.0, windowStart = wallTime(), windowSamples = 0
        var distillSum = 0.0, exchangeSeconds = 0.0, peerForwardSeconds = 0.0
        var lastEval: (loss: Double, accuracy: Double)? = nil
        while step < totalSteps {
            // Exchanges start at the end of burn-in: a snapshot taken earlier (at step 0, a random
            // initialisation) would pull the others towards uninformed predictions until the next
            // exchange (measured: with exchanges every 1000 steps the final test loss doubled).
            if let codistill, step >= config.burnIn, (step - config.burnIn) % config.exchangeEvery == 0 {
                exchangeSeconds += codistill.exchange(step: step, store: store)
            }
            codistill?.progress()
            let (images, labels) = builder.batch(indices: plan.indices(step: step), step: step)
            store.zeroGrad()
            let logits = model(images)
            let ce = crossEntropy(logits, labels: labels, labelSmoothing: config.labelSmoothing)
            var total = ce
            var distillValue = 0.0
            let w = Codistillation.weight(config, step: step)
            if let codistill, w > 0 {
                let tf = wallTime()
                if let targets = codistill.targets(for: images, temperature: config.temperature) {
                    // psi = soft-target cross-entropy against the peers' mean prediction, at
                    // temperature T, scaled by T^2 so gradient sizes do not depend on T.
                    let t = config.temperature
                    let distill = softTargetCrossEntropy(t == 1 ? logits : scale(logits, 1 / t), targets: targets)
                    distillValue = Double(distill.scalar)
                    total = add(ce, scale(distill, w * t * t))
                }
                peerForwardSeconds += wallTime() - tf
            }
            let correct = countCorrect(logits, labels)
            Tape.current.backward(total)
            store.finalizeGradients()

            let t0 = wallTime()
            let sums = sync.average(scalars: [Double(ce.scalar), Double(correct), StopSignal.requested ? 1 : 0, distillValue])
            allreduceSeconds += wallTime() - t0
            let stats = (loss: sums[0] / Double(group.size), correct: sums[1], stop: sums[2] > 0,
                         distill: sums[3] / Double(group.size))
            distillSum += stats.distill
            guard stats.loss.isFinite else {
                throw TrainingError("the loss became \(stats.loss) at step \(step + 1)"
                    + (lastCheckpoint.map { "; the last good checkpoint is \($0) (resume with --resume auto)" } ?? "")
                    + ": lower --lr (now \(config.lr)) or add --warmup-steps")
            }
            let lr = schedule.lr(at: step)
            if codistill != nil, config.weightDecayAfterBurnIn >= 0, step == config.burnIn, let sgd = optimizer as? SGD {
                // Sodhani et al. 2020: distillation regularises, so explicit decay can be relaxed once it starts.
                sgd.weightDecay = config.weightDecayAfterBurnIn
            }
            optimizer.step(lr: lr)
            step += 1
            windowSteps += 1
            trainLossSum += stats.loss; trainCorrect += stats.correct; trainSeen += Double(config.batch * group.size)
            windowSamples += config.batch * group.size

            if config.consistencyEvery > 0 && step % config.consistencyEvery == 0 {
                let sums = group.allgather(store.checksum())
                if Set(sums).count != 1 {
                    throw TrainingError("ranks of group \(groupIndex) disagree on the parameters at step \(step) (checksums \(sums.map { String($0, radix: 16) })): this is a bug or a faulty node; rerun from the last checkpoint")
                }
            }
            let isLast = step == totalSteps
            if (config.evalEvery > 0 && step % config.evalEvery == 0) || isLast {
                lastEval = evaluate(model: model, test: test, mean: mean, std: std)
                model.train()
            }
            let stopping = stats.stop && !isLast
            if step % config.logEvery == 0 || isLast || stopping {
                let elapsed = wallTime() - windowStart
                let row = MetricsRow(step: step, epoch: Double(step) / Double(plan.stepsPerEpoch), time: Date().timeIntervalSince1970,
                                     loss: trainLossSum / Double(max(1, windowSteps)),
                                     trainAccuracy: trainSeen > 0 ? trainCorrect / trainSeen : 0, lr: Double(lr),
                                     testLoss: lastEval?.loss, testAccuracy: lastEval?.accuracy,
                                     samplesPerSecond: Double(windowSamples) / max(elapsed, 1e-9),
                                     allreduceSeconds: allreduceSeconds,
                                     distillLoss: codistill == nil ? nil : distillSum / Double(max(1, windowSteps)),
                                     peerAge: codistill.map { $0.maxAge(at: step) },
                                     exchangeSeconds: codistill == nil ? nil : exchangeSeconds,
                                     peerForwardSeconds: codistill == nil ? nil : peerForwardSeconds)
                metrics?.write(row)
                progress.report(row, group: groupIndex)
                trainLossSum = 0; trainCorrect = 0; trainSeen = 0; allreduceSeconds = 0; windowSteps = 0
                distillSum = 0; exchangeSeconds = 0; peerForwardSeconds = 0
                windowStart = wallTime(); windowSamples = 0
                lastEval = isLast ? lastEval : nil
            }
            if (config.checkpointEvery > 0 && step % config.checkpointEvery == 0) || isLast || stopping {
                lastCheckpoint = try saveCheckpoint(store: store, optimizer: optimizer, spec: spec, step: step,
                                                    stepsPerEpoch: plan.stepsPerEpoch,
                                                    metrics: lastEval.map { ["test_accuracy": $0.accuracy, "test_loss": $0.loss] } ?? [:])
            }
            if stopping {
                if world.rank == 0 { log("stopping on signal after step \(step); checkpoint \(lastCheckpoint ?? "-"); continue with --resume auto") }
                throw StopRequested(checkpoint: lastCheckpoint)
            }
        }
        let final = lastEval ?? evaluate(model: model, test: test, mean: mean, std: std)
        return TrainResult(steps: step, testAccuracy: final.accuracy, testLoss: final.loss, lastCheckpoint: lastCheckpoint)
    }

    func scheduleShape(totalSteps: Int) -> LRSchedule.Shape {
        switch config.schedule {
        case .step: return .step(every: config.stepEvery, gamma: config.stepGamma)
        case .cosine: return .cosine(totalSteps: totalSteps, minLR: 0)
        case .constant: return .constant
        }
    }

    /// Every rank of the group calls this; only the group leader runs `body` (file writes), and
    /// the whole group agrees on its failure.
    func collectivelyLeader<T>(_ body: () throws -> T) throws -> T? {
        var result: T?
        var failure: String?
        if group.rank == 0 {
            do { result = try body() } catch { failure = "\(error)" }
        }
        try group.agree(failure)
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

    /// The configuration as checkpoints record it: the options plus the input normalisation.
    var recordedConfig: TrainConfig {
        var c = config
        c.inputMean = inputMean; c.inputStd = inputStd
        return c
    }

    func saveCheckpoint(store: ParameterStore, optimizer: Optimizer, spec: ModelSpec, step: Int, stepsPerEpoch: Int,
                        metrics: [String: Double]) throws -> String {
        let path = Checkpoint.path(directory: config.checkpointDir, group: groupIndex, step: step)
        _ = try collectivelyLeader {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            let meta = CheckpointMetadata(formatVersion: 1, step: step, epoch: step / stepsPerEpoch, group: groupIndex,
                                          numGroups: config.groups, worldSize: world.size, model: spec,
                                          configJSON: recordedConfig.json, created: ISO8601DateFormatter().string(from: Date()))
            let state = RunState(step: step, epoch: step / stepsPerEpoch, rngWords: RandomGenerator(seed: config.seed).words,
                                 dataSeed: config.seed, stepInEpoch: step % stepsPerEpoch)
            try Checkpoint.write(path: path, store: store, optimizer: optimizer, metadata: meta, state: state, metrics: metrics)
            try Checkpoint.prune(directory: config.checkpointDir, group: groupIndex, keep: config.keepLast)
        }
        return path
    }

    /// Test loss and accuracy of the group: each rank evaluates every size-th test sample.
    func evaluate(model: Module, test: Dataset, mean: [Float], std: [Float]) -> (loss: Double, accuracy: Double) {
        model.eval()
        let builder = BatchBuilder(dataset: test, mean: mean, std: std)
        let mine = Array(stride(from: group.rank, to: test.count, by: group.size))
        var lossSum = 0.0, correct = 0.0
        let chunk = 500
        for start in stride(from: 0, to: mine.count, by: chunk) {
            let idx = Array(mine[start..<min(start + chunk, mine.count)])
            let (images, labels) = builder.batch(indices: idx, step: 0)
            withNoGrad {
                let logits = model(images)
                lossSum += Double(crossEntropy(logits, labels: labels).scalar) * Double(idx.count)
                correct += Double(countCorrect(logits, labels))
            }
        }
        let sums = group.allreduceSum([lossSum, correct])
        return (sums[0] / Double(test.count), sums[1] / Double(test.count))
    }
}

/// Number of rows whose arg-max is the label.
public func countCorrect(_ logits: Tensor, _ labels: [Int]) -> Int {
    labels.indices.reduce(0) { $0 + (argmax(logits, row: $1) == labels[$1] ? 1 : 0) }
}

/// The class a row of [N, K] logits picks (the first of equal maxima).
func argmax(_ logits: Tensor, row: Int) -> Int {
    let k = logits.shape[1], p = logits.data + row * k
    var best = 0
    for j in 1..<k where p[j] > p[best] { best = j }
    return best
}

/// Thrown after a clean checkpoint when SIGTERM/SIGUSR1 asked the job to stop.
public struct StopRequested: Error, CustomStringConvertible {
    public let checkpoint: String?
    public var description: String { "stopped on signal; checkpoint \(checkpoint ?? "-")" }
}
