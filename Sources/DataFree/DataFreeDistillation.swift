import Checkpoint
import Data
import Engine
import Foundation
import Inference
import NN
import RunConfig

/// `codistill synth`: distils a student from a teacher checkpoint without training data.
/// Each round synthesises one batch (Synthesizer), adds it to a pool of all batches so far, and
/// trains the student for `kdSteps` steps on random batches of the pool against the teacher's
/// softened predictions (KL at temperature T, as Fang et al.'s code). Real data is touched only
/// to evaluate the student; the input normalisation comes from the teacher's checkpoint.
public struct DataFreeConfig {
    public var synthesis = SynthesisConfig()
    public var student = "cnn"
    public var rounds = 40
    public var kdSteps = 20
    public var kdBatch = 128
    public var lr: Float = 0.05
    public var momentum: Float = 0.9
    public var weightDecay: Float = 5e-4
    public var temperature: Float = 4
    public var evalEvery = 10
    public init() {}
}

public struct DataFreeRoundMetrics: Codable {
    public let round: Int
    public let synthesisSeconds: Double
    public let kdSeconds: Double
    public let synthesisLoss: Double, bnLoss: Double, ceLoss: Double, advLoss: Double
    public let kdLoss: Double
    public let poolSize: Int
    public let studentTestAccuracy: Double?
}

public struct DataFreeResult {
    public let rounds: [DataFreeRoundMetrics]
    public let teacherTestAccuracy: Double?
    public let studentTestAccuracy: Double?
    public var synthesisSeconds: Double { rounds.reduce(0) { $0 + $1.synthesisSeconds } }
    public var kdSeconds: Double { rounds.reduce(0) { $0 + $1.kdSeconds } }
}

public final class DataFreeDistiller {
    public let config: DataFreeConfig
    let teacher: TrainedModel
    let probe: TeacherProbe
    public let student: Module
    public let studentStore: ParameterStore
    let spec: ModelSpec
    let mean: [Float], std: [Float]
    let test: Dataset?
    let log: (String) -> Void
    var pool: [Float] = []
    var poolCount = 0

    public init(teacher: TrainedModel, config: DataFreeConfig, mean: [Float], std: [Float], test: Dataset?,
                log: @escaping (String) -> Void) throws {
        self.config = config
        self.teacher = teacher
        self.mean = mean; self.std = std
        self.test = test
        self.log = log
        probe = TeacherProbe(model: teacher.model, store: teacher.store, momentum: config.synthesis.statisticsMomentum)
        spec = ModelSpec(name: config.student, inputShape: teacher.spec.inputShape, classes: teacher.spec.classes)
        student = try Models.make(spec)
        studentStore = ParameterStore(model: student, seed: config.synthesis.seed &+ 17)
        let side = teacher.spec.inputShape
        if config.synthesis.method == .fastDFKD, side[1] % 4 != 0 || side[1] != side[2] {
            throw DataFreeError("FastDFKD's generator makes square images with a side divisible by 4; the teacher takes \(side): use --method deepinversion")
        }
    }

