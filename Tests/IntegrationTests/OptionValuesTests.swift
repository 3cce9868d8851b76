import Foundation
import XCTest

/// Every option of `train`, `synth` and `eval`, read from each command's --help (so a new option
/// is tried without being listed here), given out-of-range and nonsense values. Each run must
/// either stop with one "codistill: error:" message that names the option (or the value, for a
/// path), or, when the value is legitimately valid, run to its end: never a signal, a timeout or
/// a "Fatal error". Accepted values run for real on a tiny dataset, one step.
final class OptionValuesTests: XCTestCase {
    static let values = ["-1", "0", "1e30", "nan", "inf", "", "abc"]

    /// The options that take a value (`--name <value>`), from the command's help; flags take none.
    static func options(of command: String) throws -> [String] {
        let help = try Harness.run(ranks: 0, [command, "--help"])
        XCTAssertEqual(help.status, 0, help.output)
        let names = help.stdout.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(separator: " ")
            guard line.hasPrefix("  --"), words.count >= 2, words[1].hasPrefix("<") else { return nil }
            return String(words[0].dropFirst(2))
        }
        return Array(Set(names)).sorted()
    }

    struct Outcome { var option: String; var value: String; var accepted: Bool }

    /// Runs `args(option, value)` for every option of `command` and value, a few at a time (most
    /// runs wait for MPI's start-up, not the CPU), and checks each result.
    /// Each run has its own working directory in `dir`: a relative path given as a value ("abc",
    /// "0") is created there, not in the repository, and no two runs share one.
    func tryEveryValue(_ command: String, in dir: String, _ args: @escaping (String, String) -> [String]) throws -> [Outcome] {
        let options = try Self.options(of: command)
        XCTAssertFalse(options.isEmpty, "no options found in \(command) --help")
        let cases = options.flatMap { o in Self.values.map { (o, $0) } }
        var results = [Harness.Result?](repeating: nil, count: cases.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            for i in stride(from: worker, to: cases.count, by: 4) {
                let cwd = dir + "/run-\(i)"
                try? FileManager.default.createDirectory(atPath: cwd, withIntermediateDirectories: true)
                let r = try? Harness.run(ranks: 0, args(cases[i].0, cases[i].1), timeout: 60, cwd: cwd)
                lock.lock(); results[i] = r; lock.unlock()
            }
        }
        var outcomes: [Outcome] = []
        for (i, (option, value)) in cases.enumerated() {
            let what = "\(command) --\(option) '\(value)'"
            guard let r = results[i] else { XCTFail("\(what): could not run"); continue }
            XCTAssertFalse(r.signalled, "\(what) crashed (signal \(r.status)): \(r.output)")
            XCTAssertLessThan(r.status, 124, "\(what) crashed or hung (status \(r.status)): \(r.output)")
            XCTAssertFalse(r.output.contains("Fatal error") || r.output.contains("Program crashed"), "\(what): \(r.output)")
            if r.status == 0 {
                outcomes.append(Outcome(option: option, value: value, accepted: true))
                continue
            }
            let errors = r.stderr.components(separatedBy: "codistill: error:").count - 1
            XCTAssertEqual(errors, 1, "\(what): one error message expected: \(r.output)")
            let message = r.stderr.components(separatedBy: "codistill: error:").last ?? ""
            let camel = option.split(separator: "-").enumerated().map { $0 == 0 ? String($1) : $1.capitalized }.joined()
            // A path is named by itself ("abc does not exist", "'0'"), not by the option.
            let spellings = [option, option.replacingOccurrences(of: "-", with: "_"), camel] + (value.isEmpty ? [] : [" \(value) ", " \(value):", "'\(value)'"])
            XCTAssert(spellings.contains { message.contains($0) }, "\(what): the message should name the option: \(r.stderr)")
            outcomes.append(Outcome(option: option, value: value, accepted: false))
        }
        return outcomes
    }

    /// What is accepted, "option value" per entry: the test fails when this changes, so a newly
    /// accepted value is looked at (legitimately valid?) rather than slipping through.
    func assertAccepted(_ outcomes: [Outcome], _ expected: Set<String>, file: StaticString = #filePath, line: UInt = #line) {
        let accepted = Set(outcomes.filter(\.accepted).map { "\($0.option) \($0.value)" })
        XCTAssertEqual(accepted.subtracting(expected).sorted(), [], "accepted, not expected (all accepted: \(accepted.sorted()))", file: file, line: line)
        XCTAssertEqual(expected.subtracting(accepted).sorted(), [], "expected to be accepted, refused", file: file, line: line)
        let refused = outcomes.filter { !$0.accepted }.count
        print("options \(outcomes.map(\.option).uniqued.count), values tried \(outcomes.count), accepted \(accepted.count), refused \(refused)")
    }

    func testTrain() throws {
        let dir = Harness.temporaryDirectory("option-values-train")
        try Harness.writeTinyIDX(in: dir, train: 64, test: 16)
        // Relative outputs: each run writes into its own working directory (four run at once, and
        // one run's checkpoint clean-up must not meet another's file being written).
        let base = ["--data", dir, "--model", "mlp", "--batch", "8", "--steps", "1", "--checkpoint-dir", "ck",
                    "--log-every", "1", "--metrics", "m-{group}.csv"]
        // --config and --resume are files: a nonsense value is a missing file, named in the message.
        let outcomes = try tryEveryValue("train", in: dir) { option, value in
            // An option given twice: ArgumentParser keeps the last one, the value under test.
            // `--lr=-1`, as `--lr -1` would read "-1" as an option.
            ["train"] + base + ["--\(option)=\(value)"]
        }
        let names = ["checkpoint-dir", "metrics", "peer-dir", "peer-name"]
        assertAccepted(outcomes, Set([
            // Counts where 0 means "off", "none" or "at the end only", and the seed.
            "burn-in 0", "checkpoint-every 0", "consistency-every 0", "distill-ramp 0", "eval-every 0", "keep-last 0",
            "max-peer-age 0", "random-crop-padding 0", "seed 0", "warmup-steps 0",
            // -1: the automatic burn-in (its default).
            "burn-in -1",
            // --steps 0: --epochs decides; --epochs 0: the --steps 1 given.
            "steps 0", "epochs 0",
            // Factors and rates at the edge of their range, or large but finite.
            "distill-weight 0", "distill-weight 1e30", "label-smoothing 0", "momentum 0", "weight-decay 0", "weight-decay 1e30",
            "lr 1e30", "step-gamma 1e30", "temperature 1e30",
            "weight-decay-after-burn-in -1", "weight-decay-after-burn-in 0", "weight-decay-after-burn-in 1e30",
            // (`--metrics=`, an empty value, is refused by ArgumentParser as a missing value.)
        ]).union(names.flatMap { n in ["0", "1e30", "nan", "inf", "abc", "-1"].map { "\(n) \($0)" } }))
    }

    /// A teacher for synth and a checkpoint for eval: one step of the MLP on the tiny dataset.
    func trainedCheckpoint(_ name: String) throws -> (dir: String, checkpoint: String) {
        let dir = Harness.temporaryDirectory(name)
        try Harness.writeTinyIDX(in: dir, train: 64, test: 16)
        let r = try Harness.run(ranks: 0, ["train", "--data", dir, "--model", "mlp", "--batch", "8", "--steps", "1",
                                           "--checkpoint-dir", dir + "/ck"])
        XCTAssertEqual(r.status, 0, r.output)
        return (dir, dir + "/ck/group-0/step-00000001.h5")
    }

    func testSynth() throws {
        let (dir, teacher) = try trainedCheckpoint("option-values-synth")
        let base = ["--teacher", teacher, "--data", dir, "--student", "mlp", "--rounds", "1", "--steps", "1", "--batch", "4",
                    "--kd-steps", "1", "--kd-batch", "4", "--generator-width", "4", "--eval-every", "1", "--out", "s.h5"]
        let outcomes = try tryEveryValue("synth", in: dir) { option, value in ["synth"] + base + ["--\(option)=\(value)"] }
        assertAccepted(outcomes, Set([
            // 0 turns a loss term, the student's training or the adversarial warm-up off; the seed.
            "adv-warmup 0", "adv-weight 0", "bn-weight 0", "ce-weight 0", "kd-steps 0", "seed 0",
            // Large but finite rates, weights and temperatures.
            "adv-weight 1e30", "bn-weight 1e30", "ce-weight 1e30", "latent-lr 1e30", "lr 1e30", "synthesis-lr 1e30", "temperature 1e30",
        ]).union(["metrics", "out"].flatMap { n in ["0", "1e30", "nan", "inf", "abc", "-1"].map { "\(n) \($0)" } }))
    }

    func testEval() throws {
        let (dir, checkpoint) = try trainedCheckpoint("option-values-eval")
        let outcomes = try tryEveryValue("eval", in: dir) { option, value in ["eval", checkpoint, "--data", dir, "--\(option)=\(value)"] }
        assertAccepted(outcomes, [])
    }
}

private extension Array where Element: Hashable {
    var uniqued: [Element] { Array(Set(self)) }
}
