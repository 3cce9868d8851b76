import Engine
import Foundation
import NN

/// One line of a group's metrics file.
public struct MetricsRow {
    public var step: Int
    public var epoch: Double
    public var time: Double
    public var loss: Double
    public var trainAccuracy: Double
    public var lr: Double
    public var testLoss: Double?
    public var testAccuracy: Double?
    public var samplesPerSecond: Double
    public var allreduceSeconds: Double
    // Codistillation (nil with one group).
    public var distillLoss: Double? = nil
    public var peerAge: Int? = nil
    public var exchangeSeconds: Double? = nil
    public var peerForwardSeconds: Double? = nil
}

/// The running sums between two metrics rows: training loss and accuracy, throughput, time in
/// the allreduce, and the distillation term when codistillation is on.
struct MetricsWindow {
    var steps = 0, lossSum = 0.0, correct = 0, samples = 0
    var allreduceSeconds = 0.0, distillSum = 0.0
    var start = monotonicSeconds()

    mutating func add(_ s: StepStatistics) {
        steps += 1
        lossSum += s.loss; correct += s.correct; samples += s.samples
        allreduceSeconds += s.waitSeconds + s.reduceSeconds
        distillSum += s.extra ?? 0
    }

    /// The row for `step`, then a fresh window. `codistillation`: its metrics since the last row.
    mutating func close(step: Int, epoch: Double, lr: Float, evaluation: (loss: Double, accuracy: Double)?,
                        codistillation: (peerAge: Int, exchangeSeconds: Double, peerForwardSeconds: Double)?) -> MetricsRow {
        let elapsed = monotonicSeconds() - start
        let row = MetricsRow(step: step, epoch: epoch, time: Date().timeIntervalSince1970,
                             loss: lossSum / Double(max(1, steps)),
                             trainAccuracy: samples > 0 ? Double(correct) / Double(samples) : 0, lr: Double(lr),
                             testLoss: evaluation?.loss, testAccuracy: evaluation?.accuracy,
                             samplesPerSecond: Double(samples) / max(elapsed, 1e-9),
                             allreduceSeconds: allreduceSeconds,
                             distillLoss: codistillation == nil ? nil : distillSum / Double(max(1, steps)),
                             peerAge: codistillation?.peerAge, exchangeSeconds: codistillation?.exchangeSeconds,
                             peerForwardSeconds: codistillation?.peerForwardSeconds)
        self = MetricsWindow()
        return row
    }
}

/// Appends rows as CSV (header first) or JSON Lines (path ending in .jsonl), flushed per row so a
/// killed job keeps every line it reported.
final class MetricsWriter {
    let handle: FileHandle
    let jsonLines: Bool
    static let columns = ["step", "epoch", "time", "loss", "train_acc", "lr", "test_loss", "test_acc", "samples_per_s", "allreduce_s",
                          "distill_loss", "peer_age", "exchange_s", "peer_forward_s"]

    init(path: String, resume: Bool) throws {
        // Not NSString.deletingLastPathComponent: Foundation traps on a one-character name
        // (`--metrics 0` crashed; OptionValuesTests).
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !dir.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                let reason = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? Error)?.localizedDescription
                    ?? error.localizedDescription
                throw TrainingError("cannot create the folder of the metrics file \(path) (\(reason)): pass a writable --metrics path or --checkpoint-dir")
            }
        }
        jsonLines = path.hasSuffix(".jsonl")
        let exists = FileManager.default.fileExists(atPath: path)
        if !exists || !resume {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw TrainingError("cannot create the metrics file \(path): check that the directory is writable or pass --metrics")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw TrainingError("cannot open the metrics file \(path) for writing: check permissions or pass --metrics")
        }
        handle = h
        handle.seekToEndOfFile()
        if (!exists || !resume) && !jsonLines { write(line: Self.columns.joined(separator: ",")) }
    }

    func write(line: String) { handle.write(Data((line + "\n").utf8)) }

    func write(_ r: MetricsRow) {
        func f(_ v: Double?) -> String { v.map { String(format: "%.6g", $0) } ?? "" }
        let values = [String(r.step), f(r.epoch), String(format: "%.3f", r.time), f(r.loss), f(r.trainAccuracy), f(r.lr),
                      f(r.testLoss), f(r.testAccuracy), f(r.samplesPerSecond), f(r.allreduceSeconds),
                      f(r.distillLoss), r.peerAge.map(String.init) ?? "", f(r.exchangeSeconds), f(r.peerForwardSeconds)]
        if jsonLines {
            let pairs = zip(Self.columns, values).filter { !$0.1.isEmpty }.map { "\"\($0.0)\":\($0.1)" }
            write(line: "{" + pairs.joined(separator: ",") + "}")
        } else {
            write(line: values.joined(separator: ","))
        }
    }
}

/// Rank 0's console output: an updating line on a terminal, plain periodic lines otherwise
/// (batch jobs, log files). Under mpirun a rank's stdout is a pseudo-terminal even when the job's
/// output goes to a file, so there the updating line is used only when CODISTILL_PROGRESS=bar.
final class Progress {
    let enabled: Bool, total: Int, logEvery: Int
    let log: (String) -> Void
    let prefix: String
    let tty: Bool = {
        let env = ProcessInfo.processInfo.environment
        if let mode = env["CODISTILL_PROGRESS"] { return mode == "bar" }
        return isatty(STDOUT_FILENO) != 0 && env["OMPI_COMM_WORLD_SIZE"] == nil && env["PMI_RANK"] == nil
    }()
    let start = Date()

    init(enabled: Bool, total: Int, logEvery: Int, log: @escaping (String) -> Void, prefix: String = "") {
        self.enabled = enabled; self.total = total; self.logEvery = logEvery; self.log = log; self.prefix = prefix
    }

    func report(_ r: MetricsRow, group: Int) {
        guard enabled else { return }
        let elapsed = Date().timeIntervalSince(start)
        let eta = r.step > 0 ? elapsed / Double(r.step) * Double(total - r.step) : 0
        var line = String(format: "step %d/%d epoch %.2f loss %.4f train_acc %.2f%% lr %.4g %.0f samples/s eta %@",
                          r.step, total, r.epoch, r.loss, 100 * r.trainAccuracy, r.lr, r.samplesPerSecond, formatDuration(eta))
        if let acc = r.testAccuracy { line += String(format: " test_acc %.2f%%", 100 * acc) }
        if let d = r.distillLoss { line += String(format: " distill %.4f peer_age %d", d, r.peerAge ?? -1) }
        line = prefix + line
        if tty {
            print("\r\u{1B}[K" + line, terminator: r.step == total ? "\n" : "")
            fflush(stdout)
        } else {
            log(line)
        }
    }
}

func formatDuration(_ s: Double) -> String {
    let t = Int(s.rounded())
    return t >= 3600 ? String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) : String(format: "%dm%02ds", t / 60, t % 60)
}

/// SIGTERM / SIGUSR1 (SLURM preemption, --signal) ask for a checkpoint and a clean stop at the
/// next step boundary; the flag travels in the group's allreduce so all ranks stop together.
public enum StopSignal {
    nonisolated(unsafe) static var flag: sig_atomic_t = 0
    public static var requested: Bool { flag != 0 }
    public static func install() {
        signal(SIGTERM) { _ in StopSignal.flag = 1 }
        signal(SIGUSR1) { _ in StopSignal.flag = 1 }
        // A log reader that went away (mpirun's output forwarding closing as it shuts the job
        // down, `| head`) must not kill a run mid-checkpoint: writes to it just fail.
        signal(SIGPIPE, SIG_IGN)
    }
}
