import Cluster
import Data
import Foundation
import Inference
import NN
import RunConfig
import XCTest
@testable import Training

/// Two codistilling trainers in one process, on the in-memory snapshot transport: each is a
/// one-rank job of one group, as jobs sharing a peer directory are, and the test advances them
/// in turn, one step each. No mpirun; the whole codistillation path of the trainer runs.
final class InProcessCodistillationTests: XCTestCase {
    static let fashionMNIST = "/usr/share/datasets/fashion-mnist"
    /// The first 3,000 training and 1,000 test images of Fashion-MNIST as one HDF5 file: real
    /// data, small enough for a debug build to train on in seconds.
    nonisolated(unsafe) static var data = ""
    var directory = ""

    override class func setUp() {
        guard FileManager.default.fileExists(atPath: fashionMNIST) else { return }
        func head(_ split: Split, _ n: Int) throws -> Dataset {
            let d = try DatasetLoader.load(path: fashionMNIST, split: split)
            var pixels = [Float](repeating: 0, count: n * d.sampleSize)
            pixels.withUnsafeMutableBufferPointer { p in for i in 0..<n { d.copySample(i, into: p.baseAddress! + i * d.sampleSize) } }
            return Dataset(name: d.name, sampleShape: d.sampleShape, floatPixels: pixels, labels: Array(d.labels[0..<n]), classes: d.classes)
        }
        data = NSTemporaryDirectory() + "codistill-inprocess-fashion-mnist-head-\(getpid()).h5"
        do { try HDF5DatasetWriter.write(train: try head(.train, 3000), test: try head(.test, 1000), to: data) } catch { data = "" }
    }

    override class func tearDown() { if !data.isEmpty { try? FileManager.default.removeItem(atPath: data) } }

    override func setUpWithError() throws {
        try XCTSkipUnless(!Self.data.isEmpty, "Fashion-MNIST is not installed (scripts/setup.sh)")
        directory = NSTemporaryDirectory() + "codistill-inprocess-\(UUID().uuidString)"
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    struct Job {
        let name: String
        let run: TrainingRun
        var log: [String]
        let metricsPath: String
    }

    func config(name: String, seed: UInt64, steps: Int, distill: Bool) -> TrainConfig {
        var c = TrainConfig()
        c.model = "mlp"
        c.data = Self.data
        c.batch = 32
        c.steps = steps
        c.lr = 0.05
        c.seed = seed
        c.checkpointDir = "\(directory)/\(name)"
        c.logEvery = 10
        c.exchange = distill ? .files : .none
        c.peerDir = "(in memory)"
        c.exchangeEvery = 10
        c.burnIn = 40
        return c
    }

    /// Trains jobs "a" and "b" side by side; `wrap` may replace b's transport (fault injection).
    /// `bDiesAt`: b stops advancing after that many steps, as a job that died.
    func train(steps: Int, distill: Bool, wrapB: ((SnapshotTransport) -> SnapshotTransport)? = nil,
               bDiesAt: Int? = nil, adjust: (inout TrainConfig) -> Void = { _ in }) throws -> [Job] {
        let board = InMemorySnapshotBoard()
        var logs: [String: [String]] = [:]
        var jobs: [Job] = []
        for (i, name) in ["a", "b"].enumerated() {
            var cfg = config(name: name, seed: UInt64(1 + i), steps: steps, distill: distill)
            adjust(&cfg)
            let trainer = try Trainer(config: cfg, resume: nil, world: SoloCollectives(), log: { logs[name, default: []].append($0) })
            trainer.transportOverride = InMemoryTransport(board: board, name: name)
            if name == "b" { trainer.wrapTransport = wrapB }
            jobs.append(Job(name: name, run: try trainer.start(), log: [], metricsPath: "\(cfg.checkpointDir)/group-0/metrics.csv"))
        }
        var going = true
        while going {
            going = false
            for job in jobs where !(job.name == "b" && job.run.stepsDone >= bDiesAt ?? Int.max) {
                if try job.run.advance() { going = true }
            }
        }
        for i in jobs.indices { jobs[i].run.close(); jobs[i].log = logs[jobs[i].name] ?? [] }
        return jobs
    }

    /// (step, version, peer's step) of every fresh snapshot a job logged.
    func snapshots(_ job: Job) -> [(step: Int, version: Int, peerStep: Int)] {
        job.log.compactMap { line in
            let words = line.split(separator: " ")
            guard line.contains("snapshot version"), words.count >= 13 else { return nil }
            return (Int(words[3].dropLast())!, Int(words[8])!, Int(words[12])!)
        }
    }

    /// Rows of a metrics CSV as [column: value].
    func rows(_ path: String) throws -> [[String: Double]] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        let header = lines[0].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        return lines.dropFirst().map { line in
            let values = line.split(separator: ",", omittingEmptySubsequences: false)
            var row: [String: Double] = [:]
            for (k, v) in zip(header, values) { if let d = Double(v) { row[k] = d } }
            return row
        }
    }

