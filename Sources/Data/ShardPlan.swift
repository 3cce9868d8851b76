import Engine
import Foundation

/// Which samples each rank reads: a deterministic per-epoch shuffle from the seed, the epoch cut into group batches of
/// `groupBatch = perRankBatch * ranksInGroup` (the last partial batch is dropped), and rank r of the group taking
/// the contiguous slice [r*perRankBatch, (r+1)*perRankBatch) of each group batch. `dataSplit` lets different groups see
/// different data: with `partitions = G` and `partition = g`, the epoch's permutation is over the g-th contiguous
/// 1/G share of the training set (disjoint), with partitions = 1 everyone shares the whole set.
///
/// The shuffle depends only on (seed, epoch, partitions, partition), never on the batch size or rank
/// count, so a group of R ranks with batch B/R reads exactly the samples one rank with batch B reads,
/// step for step. Groups that share the data (partitions = 1) but should see it in a different order
/// pass different seeds. A step's samples are a function of the step alone: resuming needs only the step.
///
/// `stepsPerEpoch` is 0 when one group batch is larger than the (partition of the) data; `indices`
/// must not be called then, so check it and report a usable batch size.
public struct ShardPlan: Equatable {
    public let datasetCount: Int
    public let perRankBatch: Int
    public let ranksInGroup: Int
    public let rankInGroup: Int
    public let seed: UInt64
    public let partitions: Int
    public let partition: Int

    public init(datasetCount: Int, perRankBatch: Int, ranksInGroup: Int, rankInGroup: Int, seed: UInt64,
                partitions: Int = 1, partition: Int = 0) {
        precondition(datasetCount >= 0, "negative dataset size")
        precondition(perRankBatch > 0, "perRankBatch must be positive, got \(perRankBatch)")
        precondition(ranksInGroup > 0 && rankInGroup >= 0 && rankInGroup < ranksInGroup,
                     "rank \(rankInGroup) outside a group of \(ranksInGroup)")
        precondition(partitions > 0 && partition >= 0 && partition < partitions,
                     "partition \(partition) outside 0..<\(partitions)")
        self.datasetCount = datasetCount
        self.perRankBatch = perRankBatch
        self.ranksInGroup = ranksInGroup
        self.rankInGroup = rankInGroup
        self.seed = seed
        self.partitions = partitions
        self.partition = partition
    }

    public var groupBatch: Int { perRankBatch * ranksInGroup }
    /// This partition's share of the dataset: [lowerBound, upperBound).
    public var partitionRange: Range<Int> {
        (datasetCount * partition / partitions)..<(datasetCount * (partition + 1) / partitions)
    }
    public var stepsPerEpoch: Int { partitionRange.count / groupBatch }

    /// Indices (into the dataset) of this rank's samples for global step `step` (0-based; epoch = step / stepsPerEpoch).
    public func indices(step: Int) -> [Int] { indices(step: step, rank: rankInGroup) }

    /// The same for an explicit rank (used by tests to prove disjointness and coverage).
    public func indices(step: Int, rank: Int) -> [Int] {
        precondition(step >= 0, "negative step \(step)")
        precondition(rank >= 0 && rank < ranksInGroup, "rank \(rank) outside a group of \(ranksInGroup)")
        let steps = stepsPerEpoch
        precondition(steps > 0, "a group batch of \(groupBatch) is larger than the \(partitionRange.count) samples available")
        let epoch = step / steps
        let start = (step % steps) * groupBatch + rank * perRankBatch
        let lower = partitionRange.lowerBound
        let perm = permutation(epoch: epoch)
        return perm.withUnsafeBufferPointer { p in
            (start..<(start + perRankBatch)).map { lower + Int(p[$0]) }
        }
    }

    /// The shuffle of this partition for `epoch` (positions within the partition).
    public func permutation(epoch: Int) -> [Int32] {
        let key = PermutationCache.Key(seed: seed, epoch: epoch, count: partitionRange.count,
                                       partitions: partitions, partition: partition)
        return PermutationCache.shared.permutation(for: key)
    }
}

/// Remembers the last few epoch permutations, so a step costs O(batch) instead of a fresh O(N) shuffle.
final class PermutationCache {
    struct Key: Hashable {
        let seed: UInt64, epoch: Int, count: Int, partitions: Int, partition: Int
    }

    static let shared = PermutationCache()
    private let lock = NSLock()
    private var entries: [(Key, [Int32])] = []

    func permutation(for key: Key) -> [Int32] {
        lock.lock()
        if let hit = entries.first(where: { $0.0 == key }) { lock.unlock(); return hit.1 }
        lock.unlock()
        let perm = Self.shuffle(key)
        lock.lock()
        entries.append((key, perm))
        if entries.count > 4 { entries.removeFirst() }
        lock.unlock()
        return perm
    }

    /// Fisher-Yates over 0..<count with a generator for this (seed, epoch, partition).
    static func shuffle(_ key: Key) -> [Int32] {
        var rng = RandomGenerator(seed: key.seed, stream: "shuffle-epoch-\(key.epoch)-partition-\(key.partition)-of-\(key.partitions)")
        let n = key.count
        return [Int32](unsafeUninitializedCapacity: n) { b, initialized in
            for i in 0..<n { b[i] = Int32(i) }
            if n > 1 {
                for i in stride(from: n - 1, to: 0, by: -1) {
                    let j = rng.int(below: i + 1)
                    b.swapAt(i, j)
                }
            }
            initialized = n
        }
    }
}
