import Checkpoint
import Cluster
import Data
import Engine
import Foundation
import NN
import RunConfig

/// A started run of one rank: `advance()` trains one step and does what falls due after it
/// (consistency check, evaluation, metrics row, checkpoint, stop on signal).
public final class TrainingRun {
    let trainer: Trainer
    var config: TrainConfig { trainer.config }
    let spec: ModelSpec
    public let model: Module
    public let store: ParameterStore
    let optimizer: Optimizer
    let step: TrainingStep
    let plan: ShardPlan
    let test: Dataset
    let mean: [Float], std: [Float]
    let builder: BatchBuilder
    let metrics: MetricsWriter?
    let codistillation: Codistillation?
    /// Several groups in one job: carries a stop between them.
    let stopRelay: StopRelay?
    let schedule: LRSchedule
    let progress: Progress
    public let totalSteps: Int
    /// Steps completed.
    public private(set) var stepsDone: Int
    var lastCheckpoint: String?
    var lastEval: (loss: Double, accuracy: Double)?
    var window = MetricsWindow()
    /// Moving averages of the group's training loss and accuracy: the health record published
    /// with each snapshot.
    var recentLoss: Double?, recentAccuracy: Double?
    private var closed = false

    init(trainer: Trainer, spec: ModelSpec, model: Module, store: ParameterStore, optimizer: Optimizer, step: TrainingStep,
         plan: ShardPlan, test: Dataset, mean: [Float], std: [Float], builder: BatchBuilder, metrics: MetricsWriter?,
         codistillation: Codistillation?, stopRelay: StopRelay?, startStep: Int, lastCheckpoint: String?) {
        self.trainer = trainer; self.spec = spec; self.model = model; self.store = store; self.optimizer = optimizer
        self.step = step; self.plan = plan; self.test = test; self.mean = mean; self.std = std; self.builder = builder
        self.metrics = metrics; self.codistillation = codistillation; self.stopRelay = stopRelay
        self.stepsDone = startStep; self.lastCheckpoint = lastCheckpoint
        let config = trainer.config
        totalSteps = config.steps > 0 ? config.steps : config.epochs * plan.stepsPerEpoch
        let shape: LRSchedule.Shape
        switch config.schedule {
        case .step: shape = .step(every: config.stepEvery, gamma: config.stepGamma)
        case .cosine: shape = .cosine(totalSteps: totalSteps, minLR: 0)
        case .constant: shape = .constant
        }
        schedule = LRSchedule(base: config.lr, shape: shape, warmupSteps: config.warmupSteps)
        let groups = config.groups
        progress = Progress(enabled: groups == 1 ? trainer.world.rank == 0 : trainer.group.rank == 0, total: totalSteps,
                            logEvery: config.logEvery, log: trainer.log, prefix: groups > 1 ? "[group \(trainer.groupIndex)] " : "")
        codistillation?.stopAsked = { [unowned self] in self.stopAsked() }
        codistillation?.recentHealth = { [unowned self] in
            self.recentLoss.flatMap { loss in self.recentAccuracy.map { SnapshotHealth(loss: loss, accuracy: $0) } }
        }
    }

    /// Ends the exchange (collective over the world for MPI windows); once on every rank.
    public func close() {
        guard !closed else { return }
        closed = true
        stopRelay?.close()
        codistillation?.close()
    }

    /// Trains one step; false once the run is complete. Throws StopRequested after the
    /// checkpoint when a stop signal arrived.
    public func advance() throws -> Bool {
        guard stepsDone < totalSteps else { return false }
        let s = stepsDone
        do {
            try codistillation?.beforeStep(s, optimizer: optimizer)
        } catch is ExchangeInterrupted {
            // A lock-step wait for a peer cut short by a stop: the state is that of the end of
            // step s, before its exchange, which is what a resume from step s redoes.
            try stopRun(afterStep: s, checkpointed: false)
        }
        let (images, labels) = builder.batch(indices: plan.indices(step: s), step: s)
        let lr = schedule.lr(at: s)
        let stats: StepStatistics
        if let fault = trainer.gradientFault { step.gradientFault = { fault(s + 1, $0) } }
        do {
            stats = try step.run(images, lr: lr, requestStop: stopAsked()) { logits in
                Objective(loss: crossEntropy(logits, labels: labels, labelSmoothing: config.labelSmoothing),
                          extra: codistillation?.distillationTerm(logits: logits, images: images, labels: labels, step: s),
                          correct: countCorrect(logits, labels))
            }
        } catch let e as NonFiniteLoss {
            throw TrainingError((config.groups > 1 ? "group \(trainer.groupIndex): " : "") + "\(e) at step \(s + 1); the step was not applied"
                + (lastCheckpoint.map { "; the last good checkpoint is \($0) (resume with --resume auto)" } ?? "")
                + ": lower --lr (now \(config.lr)) or add --warmup-steps")
        }
        stepsDone += 1
        window.add(stats)
        let accuracy = Double(stats.correct) / Double(max(1, stats.samples))
        recentLoss = recentLoss.map { 0.9 * $0 + 0.1 * stats.loss } ?? stats.loss
        recentAccuracy = recentAccuracy.map { 0.9 * $0 + 0.1 * accuracy } ?? accuracy
        try afterStep(stop: stats.stopRequested, lr: lr)
        return stepsDone < totalSteps
    }