    func testBurnInGatesDistillationAndPeerVersionsAdvance() throws {
        let jobs = try train(steps: 120, distill: true)
        for job in jobs {
            let seen = snapshots(job)
            XCTAssertFalse(seen.isEmpty, "\(job.name) never took a snapshot: \(job.log)")
            XCTAssert(job.log.contains { $0.contains("snapshot version") && $0.contains("(its training loss ") },
                      "snapshots carry the publisher's health record: \(job.log)")
            XCTAssert(seen.allSatisfy { $0.step >= 40 }, "no exchange before the end of burn-in: \(seen)")
            XCTAssertEqual(seen.map(\.version), Array(1...seen.count), "versions advance by one per exchange: \(seen)")
            XCTAssertEqual(seen.map(\.peerStep), seen.map(\.peerStep).sorted(), "the peer's steps only advance")
            // The jobs take turns, so at an exchange step the first has not seen the second's
            // publication of that step yet: its peer is up to two exchanges old, the other's one.
            for row in try rows(job.metricsPath) {
                let step = Int(row["step"]!), distill = row["distill_loss"]!, age = Int(row["peer_age"]!)
                if step <= 40 {
                    XCTAssertEqual(distill, 0, "no distillation during burn-in: \(row)")
                    XCTAssertEqual(age, -1, "no peer snapshot during burn-in: \(row)")
                } else if step > 60 {
                    XCTAssertGreaterThan(distill, 0, "distillation once a peer snapshot is held: \(row)")
                    XCTAssert((10...20).contains(age), "a peer snapshot at most two exchanges old: \(row)")
                }
            }
        }
    }

    func testRefusedSnapshotKeepsThePreviousOne() throws {
        // Every second publication of b arrives torn.
        let jobs = try train(steps: 120, distill: true, wrapB: { FaultInjectingTransport($0, fault: .torn, every: 2) })
        let a = jobs[0]
        let refused = a.log.filter { $0.contains("peer b snapshot refused (checksum mismatch") }
        XCTAssertGreaterThanOrEqual(refused.count, 3, "a refuses b's torn snapshots: \(a.log)")
        let fresh = snapshots(a)
        XCTAssertGreaterThanOrEqual(fresh.count, 3, "a takes b's intact snapshots: \(a.log)")
        for line in refused {
            // Each refusal names the snapshot kept: the last fresh one before it.
            let step = Int(line.split(separator: " ")[3].dropLast())!
            if let kept = fresh.last(where: { $0.step < step }) {
                XCTAssert(line.hasSuffix("keeping its snapshot from its step \(kept.peerStep)"), line)
            } else {
                XCTAssert(line.hasSuffix("no snapshot of it yet"), line)
            }
        }
        let ages = try rows(a.metricsPath).compactMap { $0["peer_age"] }.filter { $0 >= 0 }
        // The second look one step after each exchange takes a publication one step after it is
        // made, so a refused one costs less than an exchange: a's peer stays at most 30 steps old.
        XCTAssert(ages.allSatisfy { $0 <= 30 }, "never more than one refused exchange in a row: \(ages)")
        XCTAssert(snapshots(jobs[1]).count >= 3, "b reads a's snapshots as usual")
    }

    func testCodistillationLowersChurn() throws {
        func churn(distill: Bool) throws -> Double {
            let jobs = try train(steps: 300, distill: distill)
            let test = try DatasetLoader.load(path: Self.data, split: .test)
            let predictions = try jobs.map { job -> [Float] in
                let model = try TrainedModel(checkpoint: job.run.lastCheckpoint!)
                let (mean, std) = model.recordedNormalization!
                return model.predict(test, mean: mean, std: std)
            }
            return predictionChurn(predictions[0], predictions[1], classes: test.classes).meanAbsDiff
        }
        let with = try churn(distill: true), without = try churn(distill: false)
        XCTAssertLessThan(with, without, "codistilled models agree more (mean |p_a - p_b|: \(with) vs \(without) without distillation)")
    }

