import ArgumentParser
import Cluster
import Engine
import Foundation
import NN
import Training

/// `codistill bench scaling`: samples/s of `cnn` training (synthetic Fashion-MNIST-shaped data,
/// batch per rank fixed) with 1 and 2 ranks, and the share of step time spent in the fused
/// allreduce. Launches `mpirun -np R codistill bench scaling-worker` for each R.
struct BenchScaling: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scaling",
        abstract: "Samples/s with 1 and 2 ranks (mpirun), and the time spent in allreduce.")
    @Option(help: "Model.") var model = "cnn"
    @Option(help: "Batch per rank.") var batch = 128
    @Option(help: "Timed steps per run.") var steps = 60
    @Option(help: "Rank counts to measure, comma-separated.") var ranks = "1,2"
    @Option(help: "mpirun to use.") var mpirun = "mpirun"
    @Option(help: "Runs per rank count, alternating; the median is reported (this machine may be shared).") var repeats = 7

    func run() throws {
        let counts = ranks.split(separator: ",").compactMap { Int($0) }
        var runs: [Int: [[String: Double]]] = [:]
        for _ in 0..<max(1, repeats) { for r in counts {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [mpirun, "-np", String(r), "--bind-to", "core", CommandLine.arguments[0], "bench", "scaling-worker",
                           "--model", model, "--batch", String(batch), "--steps", String(steps)]
            var env = ProcessInfo.processInfo.environment
            if getuid() == 0 { env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"; env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1" }
            p.environment = env
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0,
                  let line = String(decoding: data, as: UTF8.self).split(separator: "\n").last(where: { $0.hasPrefix("{") }),
                  let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double] else {
                throw ValidationError("the \(r)-rank run failed (exit \(p.terminationStatus)); run it by hand: \(p.arguments!.joined(separator: " "))")
            }
            print(line)
            runs[r, default: []].append(obj)
        } }
        // The run with the median throughput stands for each rank count.
        let rows = counts.map { r -> (Int, [String: Double]) in
            let sorted = runs[r]!.sorted { $0["samples_per_s"]! < $1["samples_per_s"]! }
            return (r, sorted[sorted.count / 2])
        }
        let base = rows.first?.1["samples_per_s"] ?? 1
        print("\n| ranks | samples/s | speed-up | step ms | allreduce ms | allreduce share | waiting for slower rank ms |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for (r, o) in rows {
            print(String(format: "| %d | %.1f | %.2fx | %.1f | %.2f | %.2f%% | %.2f |", r, o["samples_per_s"]!, o["samples_per_s"]! / base,
                         o["step_ms"]!, o["allreduce_ms"]!, 100 * o["allreduce_ms"]! / o["step_ms"]!, o["wait_ms"] ?? 0))
        }
    }
}

struct BenchScalingWorker: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scaling-worker",
        abstract: "One rank of `bench scaling` (start with mpirun).", shouldDisplay: false)
    @Option var model = "cnn"
    @Option var batch = 128
    @Option var steps = 30
    @Option var warmup = 3

    func run() throws {
        let world = MPIRuntime.start()
        defer { MPIRuntime.finish() }
        BLAS.setThreads(1)
        let net = try Models.make(ModelSpec(name: model, inputShape: [1, 28, 28], classes: 10))
        let store = ParameterStore(model: net, seed: 0)
        let sgd = SGD(store: store, momentum: 0.9, weightDecay: 5e-4)
        let sync = GradientSync(store: store, group: world)
        let xs = (0..<4).map { Tensor.normal([batch, 1, 28, 28], seed: UInt64(100 + 10 * world.rank + $0)) }
        let ys: [[Int]] = (0..<4).map { b in
            var rng = RandomGenerator(seed: UInt64(200 + 10 * world.rank + b))
            return (0..<batch).map { _ in rng.int(below: 10) }
        }
        // The barrier before the allreduce separates waiting for the slower rank (load imbalance,
        // noisy neighbours) from the cost of the reduction itself.
        var allreduce = 0.0, waiting = 0.0
        var start = 0.0
        for i in 0..<(warmup + steps) {
            if i == warmup { world.barrier(); start = wallTime(); allreduce = 0; waiting = 0 }
            store.zeroGrad()
            let loss = crossEntropy(net(xs[i % 4]), labels: ys[i % 4])
            Tape.current.backward(loss)
            store.finalizeGradients()
            let t0 = wallTime()
            world.barrier()
            let t1 = wallTime()
            _ = sync.average(scalars: [Double(loss.scalar)])
            allreduce += wallTime() - t1
            waiting += t1 - t0
            sgd.step(lr: 0.05)
        }
        world.barrier()
        let elapsed = wallTime() - start
        let sums = world.allreduceSum([allreduce, waiting]).map { $0 / Double(world.size) }
        if world.rank == 0 {
            let sps = Double(batch * steps * world.size) / elapsed
            print(String(format: "{\"ranks\":%d,\"samples_per_s\":%.2f,\"step_ms\":%.3f,\"allreduce_ms\":%.4f,\"wait_ms\":%.4f}",
                         world.size, sps, 1000 * elapsed / Double(steps), 1000 * sums[0] / Double(steps), 1000 * sums[1] / Double(steps)))
        }
    }
}
