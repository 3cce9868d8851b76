import Foundation
import XCTest

/// Runs one reader over mutated inputs and counts the outcomes. Every input must either load or
/// throw: a crash or a precondition failure ends the test process (which fails the suite, the
/// point of fuzzing in process), and a read slower than `slowRead` fails the test, as a hang or
/// an allocation sized by a corrupt header would.
struct Campaign {
    let name: String
    let iterations: Int
    let seed: UInt64
    /// A hang, not a speed bound: a valid seed reads in milliseconds (the slowest mutated read
    /// alone: 0.016 s), but on a host busy with a build one read took 13 s of wall time.
    var slowRead: Double = 60

    private(set) var loaded = 0
    private(set) var rejected = 0
    private(set) var slowest = 0.0
    /// The messages seen, counted, so the summary can show the readers' most frequent complaints.
    private(set) var messages: [String: Int] = [:]

    init(_ name: String, iterations: Int = FuzzBudget.iterations, seed: UInt64 = FuzzBudget.seed) {
        self.name = name; self.iterations = iterations; self.seed = seed
    }

    /// `input(i, rng)` writes the i-th mutated input and returns a description of it for failure
    /// messages; `read` reads it.
    mutating func run(input: (Int, inout SplitMix64) throws -> String, read: () throws -> Void,
                      file: StaticString = #filePath, line: UInt = #line) rethrows {
        // One stream per reader and seed: adding a reader does not change another's inputs.
        var rng = SplitMix64(seed: seed ^ UInt64(truncatingIfNeeded: name.hashValueStable))
        for i in 0..<iterations {
            let what = try input(i, &rng)
            if Self.trace {
                // Before the read: when it crashes, the last line names the input.
                print("fuzz \(name) input \(i): \(what)")
                fflush(stdout)
            }
            let start = Date()
            do {
                try read()
                loaded += 1
            } catch {
                rejected += 1
                let text = "\(error)"
                XCTAssertFalse(text.isEmpty, "\(name) input \(i) (\(what)): an error without a message", file: file, line: line)
                // An input the reader did not foresee, refused only by a later stage's consistency check.
                XCTAssertFalse(text.contains("this is a bug"), "\(name) input \(i) (\(what)): \(text)", file: file, line: line)
                messages[Self.shape(of: text), default: 0] += 1
            }
            let seconds = Date().timeIntervalSince(start)
            slowest = max(slowest, seconds)
            XCTAssertLessThan(seconds, slowRead, "\(name) input \(i) (\(what)) took \(seconds) s to read", file: file, line: line)
        }
        print("fuzz \(name): \(iterations) inputs, \(rejected) rejected with an error, \(loaded) loaded, 0 crashes (seed \(seed)); "
              + String(format: "slowest read %.3f s", slowest))
        if ProcessInfo.processInfo.environment["CODISTILL_FUZZ_VERBOSE"] == "1" {
            for (m, n) in messages.sorted(by: { $0.value > $1.value }).prefix(12) { print("  \(n) x \(m)") }
        }
        XCTAssertEqual(loaded + rejected, iterations, file: file, line: line)
    }

    /// CODISTILL_FUZZ_TRACE=1 prints every input before it is read (to find the one that crashed).
    static let trace = ProcessInfo.processInfo.environment["CODISTILL_FUZZ_TRACE"] == "1"

    /// A message with its numbers and paths blanked, so messages of one kind count together.
    static func shape(of message: String) -> String {
        let noPaths = message.replacingOccurrences(of: #"/[^\s:,;)']+"#, with: "PATH", options: .regularExpression)
        return String(noPaths.replacingOccurrences(of: #"-?\d+"#, with: "N", options: .regularExpression).prefix(160))
    }
}

extension String {
    /// FNV-1a: unlike `hashValue`, the same in every process.
    var hashValueStable: UInt64 {
        utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 }
    }
}