    func testWeightDecayAfterBurnInSurvivesResume() throws {
        var cfg = config(name: "a", seed: 1, steps: 40, distill: true)
        cfg.burnIn = 20
        cfg.weightDecayAfterBurnIn = 0
        cfg.checkpointEvery = 30
        func start(resume: String?) throws -> TrainingRun {
            let trainer = try Trainer(config: cfg, resume: resume, world: SoloCollectives(), log: { _ in })
            trainer.transportOverride = InMemoryTransport(board: InMemorySnapshotBoard(), name: "a")
            return try trainer.start()
        }
        let first = try start(resume: nil)
        for _ in 0..<30 { _ = try first.advance() }
        first.close()
        XCTAssertEqual((first.optimizer as! SGD).weightDecay, 0, "decay switched at the end of burn-in")
        // Resumed past burn-in (step 30): the switch must hold from the first step on.
        let resumed = try start(resume: "auto")
        XCTAssertEqual(resumed.stepsDone, 30)
        _ = try resumed.advance()
        resumed.close()
        XCTAssertEqual((resumed.optimizer as! SGD).weightDecay, 0, "a run resumed after burn-in keeps the relaxed decay")
    }

    func testCollapsedPeerIsNeverDistilledFrom() throws {
        // b's every publication carries a NaN weight: a must refuse them (logged once), never
        // distil, and finish with finite weights.
        let jobs = try train(steps: 100, distill: true, wrapB: { FaultInjectingTransport($0, fault: .collapsed) })
        let a = jobs[0]
        let refused = a.log.filter { $0.contains("peer b snapshot refused (non-finite weights") }
        XCTAssertEqual(refused.count, 1, "a collapsed peer is logged once: \(a.log)")
        XCTAssert(snapshots(a).isEmpty, "no collapsed snapshot is taken: \(a.log)")
        for row in try rows(a.metricsPath) {
            XCTAssertEqual(row["distill_loss"], 0, "no distillation from a collapsed peer: \(row)")
            XCTAssert(row["loss"]!.isFinite, "\(row)")
        }
        XCTAssert(a.run.store.isFinite)
        XCTAssertFalse(snapshots(jobs[1]).isEmpty, "b still distils from the healthy a")
    }

    func testDivergedPeerWithFiniteWeightsIsRefusedByItsPredictions() throws {
        // From its 4th publication on (step 70), b publishes finite weights that predict far
        // worse than chance: a checks each snapshot on its batch at first use, goes back to b's
        // last healthy one, logs it once and keeps distilling from that.
        let jobs = try train(steps: 120, distill: true, wrapB: { FaultInjectingTransport($0, fault: .diverged, after: 3) })
        let a = jobs[0]
        let refused = a.log.filter { $0.contains("peer b snapshot from its step") && $0.contains("a diverged model") }
        XCTAssertEqual(refused.count, 1, "a diverged peer is logged once: \(a.log)")
        XCTAssert(refused[0].contains("worse than chance") && refused[0].contains("keeping its snapshot from its step 60"), refused[0])
        for row in try rows(a.metricsPath) where row["step"]! > 40 {
            XCTAssertGreaterThan(row["distill_loss"]!, 0, "a keeps distilling from b's healthy snapshot: \(row)")
            XCTAssertLessThan(row["distill_loss"]!, 3, "never from the diverged one: \(row)")
        }
        XCTAssertGreaterThan(a.run.finish().testAccuracy, 0.6, "a learns on: \(a.log)")
    }

    func testDeadPeerIsDroppedAfterMaxPeerAge() throws {
        // b dies after 60 steps; a goes on to 150 and stops distilling once b's last snapshot
        // (from b's step 60) is more than 30 steps old.
        let jobs = try train(steps: 150, distill: true, bDiesAt: 60, adjust: { $0.maxPeerAge = 30 })
        let a = jobs[0]
        let expired = a.log.filter { $0.contains("older than --max-peer-age 30") }
        XCTAssertEqual(expired.count, 1, "logged once: \(a.log)")
        for row in try rows(a.metricsPath) {
            let step = Int(row["step"]!), distill = row["distill_loss"]!
            if (70...80).contains(step) { XCTAssertGreaterThan(distill, 0, "b's last snapshot is still young: \(row)") }
            if step > 100 { XCTAssertEqual(distill, 0, "b's snapshot is too old to distil from: \(row)") }
        }
    }
}