    func afterStep(stop: Bool, lr: Float) throws {
        let s = stepsDone
        if config.consistencyEvery > 0 && s % config.consistencyEvery == 0 {
            let sums = trainer.group.allgather(store.checksum())
            if Set(sums).count != 1 {
                throw TrainingError("ranks of group \(trainer.groupIndex) disagree on the parameters at step \(s) (checksums \(sums.map { String($0, radix: 16) })): this is a bug or a faulty node; rerun from the last checkpoint")
            }
        }
        let isLast = s == totalSteps
        if (config.evalEvery > 0 && s % config.evalEvery == 0) || isLast {
            lastEval = trainer.evaluate(model: model, test: test, mean: mean, std: std)
        }
        let stopping = stop && !isLast
        if s % config.logEvery == 0 || isLast || stopping {
            let row = window.close(step: s, epoch: Double(s) / Double(plan.stepsPerEpoch), lr: lr, evaluation: lastEval,
                                   codistillation: codistillation?.takeMetrics(at: s))
            metrics?.write(row)
            progress.report(row, group: trainer.groupIndex)
            lastEval = isLast ? lastEval : nil
        }
        if (config.checkpointEvery > 0 && s % config.checkpointEvery == 0) || isLast || stopping {
            lastCheckpoint = try trainer.saveCheckpoint(store: store, optimizer: optimizer, spec: spec, step: s,
                                                        stepsPerEpoch: plan.stepsPerEpoch, mean: mean, std: std,
                                                        metrics: lastEval.map { ["test_accuracy": $0.accuracy, "test_loss": $0.loss] } ?? [:],
                                                        exchange: codistillation?.exchangeState() ?? [])
        }
        if stopping { try stopRun(afterStep: s, checkpointed: true) }
    }

    /// Whether a stop has been asked for: a signal to this rank, or another group's stop.
    func stopAsked() -> Bool { StopSignal.requested || stopRelay?.otherGroupStopped() == true }

    /// Ends the run after step `s` with a checkpoint of it (written here unless `checkpointed`):
    /// tells the other groups, says how to continue, throws StopRequested.
    func stopRun(afterStep s: Int, checkpointed: Bool) throws {
        if !checkpointed {
            lastCheckpoint = try trainer.saveCheckpoint(store: store, optimizer: optimizer, spec: spec, step: s,
                                                        stepsPerEpoch: plan.stepsPerEpoch, mean: mean, std: std, metrics: [:],
                                                        exchange: codistillation?.exchangeState() ?? [])
        }
        stopRelay?.announceStop()
        if trainer.group.rank == 0 {
            let relayed = !StopSignal.requested && stopRelay?.otherGroupStopped() == true
            let why = relayed ? "because another group of the job stopped" : "on a stop signal"
            trainer.log((config.groups > 1 ? "[group \(trainer.groupIndex)] " : "")
                        + "stopping \(why) after step \(s); checkpoint \(lastCheckpoint ?? "-"); continue with --resume auto (exit status 75)")
        }
        throw StopRequested(checkpoint: lastCheckpoint)
    }

    /// The final test figures (evaluating now if the last step did not).
    public func finish() -> TrainResult {
        let final = lastEval ?? trainer.evaluate(model: model, test: test, mean: mean, std: std)
        return TrainResult(steps: stepsDone, testAccuracy: final.accuracy, testLoss: final.loss, lastCheckpoint: lastCheckpoint)
    }
}
