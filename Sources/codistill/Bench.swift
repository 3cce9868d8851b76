import ArgumentParser

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench",
        abstract: "Benchmarks (release builds only give meaningful figures).",
        subcommands: [BenchEngine.self])
}

struct BenchEngine: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "engine",
        abstract: "Training throughput and GFLOP/s of a model on one thread.")
    func run() throws {}
}
