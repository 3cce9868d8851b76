import ArgumentParser
import Cluster
import Engine
import Foundation
import NN
import Training

/// `codistill bench scaling`: samples/s of `cnn` training (synthetic Fashion-MNIST-shaped data,
/// batch per rank fixed) with 1 and 2 ranks, and the share of step time spent in the fused
/// allreduce.
///
/// Two methods:
/// - `interleaved` (default): one `mpirun -np 2` job alternates short blocks of steps: rank 0
///   training alone, rank 1 training alone (the idle rank sleeps, leaving its core free), then
///   both ranks training together with the allreduce. Both figures sample the same minutes of the
///   host, so a shared machine whose speed drifts (this one's per-step time moves between ~95
///   and ~240 ms within seconds) cannot favour either side.
/// - `runs`: separate `mpirun -np R` jobs per rank count, alternating, median of `--repeats`.
struct BenchScaling: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scaling",
        abstract: "Samples/s with 1 and 2 ranks (mpirun), and the time spent in allreduce.")
    @Option(help: "Model.") var model = "cnn"
    @Option(help: "Batch per rank.") var batch = 128
    @Option(help: "interleaved (1- and 2-rank blocks alternate in one job) or runs (separate jobs).") var method = "interleaved"
    @Option(help: "interleaved: cycles (each: a solo block per rank, then a 2-rank block).") var cycles = 12
    @Option(help: "interleaved: steps per block.") var block = 10
    @Option(help: "runs: timed steps per run.") var steps = 60
    @Option(help: "runs: rank counts to measure, comma-separated.") var ranks = "1,2"
    @Option(help: "runs: runs per rank count, alternating; the median is reported.") var repeats = 7
    @Option(help: "mpirun to use.") var mpirun = "mpirun"

    func run() throws {
        switch method {
        case "interleaved": try runInterleaved()
        case "runs": try runSeparate()
        default: throw ValidationError("--method must be interleaved or runs, got '\(method)'")
        }
    }

    func runInterleaved() throws {
        let o = try launch(ranks: 2, ["--interleaved", "--cycles", String(cycles), "--block", String(block)])
        print("\n| 1 rank samples/s | 2 ranks samples/s | speed-up | per-cycle speed-up (min / median / max) | 2-rank step ms | allreduce ms | allreduce share | waiting for slower rank ms |")
        print("|---:|---:|---:|---|---:|---:|---:|---:|")
        do {
            let d = { (k: String) in (o[k] as? Double) ?? 0 }
            print(String(format: "| %.1f | %.1f | %.2fx | %.2f / %.2f / %.2f | %.1f | %.2f | %.2f%% | %.2f |",
                         d("solo_samples_per_s"), d("samples_per_s"), d("speedup"),
                         d("cycle_speedup_min"), d("cycle_speedup_median"), d("cycle_speedup_max"),
                         d("step_ms"), d("allreduce_ms"), 100 * d("allreduce_ms") / max(d("step_ms"), 1e-9), d("wait_ms")))
        }
    }

    func runSeparate() throws {
        let counts = ranks.split(separator: ",").compactMap { Int($0) }
        var runs: [Int: [[String: Any]]] = [:]
        for _ in 0..<max(1, repeats) { for r in counts {
            runs[r, default: []].append(try launch(ranks: r, ["--steps", String(steps)]))
        } }
        // The run with the median throughput stands for each rank count.
        let rows = counts.map { r -> (Int, [String: Any]) in
            let sorted = runs[r]!.sorted { ($0["samples_per_s"] as! Double) < ($1["samples_per_s"] as! Double) }
            return (r, sorted[sorted.count / 2])
        }
        let base = (rows.first?.1["samples_per_s"] as? Double) ?? 1
        print("\n| ranks | samples/s | speed-up | step ms | allreduce ms | allreduce share | waiting for slower rank ms |")
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for (r, o) in rows {
            let d = { (k: String) in (o[k] as? Double) ?? 0 }
            print(String(format: "| %d | %.1f | %.2fx | %.1f | %.2f | %.2f%% | %.2f |", r, d("samples_per_s"), d("samples_per_s") / base,
                         d("step_ms"), d("allreduce_ms"), 100 * d("allreduce_ms") / max(d("step_ms"), 1e-9), d("wait_ms")))
        }
    }

    /// Runs one worker job and returns its JSON line (also echoed).
    func launch(ranks r: Int, _ extra: [String]) throws -> [String: Any] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [mpirun, "-np", String(r), "--bind-to", "core", CommandLine.arguments[0], "bench", "scaling-worker",
                       "--model", model, "--batch", String(batch)] + extra
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
              let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
            throw ValidationError("the \(r)-rank run failed (exit \(p.terminationStatus)); run it by hand: \(p.arguments!.joined(separator: " "))")
        }
        print(line)
        return obj
    }
}

