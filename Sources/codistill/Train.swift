import ArgumentParser
import Cluster
import Foundation
import Training

/// `mpirun -np N codistill train ...`: every rank runs this; rank 0 talks.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train",
        abstract: "Train a model: N ranks split into G groups, sync SGD inside each group, codistillation across groups.",
        discussion: """
        Example: mpirun -np 2 codistill train --model cnn --epochs 3
        Options come from --config (flat TOML or YAML, keys as the option names) and are overridden by flags.
        Prints test_acc=NN.NN at the end. SIGTERM/SIGUSR1 write a checkpoint and stop; continue with --resume auto.
        """)

    @Option(help: "Experiment file (.toml or .yaml) with any of the options below.") var config: String?
    @Option(help: "Model: mlp, cnn, resnet8, resnet20, wrn-16-1, wrn-16-2.") var model: String?
    @Option(help: "Dataset: IDX directory (MNIST family), CIFAR binary directory or HDF5 file.") var data: String?
    @Option(help: "Number of groups G (must divide the rank count).") var groups: Int?
    @Option(help: "Samples per rank per step (group batch = batch x ranks per group).") var batch: Int?
    @Option(help: "Epochs over the training set.") var epochs: Int?
    @Option(help: "Steps (overrides --epochs when > 0).") var steps: Int?
    @Option(help: "Optimizer: sgd, adam, adamw.") var optimizer: String?
    @Option(help: "Base learning rate.") var lr: Float?
    @Option(help: "LR schedule: constant, step, cosine.") var schedule: String?
    @Option(help: "Linear warm-up steps.") var warmupSteps: Int?
    @Option(help: "For --schedule step: multiply by --step-gamma every this many steps.") var stepEvery: Int?
    @Option(help: "For --schedule step: the factor.") var stepGamma: Float?
    @Option(help: "SGD momentum.") var momentum: Float?
    @Flag(help: "Nesterov momentum.") var nesterov = false
    @Option(help: "Weight decay.") var weightDecay: Float?
    @Option(help: "Label smoothing for the cross-entropy.") var labelSmoothing: Float?
    @Option(help: "Seed for weights, data order and augmentation.") var seed: UInt64?
    @Flag(help: "Do not normalise inputs by the training set's channel mean/std.") var noNormalize = false
    @Option(help: "Random crop after zero padding by this many pixels (0: off).") var randomCropPadding: Int?
    @Flag(help: "Random horizontal flips.") var horizontalFlip = false
    @Option(help: "Evaluate on the test split every this many steps (0: at the end only).") var evalEvery: Int?
    @Option(help: "Checkpoint directory (group-<g>/step-<step>.h5 inside).") var checkpointDir: String?
    @Option(help: "Checkpoint every this many steps (0: at the end only).") var checkpointEvery: Int?
    @Option(help: "Keep the newest K checkpoints per group (0: all).") var keepLast: Int?
    @Option(help: "Resume from a checkpoint file, or 'auto' for the newest complete one in --checkpoint-dir.") var resume: String?
    @Option(help: "Metrics file ({group} = group number; .jsonl for JSON Lines, else CSV).") var metrics: String?
    @Option(help: "Progress line every this many steps.") var logEvery: Int?
    @Option(help: "Check that ranks of a group hold identical parameters every this many steps (0: off).") var consistencyEvery: Int?
    @Option(help: "BLAS threads per rank.") var blasThreads: Int?
    @Option(help: "Exchange between groups: rma (one-sided MPI, default), files (shared --peer-dir), none.") var exchange: String?
    @Option(help: "Publish and read peer snapshots every this many steps.") var exchangeEvery: Int?
    @Option(help: "Weight of the distillation term.") var distillWeight: Float?
    @Option(help: "Steps without distillation at the start.") var burnIn: Int?
    @Option(help: "Steps over which the distillation weight rises linearly after burn-in.") var distillRamp: Int?
    @Option(help: "Distillation temperature.") var temperature: Float?
    @Option(help: "Weight decay once burn-in ends (SGD; Sodhani et al. 2020). Default: unchanged.") var weightDecayAfterBurnIn: Float?
    @Option(help: "Which peers a group follows: all, ring.") var topology: String?
    @Option(help: "Data of each group: disjoint (a 1/G share each), same.") var dataSplit: String?
    @Option(help: "Shared directory for --exchange files (jobs that share it codistil).") var peerDir: String?
    @Option(help: "This job's name in --peer-dir (default: the checkpoint directory's name).") var peerName: String?

    func buildConfig() throws -> TrainConfig {
        var c = try config.map { try ExperimentFile.load(path: $0) } ?? TrainConfig()
        if let v = model { c.model = v }
        if let v = data { c.data = v }
        if let v = groups { c.groups = v }
        if let v = batch { c.batch = v }
        if let v = epochs { c.epochs = v }
        if let v = steps { c.steps = v }
        if let v = optimizer { c.optimizer = v }
        if let v = lr { c.lr = v }
        if let v = schedule { c.schedule = v }
        if let v = warmupSteps { c.warmupSteps = v }
        if let v = stepEvery { c.stepEvery = v }
        if let v = stepGamma { c.stepGamma = v }
        if let v = momentum { c.momentum = v }
        if nesterov { c.nesterov = true }
        if let v = weightDecay { c.weightDecay = v }
        if let v = labelSmoothing { c.labelSmoothing = v }
        if let v = seed { c.seed = v }
        if noNormalize { c.normalize = false }
        if let v = randomCropPadding { c.randomCropPadding = v }
        if horizontalFlip { c.horizontalFlip = true }
        if let v = evalEvery { c.evalEvery = v }
        if let v = checkpointDir { c.checkpointDir = v }
        if let v = checkpointEvery { c.checkpointEvery = v }
        if let v = keepLast { c.keepLast = v }
        if let v = metrics { c.metrics = v }
        if let v = logEvery { c.logEvery = v }
        if let v = consistencyEvery { c.consistencyEvery = v }
        if let v = blasThreads { c.blasThreads = v }
        if let v = exchange { c.exchange = v }
        if let v = exchangeEvery { c.exchangeEvery = v }
        if let v = distillWeight { c.distillWeight = v }
        if let v = burnIn { c.burnIn = v }
        if let v = distillRamp { c.distillRamp = v }
        if let v = temperature { c.temperature = v }
        if let v = weightDecayAfterBurnIn { c.weightDecayAfterBurnIn = v }
        if let v = topology { c.topology = v }
        if let v = dataSplit { c.dataSplit = v }
        if let v = peerDir { c.peerDir = v }
        if let v = peerName { c.peerName = v }
        try c.validate()
        return c
    }

    func run() throws {
        let world = MPIRuntime.start()
        StopSignal.install()
        let say: (String) -> Void = { print($0); fflush(stdout) }
        var trainer: Trainer?
        do {
            try checkLauncher(world: world)
            let cfg = try buildConfig()
            trainer = try Trainer(config: cfg, resume: resume, world: world, log: say)
            if ProcessInfo.processInfo.environment["CODISTILL_FAULT_CORRUPT_SNAPSHOTS"] == "1" {
                // Fault injection for tests: every publication arrives torn.
                trainer!.wrapTransport = { FaultInjectingTransport($0) }
            }
            let result = try trainer!.run()
            if world.rank == 0 && cfg.groups == 1 {
                say(String(format: "test_acc=%.2f test_loss=%.4f steps=%d checkpoint=%@", 100 * result.testAccuracy,
                           result.testLoss, result.steps, result.lastCheckpoint ?? "-"))
            } else if cfg.groups > 1 && trainer!.isGroupLeader {
                say(String(format: "group %d test_acc=%.2f test_loss=%.4f steps=%d checkpoint=%@", trainer!.groupIndex,
                           100 * result.testAccuracy, result.testLoss, result.steps, result.lastCheckpoint ?? "-"))
            }
            MPIRuntime.finish()
        } catch is StopRequested {
            MPIRuntime.finish()
            throw ExitCode(0)
        } catch {
            // World-agreed failures and bad options are the same on every rank: rank 0 reports.
            // Anything else was found by one group: its leader reports and the job ends at once.
            let everywhere = error is CollectiveFailure || error is ConfigError || trainer == nil
            if everywhere {
                if world.rank == 0 { fputs("codistill: error: \(error)\n", stderr) }
                MPIRuntime.finish()
                throw ExitCode(1)
            }
            if trainer!.isGroupLeader { fputs("codistill: error: \(error)\n", stderr) }
            if trainer!.config.groups > 1 { MPIRuntime.abort(code: 1) }
            MPIRuntime.finish()
            throw ExitCode(1)
        }
    }

    /// Under SLURM, `srun` without MPI support starts N singletons of world size 1.
    func checkLauncher(world: Communicator) throws {
        let env = ProcessInfo.processInfo.environment
        if let tasks = env["SLURM_NTASKS"].flatMap(Int.init), tasks > 1, world.size == 1 {
            throw ConfigError(description: "SLURM started \(tasks) tasks but MPI sees a world of 1: srun launched singletons. Use mpirun, or srun --mpi=pmix (see INSTALL.md)")
        }
    }
}
