import Engine

/// The one loop that runs a model over a dataset without recording a tape: evaluation in
/// training, `eval`'s predictions and the data-free student's accuracy all go through it.
/// Inputs are normalised as in training and never augmented.
public struct BatchedInference {
    let builder: BatchBuilder
    /// Samples per forward pass: large enough to keep BLAS busy, small enough for the memory.
    public var chunk = 500

    public init(dataset: Dataset, mean: [Float], std: [Float]) {
        builder = BatchBuilder(dataset: dataset, mean: mean, std: std)
    }

    /// Calls `body` with the logits and labels of each chunk of `indices`, in order.
    public func forEachBatch(indices: [Int], forward: (Tensor) -> Tensor, _ body: (_ logits: Tensor, _ labels: [Int]) -> Void) {
        for start in stride(from: 0, to: indices.count, by: chunk) {
            let (images, labels) = builder.batch(indices: Array(indices[start..<min(start + chunk, indices.count)]), step: 0)
            withNoGrad { body(forward(images), labels) }
        }
    }
}
