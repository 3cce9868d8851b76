import Foundation
import NN

/// Everything that defines a training run. Stored as JSON in every checkpoint, so a resumed
/// run can check that it continues the same experiment.
public struct TrainConfig: Codable, Equatable {
    public var model = "cnn"
    public var data = "/usr/share/datasets/fashion-mnist"
    /// Dataset whose test split is the evaluation set (empty: the test split of `data`). A
    /// single-split HDF5 file serves as both splits, so training on one needs its test set here.
    public var testData = ""
    public var groups = 1
    /// Samples per rank per step; a group's batch is this times the ranks in the group.
    public var batch = 64
    public var epochs = 3
    /// When > 0, overrides epochs.
    public var steps = 0
    public var optimizer = OptimizerKind.sgd
    public var lr: Float = 0.05
    public var schedule = ScheduleKind.cosine
    public var warmupSteps = 0
    public var stepEvery = 1000
    public var stepGamma: Float = 0.1
    public var momentum: Float = 0.9
    public var nesterov = false
    public var weightDecay: Float = 5e-4
    public var labelSmoothing: Float = 0
    public var seed: UInt64 = 1
    public var normalize = true
    public var randomCropPadding = 0
    public var horizontalFlip = false
    /// Evaluate on the test split every this many steps (0: only at the end).
    public var evalEvery = 0
    public var checkpointDir = "runs/default"
    /// Write a checkpoint every this many steps (0: only at the end).
    public var checkpointEvery = 0
    public var keepLast = 3
    /// Print a progress line every this many steps.
    public var logEvery = 50
    /// Compare parameter checksums across each group every this many steps (0: off).
    public var consistencyEvery = 0
    public var blasThreads = 1
    /// Metrics file; "{group}" is replaced by the group number; .jsonl for JSON Lines, else CSV.
    public var metrics = ""

    // Codistillation across groups (G > 1).
    public var exchange = ExchangeKind.rma
    public var exchangeEvery = 50
    public var exchangeMode = ExchangeMode.async
    /// Lock-step: seconds a group waits for a peer's snapshot before it stops with an error.
    public var peerTimeout = 600
    public var distillWeight: Float = 1
    /// Steps of plain training before the exchanges and the distillation term start; -1 (the
    /// default): `autoBurnInFraction` of the run, resolved by `resolvingBurnIn(totalSteps:)`.
    public var burnIn = -1
    /// The share of the run's steps an automatic burn-in takes (docs/RELIABILITY.md, "The default burn-in").
    public static let autoBurnInFraction = 0.2
    /// Steps over which the distillation weight rises linearly after burn-in (0: at once).
    public var distillRamp = 0
    public var temperature: Float = 1
    public var topology = Topology.all
    public var dataSplit = DataSplit.disjoint
    /// Weight decay from the end of burn-in on (negative: unchanged), for codistilled SGD runs.
    public var weightDecayAfterBurnIn: Float = -1
    /// Shared directory of the file exchange.
    public var peerDir = ""
    /// This job's folder name in the peer directory (default: the checkpoint directory's name).
    public var peerName = ""
    /// A peer snapshot older than this many steps is not distilled from (0: no limit): a peer
    /// that died or stalls stops pulling the others towards its old predictions.
    public var maxPeerAge = 0

    /// The per-channel mean and std the inputs were normalised with (empty: none recorded).
    /// Set by `train` in every checkpoint it writes, so `eval` and `synth` need no training data
    /// to feed the model what it was trained on.
    public var inputMean: [Float] = []
    public var inputStd: [Float] = []

    public init() {}

    /// Checks that do not need MPI or files; the message names the option and the fix.
    /// This configuration with an automatic burn-in (-1) replaced by its share of a run of
    /// `totalSteps`, rounded to a whole number of steps; an explicit burn-in is kept.
    public func resolvingBurnIn(totalSteps: Int) -> TrainConfig {
        guard burnIn < 0 else { return self }
        var c = self
        c.burnIn = Int((Double(totalSteps) * Self.autoBurnInFraction).rounded())
        return c
    }

