import Foundation
import XCTest

/// Codistillation across groups through one-sided MPI windows, with the real binary.
final class CodistillationTests: XCTestCase {
    /// Versions a group's leader logged for one peer, in order.
    func versions(_ output: String, group: Int, peer: Int) -> [Int] {
        output.split(separator: "\n").compactMap { line -> Int? in
            guard line.hasPrefix("[group \(group)] step "), let r = line.range(of: "peer group \(peer) snapshot version ") else { return nil }
            return Int(line[r.upperBound...].prefix(while: { $0.isNumber }))
        }
    }

    func churn(_ dir: String) throws -> (disagreement: Double, meanAbsDiff: Double) {
        let r = try Harness.run(ranks: 0, ["eval", dir + "/group-0/step-00000200.h5", dir + "/group-1/step-00000200.h5", "--churn", "--json"])
        XCTAssertEqual(r.status, 0, r.output)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let c = try XCTUnwrap(obj["churn"] as? [String: Double])
        return (c["disagreement"]!, c["mean_abs_prob_diff"]!)
    }

    /// Snapshots whose checksum does not match (fault injection: every publication corrupted) are
    /// refused and said so; training carries on without distillation and finishes.
    func testCorruptedSnapshotsAreRefused() throws {
        let dir = Harness.temporaryDirectory("corrupt-window")
        try Harness.writeTinyIDX(in: dir)
        let r = try Harness.run(ranks: 2, ["train", "--data", dir, "--model", "mlp", "--groups", "2", "--steps", "80",
                                           "--batch", "16", "--exchange-every", "10", "--burn-in", "10",
                                           "--log-every", "10", "--checkpoint-dir", dir + "/ck"],
                                environment: ["CODISTILL_FAULT_CORRUPT_SNAPSHOTS": "1"])
        XCTAssertEqual(r.status, 0, r.output)
        for (g, p) in [(0, 1), (1, 0)] {
            XCTAssert(r.stdout.contains("peer group \(p) snapshot refused (checksum mismatch"), r.output)
            XCTAssertEqual(versions(r.stdout, group: g, peer: p), [], "no corrupted snapshot may be taken")
            let csv = try String(contentsOfFile: dir + "/ck/group-\(g)/metrics.csv", encoding: .utf8).split(separator: "\n")
            let fields = { (line: Substring) in line.split(separator: ",", omittingEmptySubsequences: false) }
            let column = try XCTUnwrap(fields(csv[0]).firstIndex(of: "distill_loss"))
            for row in csv.dropFirst() { XCTAssertEqual(Double(fields(row)[column]), 0, String(row)) }
        }
    }