struct BenchScalingWorker: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scaling-worker",
        abstract: "One rank of `bench scaling` (start with mpirun).", shouldDisplay: false)
    @Option var model = "cnn"
    @Option var batch = 128
    @Option var steps = 30
    @Option var warmup = 3
    @Flag(help: "Alternate solo blocks (one rank alone) and group blocks in this one job.") var interleaved = false
    @Option var cycles = 12
    @Option var block = 10
    @Option(help: "Write each rank's per-step samples, compute and wait times (ms) to PATH.rankN (diagnosis).") var trace: String?

    func run() throws {
        let world = MPIRuntime.start()
        defer { MPIRuntime.finish() }
        BLAS.setThreads(1)
        var bench = try ScalingBench(model: model, batch: batch, world: world, tracing: trace != nil)
        if interleaved {
            try bench.interleaved(cycles: cycles, block: block, warmup: warmup)
        } else {
            try bench.separate(steps: steps, warmup: warmup)
        }
        if let trace {
            try (["step samples compute_ms wait_ms"] + bench.traceLines).joined(separator: "\n")
                .write(toFile: "\(trace).rank\(world.rank)", atomically: true, encoding: .utf8)
        }
    }
}

/// The training steps `bench scaling` times: the cnn (or --model) on four fixed synthetic group
/// batches, cycled; each rank copies out its slice.
struct ScalingBench {
    let world: Communicator
    let batch: Int
    /// The step `train` runs, with the group's allreduce, and the same step of one rank alone
    /// (same model, store and optimizer).
    let groupStep: TrainingStep
    let soloStep: TrainingStep
    let xs: [Tensor]
    let ys: [[Int]]
    let sampleSize = 28 * 28
    /// Per-step lines for --trace; formatted only when tracing (not in the timed loop otherwise).
    let tracing: Bool
    var traceLines: [String] = []
    var stepIndex = 0
    /// CODISTILL_SPIN_WAIT=1 measures the spinning wait (MPI's own) for comparison.
    let spinWhileWaiting = ProcessInfo.processInfo.environment["CODISTILL_SPIN_WAIT"] == "1"

    init(model: String, batch: Int, world: Communicator, tracing: Bool) throws {
        self.world = world
        self.tracing = tracing
        self.batch = batch
        let net = try Models.make(ModelSpec(name: model, inputShape: [1, 28, 28], classes: 10))
        let store = ParameterStore(model: net, seed: 0)
        let sgd = SGD(parameters: store, momentum: 0.9, weightDecay: 5e-4)
        let sync = GradientSync(store: store, group: world)
        sync.sleepWhileWaiting = !spinWhileWaiting
        groupStep = TrainingStep(model: net, store: store, optimizer: sgd, reduction: sync)
        soloStep = TrainingStep(model: net, store: store, optimizer: sgd)
        let groupBatch = batch * world.size
        xs = (0..<4).map { Tensor.normal([groupBatch, 1, 28, 28], seed: UInt64(100 + $0)) }
        ys = (0..<4).map { b in
            var rng = RandomGenerator(seed: UInt64(200 + b))
            return (0..<groupBatch).map { _ in rng.int(below: 10) }
        }
    }

    /// One step. `together`: the group step (this rank's slice of the group batch, then the
    /// allreduce); otherwise this rank alone on `batch` samples. Returns (samples, compute s, wait s, allreduce s).
    mutating func step(together: Bool) -> (samples: Int, compute: Double, wait: Double, allreduce: Double) {
        let slice = together ? (world.rank * batch)..<((world.rank + 1) * batch) : 0..<batch
        let images = Tensor(uninitialized: [slice.count, 1, 28, 28])
        let source = xs[stepIndex % 4], labels = Array(ys[stepIndex % 4][slice])
        images.data.update(from: source.data + slice.lowerBound * sampleSize, count: slice.count * sampleSize)
        stepIndex += 1
        // Random data with a fixed learning rate stays finite; a NaN here is an engine bug.
        let s = try! (together ? groupStep : soloStep).run(images, labels: labels, lr: 0.05)
        if tracing {
            traceLines.append(String(format: "%d %d %.3f %.3f", stepIndex, slice.count, 1000 * s.computeSeconds, 1000 * s.waitSeconds))
        }
        return (slice.count, s.computeSeconds, s.waitSeconds, s.reduceSeconds)
    }

