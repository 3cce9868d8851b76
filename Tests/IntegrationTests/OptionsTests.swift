import Foundation
import XCTest

/// The `train` options as a user meets them: help with defaults, experiment files under flags,
/// and an evaluation set from another file.
final class OptionsTests: XCTestCase {
    func testHelpShowsEveryDefaultAndTheChoices() throws {
        let r = try Harness.run(ranks: 0, ["train", "--help"])
        XCTAssertEqual(r.status, 0, r.output)
        // Help wraps at 80 columns: compare with runs of whitespace as one space.
        let text = r.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for needle in ["--lr <lr>", "(default: 0.05)", "(default: cosine)", "(values: sgd, adam, adamw)", "(values: rma, files, none)",
                       "--test-data", "--no-normalize", "(default: runs/default)"] {
            XCTAssert(text.contains(needle), "train --help should show '\(needle)': \(r.stdout)")
        }
        // Every option line of the training options carries its default.
        let section = r.stdout.components(separatedBy: "TRAINING OPTIONS:").last!.components(separatedBy: "\nOPTIONS:").first!
        var entries: [String] = []
        for line in section.split(separator: "\n") {
            if line.hasPrefix("  --") {
                entries.append(String(line))
            } else if !entries.isEmpty {
                entries[entries.count - 1] += " " + line.trimmingCharacters(in: .whitespaces)
            }
        }
        XCTAssertGreaterThan(entries.count, 30)
        for entry in entries { XCTAssert(entry.contains("(default: "), "no default shown for --\(entry)") }

        let synth = try Harness.run(ranks: 0, ["synth", "--help"])
        XCTAssertEqual(synth.status, 0, synth.output)
        XCTAssert(synth.stdout.contains("(default: 32)"), "generator width default: \(synth.stdout)")
    }

    func testBadEnumValueIsOneMessageListingTheChoices() throws {
        let r = try Harness.run(ranks: 2, ["train", "--optimizer", "lamb", "--steps", "1"], timeout: 60)
        XCTAssertNotEqual(r.status, 0, r.output)
        for needle in ["lamb", "sgd", "adam", "adamw"] { XCTAssert(r.stderr.contains(needle), r.output) }
        XCTAssertEqual(r.stderr.components(separatedBy: "codistill: error:").count - 1, 1, "one message for two ranks: \(r.stderr)")
    }

    func testFlagsOverrideTheExperimentFile() throws {
        let dir = Harness.temporaryDirectory("options-file")
        try Harness.writeTinyIDX(in: dir)
        let file = dir + "/exp.toml"
        try """
            model = "mlp"
            data = "\(dir)"
            [optimizer]
            lr = 0.01
            batch = 8
            [codistillation]
            burn_in = 3
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let r = try Harness.run(ranks: 2, ["train", "--config", file, "--lr", "0.02", "--steps", "4", "--checkpoint-dir", dir + "/ck"])
        XCTAssertEqual(r.status, 0, r.output)
        let inspect = try Harness.run(ranks: 0, ["inspect", dir + "/ck/group-0/step-00000004.h5", "--json"])
        XCTAssertEqual(inspect.status, 0, inspect.output)
        for needle in ["\\\"lr\\\":0.02", "\\\"batch\\\":8", "\\\"burnIn\\\":3", "\\\"model\\\":\\\"mlp\\\""] {
            XCTAssert(inspect.stdout.contains(needle) || inspect.stdout.contains(needle.replacingOccurrences(of: "\\", with: "")),
                      "stored config should have \(needle): \(inspect.stdout)")
        }

        try "[optimizer]\nlearning_rate = 0.1\n".write(toFile: file, atomically: true, encoding: .utf8)
        let bad = try Harness.run(ranks: 2, ["train", "--config", file, "--steps", "1"], timeout: 60)
        XCTAssertNotEqual(bad.status, 0, bad.output)
        XCTAssert(bad.stderr.contains("unknown key 'learning_rate'") && bad.stderr.contains("did you mean 'lr'?"), bad.output)
    }

    func testTestDataFromAnotherFile() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/h5copy") else { throw XCTSkip("needs h5copy (hdf5-tools)") }
        let dir = Harness.temporaryDirectory("options-testdata")
        try Harness.writeTinyIDX(in: dir)
        let full = dir + "/full.h5", single = dir + "/train-only.h5"
        XCTAssertEqual(try Harness.run(ranks: 0, ["data", "convert", dir, full]).status, 0)
        // A single-split file: the training split at the top level.
        for name in ["images", "labels"] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/h5copy")
            p.arguments = ["-i", full, "-o", single, "-s", "/train/\(name)", "-d", "/\(name)"]
            try p.run(); p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0)
        }
        let args = ["train", "--data", single, "--model", "mlp", "--steps", "4", "--batch", "8"]
        let alone = try Harness.run(ranks: 2, args + ["--checkpoint-dir", dir + "/a"])
        XCTAssertEqual(alone.status, 0, alone.output)
        XCTAssertEqual(alone.stdout.components(separatedBy: "warning: the test set is the training set").count - 1, 1,
                       "one warning, from rank 0: \(alone.output)")

        let heldOut = try Harness.run(ranks: 2, args + ["--test-data", full, "--checkpoint-dir", dir + "/b"])
        XCTAssertEqual(heldOut.status, 0, heldOut.output)
        XCTAssertFalse(heldOut.output.contains("warning: the test set"), heldOut.output)
        XCTAssert(heldOut.stdout.contains("test_acc="), heldOut.output)
        let inspect = try Harness.run(ranks: 0, ["inspect", dir + "/b/group-0/step-00000004.h5", "--json"])
        XCTAssert(inspect.stdout.contains("full.h5"), "the stored config names the test file: \(inspect.stdout)")
    }
}