    public func run(metricsPath: String?) throws -> DataFreeResult {
        let synthesizer = Synthesizer(config: config.synthesis, teacher: probe, student: student,
                                      imageShape: teacher.spec.inputShape, classes: teacher.spec.classes,
                                      mean: mean, std: std)
        let sgd = SGD(parameters: studentStore, momentum: config.momentum, weightDecay: config.weightDecay)
        let step = TrainingStep(model: student, store: studentStore, optimizer: sgd)
        let totalKD = config.rounds * config.kdSteps
        let schedule = LRSchedule(base: config.lr, shape: .cosine(totalSteps: max(1, totalKD), minLR: 0), warmupSteps: 0)
        var rng = RandomGenerator(seed: config.synthesis.seed, stream: "kd-sampling")
        let teacherAccuracy = test.map { accuracy(teacher.model, on: $0) }
        if let a = teacherAccuracy { log(String(format: "teacher test accuracy %.2f%%", 100 * a)) }
        var rows: [DataFreeRoundMetrics] = []
        let metrics = try metricsPath.map { try JSONLinesFile(path: $0) }
        var kdStep = 0
        for round in 1...config.rounds {
            let r = synthesizer.synthesize()
            pool += r.images.array
            poolCount += r.images.shape[0]

            let kdStart = Date()
            var kdLoss = 0.0
            student.train()
            for _ in 0..<config.kdSteps {
                let images = samplePool(batch: config.kdBatch, rng: &rng)
                let targets = withNoGrad { teacher.model(images) }
                let stats: StepStatistics
                do {
                    stats = try step.run(images, lr: schedule.lr(at: kdStep)) { logits in
                        Objective(loss: klDivergence(student: logits, teacher: targets, temperature: config.temperature))
                    }
                } catch let e as NonFiniteLoss {
                    throw DataFreeError("the distillation loss became \(e.statistics.loss) in round \(round): lower --lr (now \(config.lr))")
                }
                kdStep += 1
                kdLoss += stats.loss
            }
            let kdSeconds = Date().timeIntervalSince(kdStart)
            var acc: Double?
            if let test, round % max(1, config.evalEvery) == 0 || round == config.rounds {
                acc = accuracy(student, on: test)
            }
            let row = DataFreeRoundMetrics(round: round, synthesisSeconds: r.seconds, kdSeconds: kdSeconds,
                                           synthesisLoss: Double(r.loss), bnLoss: Double(r.bnLoss), ceLoss: Double(r.ceLoss),
                                           advLoss: Double(r.advLoss), kdLoss: kdLoss / Double(max(1, config.kdSteps)),
                                           poolSize: poolCount, studentTestAccuracy: acc)
            rows.append(row)
            try metrics?.append(row)
            if round % max(1, config.evalEvery) == 0 || round == config.rounds || round == 1 {
                log(String(format: "round %d/%d: synthesis %.2f s (loss %.3f: bn %.3f ce %.3f adv %.3f), distillation %.2f s (kd %.4f), pool %d%@",
                           round, config.rounds, r.seconds, r.loss, r.bnLoss, r.ceLoss, r.advLoss, kdSeconds,
                           row.kdLoss, poolCount, acc.map { String(format: ", student test accuracy %.2f%%", 100 * $0) } ?? ""))
            }
        }
        return DataFreeResult(rounds: rows, teacherTestAccuracy: teacherAccuracy, studentTestAccuracy: rows.last?.studentTestAccuracy)
    }

    /// A random batch (with replacement) from every synthesised image so far.
    func samplePool(batch: Int, rng: inout RandomGenerator) -> Tensor {
        let size = spec.inputShape.reduce(1, *)
        let images = Tensor(uninitialized: [batch] + spec.inputShape)
        pool.withUnsafeBufferPointer { p in
            for i in 0..<batch {
                let j = rng.int(below: poolCount)
                (images.data + i * size).update(from: p.baseAddress! + j * size, count: size)
            }
        }
        return images
    }

    func accuracy(_ model: Module, on data: Dataset) -> Double {
        let wasTraining = model.training
        model.eval()
        defer { if wasTraining { model.train() } }
        var correct = 0
        BatchedInference(dataset: data, mean: mean, std: std)
            .forEachBatch(indices: Array(0..<data.count), forward: { model($0) }) { logits, labels in correct += countCorrect(logits, labels) }
        return Double(correct) / Double(max(1, data.count))
    }

    /// Writes the student as a checkpoint `codistill eval`/`inspect` and PyTorch read like any other.
    public func saveStudent(to path: String, rounds: Int) throws {
        var cfg = teacher.config
        cfg.model = config.student
        cfg.inputMean = mean; cfg.inputStd = std
        let meta = CheckpointMetadata(step: rounds * config.kdSteps, epoch: 0, group: 0, numGroups: 1, worldSize: 1,
                                      model: spec, configJSON: cfg.json)
        let state = RunState(step: rounds * config.kdSteps, epoch: 0, rngWords: RandomGenerator(seed: config.synthesis.seed).words,
                             dataSeed: config.synthesis.seed, stepInEpoch: 0)
        try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        try Checkpoint.write(path: path, store: studentStore, optimizer: nil, metadata: meta, state: state)
    }
}
