import Foundation

/// Learning rate as a function of the step (0-based), with optional linear warm-up.
public struct LRSchedule: Equatable {
    public enum Shape: Equatable {
        case constant
        /// Multiply by gamma every `every` steps.
        case step(every: Int, gamma: Float)
        /// Cosine from the base rate down to `minLR` at `totalSteps` (after warm-up).
        case cosine(totalSteps: Int, minLR: Float)
    }
    public var base: Float
    public var shape: Shape
    public var warmupSteps: Int

    public init(base: Float, shape: Shape = .constant, warmupSteps: Int = 0) {
        self.base = base; self.shape = shape; self.warmupSteps = warmupSteps
    }

    public func lr(at step: Int) -> Float {
        if step < warmupSteps { return base * Float(step + 1) / Float(warmupSteps) }
        let s = step - warmupSteps
        switch shape {
        case .constant: return base
        case .step(let every, let gamma):
            return base * Float(Foundation.pow(Double(gamma), Double(s / max(every, 1))))
        case .cosine(let total, let minLR):
            let span = max(total - warmupSteps, 1)
            let t = min(Double(s) / Double(span), 1)
            return minLR + (base - minLR) * Float(0.5 * (1 + Foundation.cos(Double.pi * t)))
        }
    }
}
