import ArgumentParser
import Engine
import Foundation
import NN

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench",
        abstract: "Benchmarks (build with -c release: debug figures mean nothing).",
        subcommands: [BenchEngine.self, BenchScaling.self, BenchScalingWorker.self, BenchWindow.self])
}

/// Training throughput of one model on one thread, the figure `bench/compare_engine.py` sets
/// against PyTorch's. Same recipe as bench/torch_reference.py: 4 fixed random batches cycled,
/// SGD lr 0.05 momentum 0.9 weight decay 5e-4, cross-entropy, train mode.
struct BenchEngine: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "engine",
        abstract: "Training samples/s, GFLOP/s and peak memory of a model on one thread.")

    @Option(help: "Model to train: \(Models.names.joined(separator: ", ")).") var model = "cnn"
    @Option(help: "Batch size.") var batch = 128
    @Option(help: "Timed steps.") var steps = 50
    @Option(help: "Untimed warm-up steps.") var warmup = 5
    @Option(help: "BLAS threads.") var threads = 1
    @Option(help: "Input shape C,H,W (Fashion-MNIST by default).") var inputShape = "1,28,28"
    @Option(help: "Number of classes.") var classes = 10
    @Flag(help: "Print one JSON line (for bench/compare_engine.py).") var json = false
    @Flag(help: "Skip the SGEMM ceiling measurement (for instruction counts under valgrind, where its large GEMMs take minutes).") var noCeiling = false

    func validate() throws {
        guard batch >= 2 else { throw ValidationError("--batch must be at least 2 (BatchNorm needs a batch), got \(batch)") }
        guard steps >= 1, warmup >= 0 else { throw ValidationError("--steps must be >= 1 and --warmup >= 0") }
        guard threads >= 1 else { throw ValidationError("--threads must be >= 1") }
        guard parseShape(inputShape) != nil else {
            throw ValidationError("--input-shape must be three positive integers C,H,W, got '\(inputShape)'")
        }
    }

    func parseShape(_ s: String) -> [Int]? {
        let parts = s.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        return parts.count == 3 && parts.allSatisfy { $0 > 0 } ? parts : nil
    }

    func run() throws {
        BLAS.setThreads(threads)
        let shape = parseShape(inputShape)!
        let spec = ModelSpec(name: model, inputShape: shape, classes: classes)
        let net: Module
        do { net = try Models.make(spec) } catch { throw ValidationError("\(error)") }
        let store = ParameterStore(model: net, seed: 0)
        let trainingStep = TrainingStep(model: net, store: store, optimizer: SGD(parameters: store, momentum: 0.9, weightDecay: 5e-4))
        let xs = (0..<4).map { Tensor.normal([batch] + shape, seed: UInt64(100 + $0)) }
        let ys: [[Int]] = (0..<4).map { b in
            var rng = RandomGenerator(seed: UInt64(200 + b))
            return (0..<batch).map { _ in rng.int(below: classes) }
        }
        net.train()

        var lastLoss: Float = 0
        // The step `train` runs, minus the allreduce (one rank).
        func step(_ i: Int) throws {
            lastLoss = Float(try trainingStep.run(xs[i % 4], labels: ys[i % 4], lr: 0.05).loss)
        }
        for i in 0..<warmup { try step(i) }
        FlopCounter.reset()
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<steps { try step(warmup + i) }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let trainFLOPs = 3.0 * Double(FlopCounter.forwardFLOPs)
        let samplesPerSecond = Double(batch * steps) / seconds
        let gflops = trainFLOPs / seconds / 1e9
        let peakMiB = peakResidentMiB()
        let ceiling = noCeiling ? 0 : sgemmCeilingGFLOPs()

        if json {
            let fields: [(String, String)] = [
                ("system", "\"codistill\""), ("model", "\"\(model)\""), ("batch", "\(batch)"),
                ("threads", "\(threads)"), ("steps", "\(steps)"),
                ("samples_per_s", String(format: "%.2f", samplesPerSecond)),
                ("gflops", String(format: "%.3f", gflops)),
                ("peak_rss_mib", String(format: "%.1f", peakMiB)),
                ("sgemm_gflops", String(format: "%.2f", ceiling)),
                ("version", "\"\(codistillVersion)\""),
            ]
            print("{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}")
        } else {
            print(String(format: "codistill %@ %@: batch %d, %d thread(s), %d steps (+%d warm-up) in %.3f s -> "
                         + "%.1f samples/s, %.2f GFLOP/s (%.2f MFLOP/sample), peak RSS %.1f MiB, last loss %.4f; "
                         + "OpenBLAS SGEMM ceiling %.1f GFLOP/s",
                         codistillVersion, model, batch, threads, steps, warmup, seconds, samplesPerSecond, gflops,
                         trainFLOPs / Double(batch * steps) / 1e6, peakMiB, lastLoss, ceiling))
        }
    }
}

/// Single-thread SGEMM GFLOP/s at a square size where OpenBLAS reaches its peak: the ceiling
/// the engine's achieved GFLOP/s is read against.
func sgemmCeilingGFLOPs(size n: Int = 1024, repeats: Int = 6) -> Double {
    let a = Tensor.uniform([n, n], seed: 1), b = Tensor.uniform([n, n], seed: 2), c = Tensor(zeros: [n, n])
    sgemm(m: n, n: n, k: n, a: a.data, b: b.data, c: c.data)
    var best = Double.infinity
    for _ in 0..<repeats {
        let t0 = DispatchTime.now().uptimeNanoseconds
        sgemm(m: n, n: n, k: n, a: a.data, b: b.data, c: c.data)
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    return 2.0 * Double(n * n * n) / best / 1e9
}

/// Peak resident set size of this process so far (getrusage reports KiB on Linux).
func peakResidentMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

let codistillVersion = "0.1.0"
