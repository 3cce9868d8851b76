import ArgumentParser
import NN
import RunConfig
import Training

private let defaults = TrainConfig()

/// The `train` options that set TrainConfig fields. Each property is named as its field (the
/// flag is the kebab-case form), is nil unless given, and shows TrainConfig()'s default in its
/// help: TrainConfig is the one source of defaults, and an experiment file's value stands unless
/// the flag is given. `settings` reads the given ones by name, so there is no copy per option.
struct TrainOptions: ParsableArguments {
    @Option(help: helpWithDefault("Model: \(Models.names.joined(separator: ", ")).", default: defaults.model)) var model: String?
    @Option(help: helpWithDefault("Dataset: IDX directory (MNIST family), CIFAR binary directory or HDF5 file.", default: defaults.data)) var data: String?
    @Option(help: helpWithDefault("Dataset whose test split is the evaluation set (none: the test split of --data; a single-split HDF5 file is its own test split).", default: defaults.testData)) var testData: String?
    @Option(help: helpWithDefault("Number of groups G (must divide the rank count).", default: defaults.groups)) var groups: Int?
    @Option(help: helpWithDefault("Samples per rank per step (group batch = batch x ranks per group).", default: defaults.batch)) var batch: Int?
    @Option(help: helpWithDefault("Epochs over the training set.", default: defaults.epochs)) var epochs: Int?
    @Option(help: helpWithDefault("Steps (overrides --epochs when > 0).", default: defaults.steps)) var steps: Int?
    @Option(help: helpWithDefault("Optimizer.", default: defaults.optimizer)) var optimizer: OptimizerKind?
    @Option(help: helpWithDefault("Base learning rate.", default: defaults.lr)) var lr: Float?
    @Option(help: helpWithDefault("LR schedule.", default: defaults.schedule)) var schedule: ScheduleKind?
    @Option(help: helpWithDefault("Linear warm-up steps.", default: defaults.warmupSteps)) var warmupSteps: Int?
    @Option(help: helpWithDefault("For --schedule step: multiply by --step-gamma every this many steps.", default: defaults.stepEvery)) var stepEvery: Int?
    @Option(help: helpWithDefault("For --schedule step: the factor.", default: defaults.stepGamma)) var stepGamma: Float?
    @Option(help: helpWithDefault("SGD momentum.", default: defaults.momentum)) var momentum: Float?
    @Flag(inversion: .prefixedNo, help: helpWithDefault("Nesterov momentum.", default: defaults.nesterov)) var nesterov: Bool?
    @Option(help: helpWithDefault("Weight decay.", default: defaults.weightDecay)) var weightDecay: Float?
    @Option(help: helpWithDefault("Label smoothing for the cross-entropy.", default: defaults.labelSmoothing)) var labelSmoothing: Float?
    @Option(help: helpWithDefault("Seed for weights, data order and augmentation.", default: defaults.seed)) var seed: UInt64?
    @Flag(inversion: .prefixedNo, help: helpWithDefault("Normalise inputs by the training set's channel mean/std.", default: defaults.normalize)) var normalize: Bool?
    @Option(help: helpWithDefault("Random crop after zero padding by this many pixels (0: off).", default: defaults.randomCropPadding)) var randomCropPadding: Int?
    @Flag(inversion: .prefixedNo, help: helpWithDefault("Random horizontal flips.", default: defaults.horizontalFlip)) var horizontalFlip: Bool?
    @Option(help: helpWithDefault("Evaluate on the test split every this many steps (0: at the end only).", default: defaults.evalEvery)) var evalEvery: Int?
    @Option(help: helpWithDefault("Checkpoint directory (group-<g>/step-<step>.h5 inside).", default: defaults.checkpointDir)) var checkpointDir: String?
    @Option(help: helpWithDefault("Checkpoint every this many steps (0: at the end only).", default: defaults.checkpointEvery)) var checkpointEvery: Int?
    @Option(help: helpWithDefault("Keep the newest K checkpoints per group (0: all).", default: defaults.keepLast)) var keepLast: Int?
    @Option(help: helpWithDefault("Metrics file ({group} = group number; .jsonl for JSON Lines, else CSV).", default: defaults.metrics)) var metrics: String?
    @Option(help: helpWithDefault("Progress line every this many steps.", default: defaults.logEvery)) var logEvery: Int?
    @Option(help: helpWithDefault("Check that ranks of a group hold identical parameters every this many steps (0: off).", default: defaults.consistencyEvery)) var consistencyEvery: Int?
    @Option(help: helpWithDefault("BLAS threads per rank.", default: defaults.blasThreads)) var blasThreads: Int?
    @Option(help: helpWithDefault("Exchange between groups: one-sided MPI, a shared --peer-dir, or none.", default: defaults.exchange)) var exchange: ExchangeKind?
    @Option(help: helpWithDefault("Publish and read peer snapshots every this many steps.", default: defaults.exchangeEvery)) var exchangeEvery: Int?
    @Option(help: helpWithDefault("async: distil from the peers' freshest snapshots, never waiting; lockstep: from their snapshots of the previous exchange step, waiting for a peer that is behind (reproducible bit for bit).", default: defaults.exchangeMode)) var exchangeMode: ExchangeMode?
    @Option(help: helpWithDefault("Lock-step: seconds to wait for a peer's snapshot before stopping with an error.", default: defaults.peerTimeout)) var peerTimeout: Int?
    @Option(help: helpWithDefault("Weight of the distillation term.", default: defaults.distillWeight)) var distillWeight: Float?
    @Option(help: "Steps without exchanges or distillation at the start (default: -1, \(Int(TrainConfig.autoBurnInFraction * 100))% of the run's steps).") var burnIn: Int?
    @Option(help: helpWithDefault("Steps over which the distillation weight rises linearly after burn-in.", default: defaults.distillRamp)) var distillRamp: Int?
    @Option(help: helpWithDefault("Distillation temperature.", default: defaults.temperature)) var temperature: Float?
    @Option(help: helpWithDefault("Weight decay once burn-in ends (SGD; Sodhani et al. 2020; negative: unchanged).", default: defaults.weightDecayAfterBurnIn)) var weightDecayAfterBurnIn: Float?
    @Option(help: helpWithDefault("Which peers a group follows: all others, or group g-1 (ring).", default: defaults.topology)) var topology: Topology?
    @Option(help: helpWithDefault("Data of each group: disjoint (a 1/G share each) or the same.", default: defaults.dataSplit)) var dataSplit: DataSplit?
    @Option(help: helpWithDefault("Shared directory for --exchange files (jobs that share it codistil).", default: defaults.peerDir)) var peerDir: String?
    @Option(help: helpWithDefault("This job's name in --peer-dir (none: the checkpoint directory's name).", default: defaults.peerName)) var peerName: String?
    @Option(help: helpWithDefault("Do not distil from a peer snapshot older than this many steps (0: no limit).", default: defaults.maxPeerAge)) var maxPeerAge: Int?

