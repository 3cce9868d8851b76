import ArgumentParser

@main
struct Codistill: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codistill",
        abstract: "Train neural networks on HPC clusters: sync SGD inside groups, codistillation across them.",
        discussion: "Launch with mpirun, e.g. `mpirun -np 2 codistill train --model cnn --epochs 3`.",
        subcommands: [Train.self, Synth.self, Eval.self, Inspect.self, DataCommand.self, Bench.self])
}
