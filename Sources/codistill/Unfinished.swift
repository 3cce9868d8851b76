import ArgumentParser

/// A subcommand whose work has not landed yet: it says so and exits non-zero, so no job script
/// mistakes it for success.
protocol UnfinishedCommand: ParsableCommand {
    static var plannedIn: String { get }
}

extension UnfinishedCommand {
    func run() throws {
        let name = Self.configuration.commandName ?? "this command"
        throw ValidationError("`codistill \(name)` is not implemented yet (planned in \(Self.plannedIn)). "
            + "Available now: `codistill bench engine`.")
    }
}

struct Train: UnfinishedCommand {
    static let configuration = CommandConfiguration(commandName: "train",
        abstract: "Train a model with MPI groups (sync SGD inside, codistillation across). Not implemented yet.")
    static let plannedIn = "the distributed-training issue"
}

struct Synth: UnfinishedCommand {
    static let configuration = CommandConfiguration(commandName: "synth",
        abstract: "Data-free distillation from a teacher checkpoint (FastDFKD). Not implemented yet.")
    static let plannedIn = "the data-free issue"
}

struct Eval: UnfinishedCommand {
    static let configuration = CommandConfiguration(commandName: "eval",
        abstract: "Evaluate checkpoints: accuracy, ensembles, churn. Not implemented yet.")
    static let plannedIn = "the distributed-training issue"
}

struct Inspect: UnfinishedCommand {
    static let configuration = CommandConfiguration(commandName: "inspect",
        abstract: "Print an HDF5 checkpoint: tree, shapes, step, config. Not implemented yet.")
    static let plannedIn = "the distributed-training issue"
}

struct DataCommand: UnfinishedCommand {
    static let configuration = CommandConfiguration(commandName: "data",
        abstract: "Describe or convert datasets (IDX, CIFAR binary, HDF5). Not implemented yet.")
    static let plannedIn = "the distributed-training issue"
}
