import ArgumentParser
import Foundation

@main
struct Codistill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codistill",
        abstract: "Train neural networks on HPC clusters: sync SGD inside groups, codistillation across them.",
        discussion: "Launch with mpirun, e.g. `mpirun -np 2 codistill train --model cnn --epochs 3`.",
        subcommands: [Train.self, Synth.self, Eval.self, Inspect.self, DataCommand.self, Bench.self])

    /// ArgumentParser's own `main`, except that a bad option is reported as every other error is,
    /// "codistill: error: ...", and only by the first rank of an mpirun job instead of by each.
    static func main() {
        let command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }  // --help, --version
            if launchRank == 0 {
                let subcommand = CommandLine.arguments.dropFirst().first { !$0.hasPrefix("-") }.map { " " + $0 } ?? ""
                FileHandle.standardError.write(Data("codistill: error: \(message(for: error))\n(the options: codistill\(subcommand) --help)\n".utf8))
            }
            exit(withError: ExitCode.validationFailure)
        }
        do {
            var command = command
            try command.run()
        } catch {
            exit(withError: error)
        }
    }

    /// This process's rank as the MPI launcher numbers it (0 when not launched by one); parsing
    /// happens before MPI starts.
    static var launchRank: Int {
        let env = ProcessInfo.processInfo.environment
        for key in ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"] {
            if let rank = env[key].flatMap(Int.init) { return rank }
        }
        return 0
    }
}
