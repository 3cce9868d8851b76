import Checkpoint
import Data
import Engine
import Foundation
import NN
import RunConfig

/// A model rebuilt from a checkpoint, with the input normalisation its run used.
public struct TrainedModel {
    public let path: String
    public let model: Module
    public let store: ParameterStore
    public let config: TrainConfig
    public let spec: ModelSpec

    public init(checkpoint path: String) throws {
        let ckpt = try Checkpoint.read(path: path)
        guard let cfg = try? TrainConfig.decode(json: ckpt.metadata.configJSON) else {
            throw CheckpointError("checkpoint \(path) carries no readable run configuration: was it written by codistill train?")
        }
        let model = try Models.make(ckpt.metadata.model)
        let store = ParameterStore(model: model, seed: 0)
        try Checkpoint.restore(ckpt, into: store, optimizer: nil)
        model.eval()
        self.path = path; self.model = model; self.store = store; self.config = cfg; self.spec = ckpt.metadata.model
    }

    /// The per-channel mean and std the model's training inputs were normalised with, when its
    /// checkpoint records them (checkpoints of this version do; older ones: nil).
    public var recordedNormalization: (mean: [Float], std: [Float])? {
        let c = spec.inputShape[0]
        guard config.inputMean.count == c, config.inputStd.count == c else { return nil }
        return (config.inputMean, config.inputStd)
    }

    /// Class probabilities [N, K] for the whole dataset, in order, without recording a tape.
    public func predict(_ data: Dataset, mean: [Float], std: [Float], batch: Int = 500) -> [Float] {
        var probs = [Float]()
        probs.reserveCapacity(data.count * spec.classes)
        var inference = BatchedInference(dataset: data, mean: mean, std: std)
        inference.chunk = batch
        inference.forEachBatch(indices: Array(0..<data.count), forward: { model($0) }) { logits, _ in probs += softmax(logits).array }
        return probs
    }
}

/// Accuracy, loss and per-class accuracy of predicted probabilities.
public struct EvaluationReport: Codable {
    public var samples: Int
    public var loss: Double
    public var accuracy: Double
    public var perClassAccuracy: [Double]

    public init(probabilities p: [Float], labels: [Int32], classes k: Int) {
        var loss = 0.0, correct = 0
        var classTotal = [Int](repeating: 0, count: k), classCorrect = [Int](repeating: 0, count: k)
        for (i, label) in labels.enumerated() {
            let row = i * k
            let best = p.withUnsafeBufferPointer { argmax($0.baseAddress! + row, count: k) }
            let y = Int(label)
            loss -= Foundation.log(Double(max(p[row + y], 1e-12)))
            classTotal[y] += 1
            if best == y { correct += 1; classCorrect[y] += 1 }
        }
        samples = labels.count
        self.loss = loss / Double(max(1, labels.count))
        accuracy = Double(correct) / Double(max(1, labels.count))
        perClassAccuracy = zip(classCorrect, classTotal).map { $1 > 0 ? Double($0) / Double($1) : 0 }
    }
}

/// Prediction churn between two models (Anil et al. 2018): the fraction of examples whose
/// predicted class differs, and the mean absolute difference of predicted probabilities.
public func predictionChurn(_ a: [Float], _ b: [Float], classes k: Int) -> (disagreement: Double, meanAbsDiff: Double) {
    precondition(a.count == b.count)
    let n = a.count / k
    var differ = 0
    var absDiff = 0.0
    for i in 0..<n {
        let ba = a.withUnsafeBufferPointer { argmax($0.baseAddress! + i * k, count: k) }
        let bb = b.withUnsafeBufferPointer { argmax($0.baseAddress! + i * k, count: k) }
        if ba != bb { differ += 1 }
        for j in 0..<k { absDiff += Double(abs(a[i * k + j] - b[i * k + j])) }
    }
    return (Double(differ) / Double(max(1, n)), absDiff / Double(max(1, a.count)))
}
