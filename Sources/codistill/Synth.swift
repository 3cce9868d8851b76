import ArgumentParser
import Data
import DataFree
import Engine
import Foundation
import Inference
import NN
import RunConfig

/// The defaults shown in `synth --help` are those of the library's configurations.
private let kdDefaults = DataFreeConfig()
private let synthesisDefaults = SynthesisConfig()

/// `codistill synth`: data-free distillation from a teacher checkpoint (FastDFKD, or the
/// DeepInversion baseline). Runs on one process; the teacher's real data is read only to
/// evaluate the student.
struct Synth: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "synth",
        abstract: "Data-free distillation of a student from a teacher checkpoint (FastDFKD or DeepInversion).",
        discussion: """
        Each round synthesises one batch of images from the teacher alone and trains the student on all \
        batches so far. FastDFKD adapts a meta-learned generator for a few --steps per batch; DeepInversion \
        optimises pixels from noise for hundreds of --steps. Prints the synthesis time, the student's test \
        accuracy (real test split, for evaluation only) and writes the student as a checkpoint.
        """)

    @Option(help: "Teacher checkpoint (.h5) written by codistill train.") var teacher: String
    @Option(help: "Student model: mlp, cnn, resnet8, resnet20, wrn-16-1, wrn-16-2.") var student = kdDefaults.student
    @Option(help: "Synthesis method.") var method = synthesisDefaults.method
    @Option(help: "Rounds (one synthesised batch each).") var rounds = kdDefaults.rounds
    @Option(help: "Optimisation steps per synthesised batch (default: \(SynthesisMethod.fastDFKD.defaultSteps) for fastdfkd, \(SynthesisMethod.deepInversion.defaultSteps) for deepinversion).") var steps: Int?
    @Option(help: "Synthesised images per round.") var batch = synthesisDefaults.batch
    @Option(help: "Student steps per round.") var kdSteps = kdDefaults.kdSteps
    @Option(help: "Student batch.") var kdBatch = kdDefaults.kdBatch
    @Option(help: "Student learning rate (SGD, momentum \(kdDefaults.momentum), cosine).") var lr = kdDefaults.lr
    @Option(help: "Distillation temperature.") var temperature = kdDefaults.temperature
    @Option(help: "Generator learning rate (fastdfkd) or pixel learning rate (deepinversion) (default: \(SynthesisMethod.fastDFKD.defaultLR) for fastdfkd, \(SynthesisMethod.deepInversion.defaultLR) for deepinversion).") var synthesisLr: Float?
    @Option(help: "Latent-code learning rate (fastdfkd).") var latentLr = synthesisDefaults.latentLR
    @Option(help: "Generator width ngf (fastdfkd; the reference uses 64 for 32x32 colour images).") var generatorWidth = synthesisDefaults.generatorWidth
    @Option(help: "Weight of the BatchNorm-statistics loss.") var bnWeight = synthesisDefaults.bnWeight
    @Option(help: "Weight of the teacher's cross-entropy on the target classes.") var ceWeight = synthesisDefaults.ceWeight
    @Option(help: "Weight of the adversarial (student-teacher disagreement) term.") var advWeight = synthesisDefaults.advWeight
    @Option(help: "Rounds before the adversarial term starts.") var advWarmup = synthesisDefaults.advWarmupRounds
    @Option(help: "Evaluate the student every this many rounds.") var evalEvery = kdDefaults.evalEvery
    @Option(help: "Dataset for evaluation (default: the teacher's).") var data: String?
    @Option(help: "Where to write the student checkpoint.") var out = "runs/synth/student.h5"
    @Option(help: "Metrics file (JSON Lines), one row per round (default: none).") var metrics: String?
    @Option(help: "Seed.") var seed = synthesisDefaults.seed

    /// The options alone, checked by ArgumentParser before `run` (and before the teacher is
    /// read): a bad value is one "codistill: error:" line naming the option.
    func validate() throws {
        if rounds < 1 || batch < 2 || generatorWidth < 1 || kdSteps < 0 || kdBatch < 1 || (steps ?? 1) < 1 {
            throw ValidationError("--rounds, --steps and --kd-batch must be >= 1, --batch >= 2 (batch statistics), --generator-width >= 1 and --kd-steps >= 0")
        }
        if evalEvery < 1 { throw ValidationError("--eval-every must be at least 1, got \(evalEvery)") }
        if advWarmup < 0 { throw ValidationError("--adv-warmup must be >= 0, got \(advWarmup)") }
        // A learning rate or a temperature must be positive and finite, a loss weight finite and
        // >= 0: nan or inf would train on garbage without a word.
        for (name, value) in [("--lr", lr), ("--temperature", temperature), ("--synthesis-lr", synthesisLr ?? 1), ("--latent-lr", latentLr)]
        where !(value > 0 && value.isFinite) {
            throw ValidationError("\(name) must be a positive number, got \(value)")
        }
        for (name, value) in [("--bn-weight", bnWeight), ("--ce-weight", ceWeight), ("--adv-weight", advWeight)]
        where !(value >= 0 && value.isFinite) {
            throw ValidationError("\(name) must be a number >= 0, got \(value)")
        }
        if !Models.names.contains(student) {
            throw ValidationError("unknown --student '\(student)': choose one of \(Models.names.joined(separator: ", "))")
        }
    }

    func run() throws {
        do { try synthesize() } catch {
            fputs("codistill: error: \(error)\n", stderr)
            throw ExitCode(1)
        }
    }

    func synthesize() throws {
        BLAS.setThreads(1)
        let teacherModel = try TrainedModel(checkpoint: teacher)
        let dataPath = data ?? teacherModel.config.data
        let test = try DatasetLoader.load(path: dataPath, split: .test)
        guard test.sampleShape == teacherModel.spec.inputShape, test.classes <= teacherModel.spec.classes else {
            throw DataFreeError("\(teacher) takes inputs \(teacherModel.spec.inputShape) with \(teacherModel.spec.classes) classes; \(dataPath) has \(test.sampleShape): pass the teacher's dataset with --data")
        }
        // The normalisation the teacher was trained with: recorded in its checkpoint; checkpoints
        // written before that was recorded fall back to the training split's statistics, as
        // `codistill eval` computes them (the only use of training data, and it says so).
        let channels = test.sampleShape[0]
        let mean: [Float], std: [Float]
        if !teacherModel.config.normalize {
            (mean, std) = ([Float](repeating: 0, count: channels), [Float](repeating: 1, count: channels))
        } else if let recorded = teacherModel.recordedNormalization {
            (mean, std) = recorded
        } else {
            print("synth: \(teacher) does not record its input normalisation (written by an older codistill); computing it from the training split of \(dataPath)")
            (mean, std) = try DatasetLoader.load(path: dataPath, split: .train).channelStatistics()
        }
        try checkNormalization(mean: mean, std: std, channels: channels, source: "\(teacher) (input normalisation)",
                               fix: "the checkpoint or the training split it falls back to is unusable; pass --data with the teacher's training data.")

        var config = DataFreeConfig()
        config.student = student
        config.rounds = rounds
        config.kdSteps = kdSteps
        config.kdBatch = kdBatch
        config.lr = lr
        config.temperature = temperature
        config.evalEvery = evalEvery
        var s = SynthesisConfig()
        s.method = method
        s.batch = batch
        s.steps = steps ?? method.defaultSteps
        s.lr = synthesisLr ?? method.defaultLR
        s.latentLR = latentLr
        s.generatorWidth = generatorWidth
        s.bnWeight = bnWeight
        s.ceWeight = ceWeight
        s.advWeight = advWeight
        s.advWarmupRounds = advWarmup
        s.seed = seed
        // The statistics momentum helps a generator that sees many batches; DeepInversion's
        // batches are independent, as in its paper.
        s.statisticsMomentum = method == .fastDFKD ? 0.9 : 0
        config.synthesis = s

        let log: (String) -> Void = { print($0); fflush(stdout) }
        log("synth: \(method.rawValue), teacher \(teacherModel.spec.name) (\(teacher)), student \(student), \(rounds) rounds x \(batch) images, \(s.steps) steps per batch")
        let distiller = try DataFreeDistiller(teacher: teacherModel, config: config, mean: mean, std: std, test: test, log: log)
        let result = try distiller.run(metricsPath: metrics)
        try distiller.saveStudent(to: out, rounds: rounds)
        let synthesis = result.synthesisSeconds
        log(String(format: "synthesis_s=%.2f (%.3f s per batch of %d) kd_s=%.2f", synthesis, synthesis / Double(rounds), batch, result.kdSeconds))
        if let t = result.teacherTestAccuracy { log(String(format: "teacher_acc=%.2f", 100 * t)) }
        if let a = result.studentTestAccuracy { log(String(format: "test_acc=%.2f", 100 * a)) }
        log("student checkpoint: \(out)")
    }
}
