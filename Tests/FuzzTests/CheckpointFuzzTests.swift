import Checkpoint
import Engine
import Foundation
import NN
import XCTest

/// The checkpoint load path on mutated copies of a valid checkpoint: `Checkpoint.read`, then what
/// resume does with it (`restore` into a store of the same model) and what `inspect` prints.
final class CheckpointFuzzTests: XCTestCase {
    /// A small model with every kind of entry: trainable tensors, BatchNorm buffers and its
    /// num_batches_tracked, so the seed file stays small and mutations reach its metadata.
    static func model() -> Module {
        Sequential(Conv2d(1, 2, kernel: 3, padding: 1), BatchNorm(2), ReLU(), Flatten(), Linear(2 * 4 * 4, 3))
    }

    func testCheckpointReader() throws {
        let dir = NSTemporaryDirectory() + "codistill-fuzz-ckpt-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let seedPath = Checkpoint.path(directory: dir, group: 0, step: 3)
        let store = ParameterStore(model: Self.model(), seed: 1)
        let optimizer = SGD(parameters: store, momentum: 0.9, weightDecay: 5e-4)
        for i in 0..<store.trainableCount { store.gradients[i] = Float(i % 7) * 0.01 }
        optimizer.step(lr: 0.1)
        let spec = ModelSpec(name: "cnn", inputShape: [1, 4, 4], classes: 3)
        try Checkpoint.write(path: seedPath, store: store, optimizer: optimizer,
                             metadata: CheckpointMetadata(step: 3, epoch: 0, group: 0, numGroups: 2, worldSize: 2, model: spec,
                                                          configJSON: #"{"lr":0.1}"#, created: "2025-01-02T03:04:05Z"),
                             state: RunState(step: 3, epoch: 0, rngWords: [1, 2, 3, 4], dataSeed: 7, stepInEpoch: 3),
                             metrics: ["test_acc": 0.5],
                             exchange: [ExchangeSnapshot(role: .peer, name: "g1", sequence: 2, step: 2, values: [1, 2, 3])])
        let seed = try [UInt8](Foundation.Data(contentsOf: URL(fileURLWithPath: seedPath)))
        let target = dir + "/mutated.h5"

        func read() throws {
            let loaded = try Checkpoint.read(path: target)
            let fresh = ParameterStore(model: Self.model(), seed: 2)
            try Checkpoint.restore(loaded, into: fresh, optimizer: SGD(parameters: fresh, momentum: 0.9), model: spec)
            _ = try Checkpoint.describe(path: target, json: true)
        }
        try Fixtures.write(seed, to: target)
        XCTAssertNoThrow(try read(), "the seed checkpoint must load")

        let heapIndexes = GlobalHeapIndexes.ranges(in: seed)
        let attributeSizes = AttributeDescriptions.ranges(in: seed)
        XCTAssertFalse(attributeSizes.isEmpty, "the attribute messages should be found")
        XCTAssertFalse(heapIndexes.isEmpty, "the string attributes' heap IDs should be found")
        var campaign = Campaign("checkpoint")
        try campaign.run(input: { _, rng in
            var mutator = ByteMutator(rng: SplitMix64(seed: rng.next()))
            // As for HDF5 datasets: HDF5 rejects moved bytes on opening, in-place ones reach the objects.
            var (bytes, applied) = mutator.mutate(seed, kinds: ByteMutator.inPlace)
            GlobalHeapIndexes.restore(heapIndexes + attributeSizes, of: seed, in: &bytes)
            try Fixtures.write(bytes, to: target)
            return "\(bytes.count) bytes, \(applied)" + Reseal.mostInputs(target, rng: &rng)
        }, read: read)
    }
}
