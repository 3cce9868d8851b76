import Engine

/// Number of rows of [N, K] logits whose arg-max is the label.
public func countCorrect(_ logits: Tensor, _ labels: [Int]) -> Int {
    labels.indices.reduce(0) { $0 + (argmax(logits, row: $1) == labels[$1] ? 1 : 0) }
}

/// The class a row of [N, K] logits (or probabilities) picks: the first of equal maxima.
public func argmax(_ logits: Tensor, row: Int) -> Int {
    argmax(logits.data + row * logits.shape[1], count: logits.shape[1])
}

/// Index of the first largest of `count` values.
public func argmax(_ p: UnsafePointer<Float>, count: Int) -> Int {
    var best = 0
    for j in 1..<count where p[j] > p[best] { best = j }
    return best
}
