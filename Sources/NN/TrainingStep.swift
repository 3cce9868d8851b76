import Engine

/// What one step minimises, built by the caller from the model's logits.
public struct Objective {
    /// The loss the run reports and checks: the cross-entropy on the labels, or a data-free
    /// student's distillation loss.
    public var loss: Tensor
    /// A term added to `loss` for the gradient, already weighted (codistillation's distillation
    /// term), with the value to report for it.
    public var extra: (term: Tensor, reported: Double)?
    /// Correct predictions in the batch (0 when the step has no labels).
    public var correct: Int

    public init(loss: Tensor, extra: (term: Tensor, reported: Double)? = nil, correct: Int = 0) {
        self.loss = loss; self.extra = extra; self.correct = correct
    }
}

/// Averages gradients over the ranks of a data-parallel group, and sums the step's scalars in the
/// same message (Training's GradientSync does it over MPI). A step without one trains alone.
public protocol GradientReduction: AnyObject {
    /// Ranks in the group.
    var ranks: Int { get }
    /// Averages the store's gradients (and BatchNorm buffers) in place; returns the group's sums
    /// of `scalars`.
    func average(scalars: [Double]) -> [Double]
    /// Seconds the last `average` waited for the slowest rank, and spent in the reduction itself.
    var lastWaitSeconds: Double { get }
    var lastReduceSeconds: Double { get }
}

/// What a step did, for the whole group.
public struct StepStatistics {
    /// Mean of the ranks' `Objective.loss`.
    public var loss: Double
    /// Mean of the ranks' reported extra term (nil when the step had none).
    public var extra: Double?
    /// Correct predictions and samples over the group's batch.
    public var correct: Int
    public var samples: Int
    /// Some rank of the group asked to stop (the flag travels with the gradients).
    public var stopRequested: Bool
    /// Forward and backward; waiting for the slowest rank; the reduction; the update.
    public var computeSeconds: Double
    public var waitSeconds: Double
    public var reduceSeconds: Double
    public var updateSeconds: Double
    /// Norm of the group's averaged gradient.
    public var gradientNorm: Double

    public var isFinite: Bool { loss.isFinite && (extra?.isFinite ?? true) && gradientNorm.isFinite }
}

/// Thrown instead of an update when the group's loss, its extra term or the gradient is NaN or
/// infinite: the parameters stay as they were before the step, so nothing poisoned reaches a
/// checkpoint or a peer. Every rank of the group sees the same sums, so all of them throw.
public struct NonFiniteLoss: Error, CustomStringConvertible {
    public let statistics: StepStatistics
    public var description: String {
        if !statistics.loss.isFinite { return "the loss became \(statistics.loss)" }
        if let extra = statistics.extra, !extra.isFinite { return "the distillation term became \(extra)" }
        return "the gradient norm became \(statistics.gradientNorm) (the loss was \(statistics.loss))"
    }
}

/// One optimisation step, the same for training, benchmarks and the data-free student:
/// zero the gradients, forward, build the objective, backward, average over the group, update.
public final class TrainingStep {
    public let model: Module
    public let store: ParameterStore
    public let optimizer: Optimizer
    public let reduction: GradientReduction?
    /// Fault injection for tests: runs on the averaged gradients before they are checked.
    public var gradientFault: ((ParameterStore) -> Void)?

    public init(model: Module, store: ParameterStore, optimizer: Optimizer, reduction: GradientReduction? = nil) {
        self.model = model; self.store = store; self.optimizer = optimizer; self.reduction = reduction
    }

    /// One step on `images` with learning rate `lr`. Throws NonFiniteLoss, without updating,
    /// when the group's loss, extra term or gradient is not finite.
    @discardableResult
    public func run(_ images: Tensor, lr: Float, requestStop: Bool = false,
                    objective: (_ logits: Tensor) -> Objective) throws -> StepStatistics {
        let start = monotonicSeconds()
        store.zeroGrad()
        let o = objective(model(images))
        Tape.current.backward(o.extra.map { add(o.loss, $0.term) } ?? o.loss)
        store.finalizeGradients()
        let computed = monotonicSeconds()

        let ranks = reduction?.ranks ?? 1
        let mine = [Double(o.loss.scalar), Double(o.correct), requestStop ? 1 : 0, o.extra?.reported ?? 0]
        let sums = reduction?.average(scalars: mine) ?? mine
        var stats = StepStatistics(loss: sums[0] / Double(ranks), extra: o.extra == nil ? nil : sums[3] / Double(ranks),
                                   correct: Int(sums[1].rounded()), samples: images.shape[0] * ranks,
                                   stopRequested: sums[2] > 0, computeSeconds: computed - start,
                                   waitSeconds: reduction?.lastWaitSeconds ?? 0,
                                   reduceSeconds: reduction?.lastReduceSeconds ?? 0, updateSeconds: 0, gradientNorm: 0)
        gradientFault?(store)
        // After the reduction every rank holds the same gradient, so all agree on this.
        stats.gradientNorm = store.gradientNorm()
        guard stats.isFinite else { throw NonFiniteLoss(statistics: stats) }
        let beforeUpdate = monotonicSeconds()
        optimizer.step(lr: lr)
        stats.updateSeconds = monotonicSeconds() - beforeUpdate
        return stats
    }

    /// A step on labelled images with the (optionally label-smoothed) cross-entropy.
    @discardableResult
    public func run(_ images: Tensor, labels: [Int], lr: Float, labelSmoothing: Float = 0) throws -> StepStatistics {
        try run(images, lr: lr) { logits in
            Objective(loss: crossEntropy(logits, labels: labels, labelSmoothing: labelSmoothing),
                      correct: countCorrect(logits, labels))
        }
    }
}