    /// The options given on the command line, named as their TrainConfig fields.
    var settings: [ConfigSetting] {
        Mirror(reflecting: self).children.compactMap { child in
            // Property wrappers are stored as `_name`.
            guard let label = child.label?.dropFirst(), let given = (child.value as? GivenValue)?.given else { return nil }
            return ConfigSetting(name: String(label), value: given, place: "the command line")
        }
    }
}

/// An option or flag's parsed value, nil when it was not given.
private protocol GivenValue { var given: Any? { get } }
extension Option: GivenValue { fileprivate var given: Any? { unwrapOptional(wrappedValue) } }
extension Flag: GivenValue { fileprivate var given: Any? { unwrapOptional(wrappedValue) } }

private func unwrapOptional(_ value: Any) -> Any? {
    let mirror = Mirror(reflecting: value)
    guard mirror.displayStyle == .optional else { return value }
    return mirror.children.first?.value
}

/// Help text that ends with the default, rendered as the options' own spelling (raw values for
/// enums, "none" for an empty string), so `--help` shows what a run without the flag uses.
private func helpWithDefault<Value>(_ text: String, default value: Value) -> ArgumentHelp {
    let shown: String
    switch value {
    case let s as String: shown = s.isEmpty ? "none" : s
    case let choice as any OptionChoice: shown = choice.rawValue
    default: shown = "\(value)"
    }
    return ArgumentHelp("\(text) (default: \(shown))")
}
