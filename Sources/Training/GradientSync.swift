import Cluster
import NN

/// The group's one fused allreduce per step: gradients, BatchNorm running statistics, and the
/// step's loss, correct count and stop flag travel in a single buffer.
///
/// Gradients are averaged (each rank's loss is a mean over an equal local batch, so the mean of
/// the means is the group batch's mean: 2 ranks x B/2 == 1 rank x B). Running statistics are
/// averaged too, which keeps every rank's buffers identical (each rank normalised with its local
/// batch, as PyTorch DDP without SyncBatchNorm).
public final class GradientSync {
    let store: ParameterStore
    let group: Communicator
    let buffer: UnsafeMutablePointer<Float>
    let count: Int

    public init(store: ParameterStore, group: Communicator) {
        self.store = store
        self.group = group
        count = store.trainableCount + store.bufferCount + 3
        buffer = .allocate(capacity: count)
    }
    deinit { buffer.deallocate() }

    public struct Stats { public var loss: Double; public var correct: Double; public var stop: Bool }

    /// Averages gradients and buffers in place; returns the group's mean loss, total correct and
    /// whether any rank asked to stop.
    public func average(loss: Double, correct: Double, stop: Bool) -> Stats {
        guard group.size > 1 else { return Stats(loss: loss, correct: correct, stop: stop) }
        let nt = store.trainableCount, nb = store.bufferCount
        buffer.update(from: store.gradients, count: nt)
        (buffer + nt).update(from: store.buffers, count: nb)
        buffer[nt + nb] = Float(loss)
        buffer[nt + nb + 1] = Float(correct)
        buffer[nt + nb + 2] = stop ? 1 : 0
        group.allreduceSum(buffer, count: count)
        let inv = 1 / Float(group.size)
        for i in 0..<nt { store.gradients[i] = buffer[i] * inv }
        for i in 0..<nb { store.buffers[i] = buffer[nt + i] * inv }
        return Stats(loss: Double(buffer[nt + nb]) / Double(group.size), correct: Double(buffer[nt + nb + 1]),
                     stop: buffer[nt + nb + 2] > 0)
    }
}