    public func validate() throws {
        func fail(_ s: String) throws -> Never { throw ConfigError(description: s) }
        if !Models.names.contains(model) { try fail("unknown model '\(model)': choose one of \(Models.names.joined(separator: ", "))") }
        if groups < 1 { try fail("--groups must be at least 1, got \(groups)") }
        if batch < 1 { try fail("--batch (per rank) must be at least 1, got \(batch)") }
        if steps < 0 || epochs < 0 || (steps == 0 && epochs == 0) { try fail("give a positive --epochs or --steps") }
        if !(lr > 0 && lr.isFinite) { try fail("--lr must be a positive number, got \(lr)") }
        if weightDecay < 0 { try fail("--weight-decay must be >= 0, got \(weightDecay)") }
        if labelSmoothing < 0 || labelSmoothing >= 1 { try fail("--label-smoothing must be in [0, 1), got \(labelSmoothing)") }
        if momentum < 0 || momentum >= 1 { try fail("--momentum must be in [0, 1), got \(momentum)") }
        if keepLast < 0 || checkpointEvery < 0 || evalEvery < 0 || logEvery < 1 || consistencyEvery < 0 {
            try fail("--keep-last, --checkpoint-every, --eval-every and --consistency-every must be >= 0 and --log-every >= 1")
        }
        if blasThreads < 1 { try fail("--blas-threads must be at least 1") }
        if randomCropPadding < 0 { try fail("--random-crop-padding must be >= 0") }
        if exchange == .files && peerDir.isEmpty {
            try fail("--exchange files needs --peer-dir DIR, a directory every job of the experiment can read and write")
        }
        if maxPeerAge < 0 { try fail("--max-peer-age must be >= 0 (0: no limit), got \(maxPeerAge)") }
        if exchangeMode == .lockstep && exchange != .rma {
            try fail("--exchange-mode lockstep needs --exchange rma (groups of one mpirun job); the file exchange is asynchronous only")
        }
        if peerTimeout < 1 { try fail("--peer-timeout must be at least 1 second, got \(peerTimeout)") }
        if exchangeEvery < 1 { try fail("--exchange-every must be at least 1, got \(exchangeEvery)") }
        if distillWeight < 0 || distillRamp < 0 { try fail("--distill-weight and --distill-ramp must be >= 0") }
        if burnIn < -1 { try fail("--burn-in must be >= 0, or -1 for \(Int(Self.autoBurnInFraction * 100))% of the run, got \(burnIn)") }
        if weightDecayAfterBurnIn >= 0 && optimizer != .sgd { try fail("--weight-decay-after-burn-in applies to --optimizer sgd") }
        if !(temperature > 0) { try fail("--temperature must be positive, got \(temperature)") }
        // The schedule clamps these (a step every max(n, 1) steps), so a nonsense value would
        // silently mean something else.
        // "" would put group-<g>/ into whatever directory the job started in.
        if checkpointDir.isEmpty { try fail("--checkpoint-dir must name a directory (default: runs/default)") }
        if warmupSteps < 0 { try fail("--warmup-steps must be >= 0, got \(warmupSteps)") }
        if stepEvery < 1 { try fail("--step-every must be at least 1, got \(stepEvery)") }
        if !(stepGamma > 0) { try fail("--step-gamma must be positive, got \(stepGamma)") }
    }

    /// Reads a configuration stored by any earlier version: keys it lacks (options added since)
    /// take their defaults, so old checkpoints stay readable.
    public static func decode(json: String) throws -> TrainConfig {
        var dict = try JSONSerialization.jsonObject(with: JSONEncoder().encode(TrainConfig())) as! [String: Any]
        guard let stored = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
            throw ConfigError(description: "the stored run configuration is not a JSON object")
        }
        for (k, v) in stored where dict[k] != nil { dict[k] = v }
        return try JSONDecoder().decode(TrainConfig.self, from: JSONSerialization.data(withJSONObject: dict))
    }

    public var json: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try! enc.encode(self), as: UTF8.self)
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}
