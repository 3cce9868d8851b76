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
            + "Available now: train, eval, inspect, data, bench.")
    }
}

struct Synth: UnfinishedCommand {
    static let configuration = CommandConfiguration(commandName: "synth",
        abstract: "Data-free distillation from a teacher checkpoint (FastDFKD). Not implemented yet.")
    static let plannedIn = "the data-free issue"
}

