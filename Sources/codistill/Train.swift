import ArgumentParser
import Checkpoint
import Cluster
import Foundation
import RunConfig
import Training

/// `mpirun -np N codistill train ...`: every rank runs this; rank 0 talks.
struct Train: ParsableCommand {
    /// Exit status of a run stopped by a signal after its checkpoint (EX_TEMPFAIL: "try again"),
    /// distinct from 0 (finished) and 1 (failed), so job scripts can requeue it.
    static let stoppedExitStatus: Int32 = 75

    static let configuration = CommandConfiguration(commandName: "train",
        abstract: "Train a model: N ranks split into G groups, sync SGD inside each group, codistillation across groups.",
        discussion: """
        Example: mpirun -np 2 codistill train --model cnn --epochs 3
        Options come from --config (TOML or YAML, keys as the option names, tables only group them) and are overridden by flags.
        Prints test_acc=NN.NN at the end. SIGUSR1 or SIGTERM: every group finishes its step, writes a checkpoint and the run exits with status 75; continue with --resume auto.
        Under mpirun send SIGUSR1 (forwarded to every rank): mpirun follows SIGTERM with SIGKILL after odls_base_sigkill_timeout (1 s), often before the checkpoint is written.
        """)

    @Option(help: "Experiment file (.toml or .yaml) with any of the options below; flags override it.") var config: String?
    @Option(help: "Resume from a checkpoint file, or 'auto' for the newest complete one in --checkpoint-dir.") var resume: String?
    @OptionGroup(title: "Training options") var options: TrainOptions

    /// Defaults (TrainConfig()), then the experiment file, then the flags given.
    func buildConfig() throws -> TrainConfig {
        let file = try config.map { try ExperimentFile.load(path: $0) } ?? TrainConfig()
        let c = try file.applying(options.settings)
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
            if let delay = ProcessInfo.processInfo.environment["CODISTILL_FAULT_SLOW_CHECKPOINT_SECONDS"].flatMap(Double.init) {
                // Fault injection for tests: every checkpoint write pauses halfway, so signals and
                // kills land mid-write.
                Checkpoint.pauseMidWriteSeconds = delay
            }
            if let spec = ProcessInfo.processInfo.environment["CODISTILL_FAULT_NAN_GRADIENT"] {
                // Fault injection for tests: "GROUP:STEP" puts a NaN into one gradient of that
                // group at that step, with a finite loss.
                let parts = spec.split(separator: ":").compactMap { Int($0) }
                if parts.count == 2, parts[0] == trainer!.groupIndex {
                    trainer!.gradientFault = { step, store in if step == parts[1] { store.gradients[0] = .nan } }
                }
            }
            let result = try trainer!.run()
            if world.rank == 0 && cfg.groups == 1 {
                say(String(format: "test_acc=%.2f test_loss=%.4f steps=%d checkpoint=%@", 100 * result.testAccuracy,
                           result.testLoss, result.steps, result.lastCheckpoint ?? "-"))
            } else if cfg.groups > 1 && trainer!.isGroupLeader {
                say(String(format: "group %d test_acc=%.2f test_loss=%.4f steps=%d checkpoint=%@", trainer!.groupIndex,
                           100 * result.testAccuracy, result.testLoss, result.steps, result.lastCheckpoint ?? "-"))
            }
            world.sleepingBarrier()  // met by the stop path below: groups may end either way
            MPIRuntime.finish()
        } catch is StopRequested {
            // mpirun ends the whole job when the first rank exits non-zero: no rank leaves
            // before every group has written its checkpoint (the stop reaches them all).
            world.sleepingBarrier()
            MPIRuntime.finish()
            throw ExitCode(Train.stoppedExitStatus)
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
