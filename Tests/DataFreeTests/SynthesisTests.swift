import Engine
import Foundation
import NN
import XCTest
@testable import DataFree

/// The synthesisers on a small teacher whose BatchNorm statistics are set by hand: both must
/// drive the inversion loss down, and FastDFKD's meta-generator must start later rounds from
/// better images than the first (what makes a few steps per batch enough).
final class SynthesisTests: XCTestCase {
    /// A teacher whose BN running statistics are those of a reference batch (smooth bright
    /// stripes), so the statistics the synthesisers chase are reachable by some images.
    func teacher() throws -> (Module, ParameterStore) {
        let model = try Models.make(ModelSpec(name: "cnn", inputShape: [1, 8, 8], classes: 4))
        let store = ParameterStore(model: model, seed: 5)
        model.eval()
        let reference = Tensor(uninitialized: [32, 1, 8, 8])
        for n in 0..<32 { for i in 0..<64 {
            reference.data[n * 64 + i] = 1.5 + Float(Foundation.sin(Double(i % 8 + n) * 0.7))
        } }
        for (_, bn) in store.batchNorms { bn.capturesInputMoments = true }
        withNoGrad { _ = model(reference) }
        for (_, bn) in store.batchNorms {
            let (m, v) = bn.inputMoments!
            bn.runningMean.tensor.data.update(from: m.data, count: m.count)
            bn.runningVar.tensor.data.update(from: v.data, count: v.count)
            bn.capturesInputMoments = false
            bn.clearInputMoments()
        }
        return (model, store)
    }

    func config(_ method: SynthesisMethod, steps: Int) -> SynthesisConfig {
        var c = SynthesisConfig()
        c.method = method
        c.batch = 16
        c.steps = steps
        c.advWeight = 0
        c.latentDim = 16
        c.generatorWidth = 8
        c.lr = method == .fastDFKD ? 0.01 : 0.1
        c.statisticsMomentum = 0
        return c
    }

    func testFastDFKDMetaGeneratorImprovesAcrossRounds() throws {
        let (model, store) = try teacher()
        let probe = TeacherProbe(model: model, store: store, momentum: 0)
        let s = Synthesizer(config: config(.fastDFKD, steps: 3), teacher: probe, student: nil, imageShape: [1, 8, 8],
                            classes: 4, mean: [0.3], std: [0.3])
        let losses = (0..<12).map { _ in s.synthesize().loss }
        let late = losses.suffix(3).reduce(0, +) / 3
        XCTAssertLessThan(late, 0.8 * losses[0], "rounds' best losses: \(losses)")
        XCTAssertTrue(store.trainableParameters.allSatisfy { !$0.tensor.requiresGrad }, "the teacher stays frozen")
    }

    func testDeepInversionLowersTheLossWithinABatch() throws {
        let (model, store) = try teacher()
        let probe = TeacherProbe(model: model, store: store, momentum: 0)
        let few = Synthesizer(config: config(.deepInversion, steps: 1), teacher: probe, student: nil, imageShape: [1, 8, 8],
                              classes: 4, mean: [0], std: [1]).synthesize()
        let many = Synthesizer(config: config(.deepInversion, steps: 100), teacher: probe, student: nil, imageShape: [1, 8, 8],
                               classes: 4, mean: [0], std: [1]).synthesize()
        XCTAssertLessThan(many.loss, 0.5 * few.loss, "1 step: \(few.loss), 100 steps: \(many.loss)")
        XCTAssertEqual(many.images.shape, [16, 1, 8, 8])
    }
}