    /// `count` group steps; returns the seconds spent in the allreduce and waiting for the slower rank.
    mutating func groupSteps(_ count: Int) -> (allreduce: Double, wait: Double) {
        var allreduce = 0.0, wait = 0.0
        for _ in 0..<count {
            let s = step(together: true)
            allreduce += s.allreduce; wait += s.wait
        }
        return (allreduce, wait)
    }

    /// Separate-jobs method: `steps` group steps on every rank.
    mutating func separate(steps: Int, warmup: Int) throws {
        for _ in 0..<warmup { _ = step(together: true) }
        world.barrier()
        let start = monotonicSeconds()
        let (allreduce, waiting) = groupSteps(steps)
        world.barrier()
        let elapsed = monotonicSeconds() - start
        let sums = world.allreduceSum([allreduce, waiting]).map { $0 / Double(world.size) }
        if world.rank == 0 {
            let sps = Double(batch * steps * world.size) / elapsed
            print(String(format: "{\"ranks\":%d,\"samples_per_s\":%.2f,\"step_ms\":%.3f,\"allreduce_ms\":%.4f,\"wait_ms\":%.4f}",
                         world.size, sps, 1000 * elapsed / Double(steps),
                         1000 * sums[0] / Double(steps), 1000 * sums[1] / Double(steps)))
        }
    }

    /// Interleaved method: per cycle, each rank trains `block` steps alone while the others sleep,
    /// then all train `block` steps together. Cycle 0 is warm-up.
    mutating func interleaved(cycles: Int, block: Int, warmup: Int) throws {
        for _ in 0..<warmup { _ = step(together: true); _ = step(together: false) }
        var soloSeconds = [Double](), groupSeconds = [Double]()
        var allreduce = 0.0, waiting = 0.0
        for cycle in 0...cycles {
            var solo = 0.0
            for r in 0..<world.size {
                if world.rank == r {
                    let t = monotonicSeconds()
                    for _ in 0..<block { _ = step(together: false) }
                    solo += monotonicSeconds() - t
                }
                world.sleepingBarrier()
            }
            world.barrier()
            let t = monotonicSeconds()
            let (ar, wt) = groupSteps(block)
            world.barrier()
            let together = monotonicSeconds() - t
            if cycle == 0 { continue }
            // Every rank ran one solo block: the cycle's mean solo block time.
            soloSeconds.append(world.allreduceSum([solo])[0] / Double(world.size))
            groupSeconds.append(together)
            let sums = world.allreduceSum([ar, wt])
            allreduce += sums[0] / Double(world.size); waiting += sums[1] / Double(world.size)
        }
        guard world.rank == 0 else { return }
        let blockSamples = Double(block * batch)
        let soloRate = blockSamples * Double(cycles) / soloSeconds.reduce(0, +)
        let groupRate = blockSamples * Double(world.size) * Double(cycles) / groupSeconds.reduce(0, +)
        let perCycle = zip(soloSeconds, groupSeconds).map { Double(world.size) * $0 / $1 }.sorted()
        let steps = Double(cycles * block)
        print(String(format: "{\"ranks\":%d,\"method\":\"interleaved\",\"solo_samples_per_s\":%.2f,\"samples_per_s\":%.2f,\"speedup\":%.4f,\"cycle_speedup_min\":%.3f,\"cycle_speedup_median\":%.3f,\"cycle_speedup_max\":%.3f,\"step_ms\":%.3f,\"allreduce_ms\":%.4f,\"wait_ms\":%.4f}",
                     world.size, soloRate, groupRate, groupRate / soloRate,
                     perCycle.first!, perCycle[perCycle.count / 2], perCycle.last!,
                     1000 * groupSeconds.reduce(0, +) / steps, 1000 * allreduce / steps, 1000 * waiting / steps))
    }
}