    /// 4 ranks, 2 groups of 2: peer versions advance, the distillation loss is non-zero after
    /// burn-in, and the groups' predictions agree more than without distillation (same seeds).
    func testExchangeAdvancesAndLowersChurn() throws {
        let dir = Harness.temporaryDirectory("codistill")
        try Harness.writeTinyIDX(in: dir, train: 1024, test: 512, bright: 95, dark: 70, noise: 110)
        let common = ["train", "--data", dir, "--model", "mlp", "--groups", "2", "--steps", "200", "--batch", "16",
                      "--exchange-every", "2", "--burn-in", "60", "--distill-weight", "1", "--log-every", "20"]
        let on = try Harness.run(ranks: 4, common + ["--checkpoint-dir", dir + "/on"], timeout: 180)
        XCTAssertEqual(on.status, 0, on.output)
        let off = try Harness.run(ranks: 4, common + ["--exchange", "none", "--checkpoint-dir", dir + "/off"], timeout: 180)
        XCTAssertEqual(off.status, 0, off.output)

        for (g, p) in [(0, 1), (1, 0)] {
            let v = versions(on.stdout, group: g, peer: p)
            XCTAssertGreaterThanOrEqual(v.count, 5, "group \(g) should log many fresh snapshots of group \(p): \(on.stdout)")
            // Each snapshot crosses the window with its publisher's health record.
            XCTAssert(on.stdout.split(separator: "\n").contains {
                $0.hasPrefix("[group \(g)] step ") && $0.contains("peer group \(p) snapshot version") && $0.contains("(its training loss ")
                    && $0.contains(", accuracy ") }, "no health record in group \(g)'s log: \(on.stdout)")
            XCTAssertEqual(v, v.sorted(), "versions only advance")
            XCTAssertEqual(Set(v).count, v.count, "each logged version is new")
            // The distillation loss column is positive after burn-in and zero before it.
            let csv = try String(contentsOfFile: dir + "/on/group-\(g)/metrics.csv", encoding: .utf8).split(separator: "\n")
            let header = csv[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let col = try XCTUnwrap(header.firstIndex(of: "distill_loss")), ageCol = try XCTUnwrap(header.firstIndex(of: "peer_age"))
            // Groups run at their own pace (4 ranks share 2 cores), so a group may pass burn-in
            // before its peer has published: distillation is on once a snapshot has arrived.
            var distilledRows = 0
            for row in csv.dropFirst() {
                let f = row.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
                let step = Int(f[0])!, distill = Double(f[col])!
                let age = try XCTUnwrap(Int(f[ageCol]), "peer age reported: \(row)")
                if step <= 60 { XCTAssertEqual(distill, 0, "no distillation during burn-in: \(row)") }
                if step > 80 && age >= 0 {
                    XCTAssertGreaterThan(distill, 0, "distillation after burn-in with a fresh snapshot: \(row)")
                    distilledRows += 1
                }
            }
            XCTAssertGreaterThanOrEqual(distilledRows, 1, "group \(g) distilled after burn-in")
        }
        let withDistill = try churn(dir + "/on"), without = try churn(dir + "/off")
        XCTAssertLessThan(withDistill.meanAbsDiff, without.meanAbsDiff,
                          "codistilled groups should agree more: \(withDistill) vs independent \(without)")
        print("churn codistilled \(withDistill), independent \(without)")
    }

    /// Any G dividing N: 3 groups of one rank in a ring, each following the previous one.
    /// The default burn-in is 20% of the run (exchanges every 10 steps of 100: the first at step
    /// 20, none before); a burn-in shorter than the exchange interval is warned about.
    func testDefaultBurnInIsAShareOfTheRunAndAShortOneIsWarnedAbout() throws {
        let dir = Harness.temporaryDirectory("burn-in")
        try Harness.writeTinyIDX(in: dir)
        let common = ["train", "--data", dir, "--model", "mlp", "--groups", "2", "--steps", "100", "--batch", "8",
                      "--exchange-every", "10", "--exchange-mode", "lockstep"]
        let byDefault = try Harness.run(ranks: 2, common + ["--checkpoint-dir", dir + "/default"])
        XCTAssertEqual(byDefault.status, 0, byDefault.output)
        XCTAssertEqual(versions(byDefault.stdout, group: 0, peer: 1).first, 1, byDefault.stdout)
        XCTAssert(byDefault.stdout.contains("[group 0] step 20: peer group 1 snapshot version 1 from its step 20"), byDefault.stdout)
        XCTAssertFalse(byDefault.output.contains("warning: --burn-in"), byDefault.output)
        let short = try Harness.run(ranks: 2, common + ["--burn-in", "4", "--checkpoint-dir", dir + "/short"])
        XCTAssertEqual(short.status, 0, short.output)
        XCTAssertEqual(short.output.components(separatedBy: "warning: --burn-in 4 is shorter than --exchange-every 10").count, 2,
                       "warned once: \(short.output)")
    }

    func testThreeGroupsInARing() throws {
        let dir = Harness.temporaryDirectory("ring")
        try Harness.writeTinyIDX(in: dir)
        let r = try Harness.run(ranks: 3, ["train", "--data", dir, "--model", "mlp", "--groups", "3", "--topology", "ring",
                                           "--steps", "30", "--batch", "8", "--exchange-every", "5", "--burn-in", "5", "--checkpoint-dir", dir + "/ck",
                                           // Lock-step: every group takes its predecessor's snapshots whatever the timing
                                           // (asynchronously, one of 3 groups on 2 cores could finish before reading any snapshot).
                                           "--exchange-mode", "lockstep"])
        XCTAssertEqual(r.status, 0, r.output)
        for g in 0..<3 {
            XCTAssertFalse(versions(r.stdout, group: g, peer: (g + 2) % 3).isEmpty, "group \(g) follows group \((g + 2) % 3): \(r.stdout)")
            XCTAssertTrue(versions(r.stdout, group: g, peer: (g + 1) % 3).isEmpty, "a ring reads one peer only")
            XCTAssert(r.stdout.contains("group \(g) test_acc="), r.output)
        }
    }
}
