import XCTest
@testable import NN
import Engine

final class ModelTests: XCTestCase {
    func spec(_ name: String, _ shape: [Int] = [1, 28, 28]) -> ModelSpec { ModelSpec(name: name, inputShape: shape, classes: 10) }

    func testStateDictNamesAndShapesFollowPyTorch() throws {
        let store = ParameterStore(model: try Models.make(spec("cnn")), seed: 1)
        XCTAssertEqual(store.trainable.map(\.name), [
            "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
            "features.4.weight", "features.4.bias", "features.5.weight", "features.5.bias",
            "classifier.1.weight", "classifier.1.bias", "classifier.3.weight", "classifier.3.bias"])
        XCTAssertEqual(store.view(named: "features.4.weight")?.shape, [64, 32, 3, 3])
        XCTAssertEqual(store.view(named: "classifier.1.weight")?.shape, [128, 3136])
        XCTAssertEqual(store.buffersLayout.map(\.name), [
            "features.1.running_mean", "features.1.running_var", "features.5.running_mean", "features.5.running_var"])
        XCTAssertEqual(store.trainableCount, 320 + 64 + 18496 + 128 + 401_536 + 1290)
        let mlp = ParameterStore(model: try Models.make(spec("mlp")), seed: 1)
        XCTAssertEqual(mlp.trainableCount, 784 * 256 + 256 + 256 * 256 + 256 + 2570)
        XCTAssertEqual(mlp.trainable.first?.name, "1.weight")
    }

    func testEveryModelBuildsAndRuns() throws {
        for name in Models.names {
            for shape in [[1, 28, 28], [3, 32, 32]] {
                let model = try Models.make(spec(name, shape))
                _ = ParameterStore(model: model, seed: 3)
                let y = withNoGrad { model(Tensor.uniform([2] + shape, seed: 1)) }
                XCTAssertEqual(y.shape, [2, 10], "\(name) on \(shape)")
                XCTAssert(y.array.allSatisfy(\.isFinite), "\(name) on \(shape)")
            }
        }
        let g = Generator(latentDim: 16, ngf: 8, imageShape: [3, 32, 32])
        _ = ParameterStore(model: g, seed: 1)
        let img = withNoGrad { g(Tensor.normal([2, 16], seed: 1)) }
        XCTAssertEqual(img.shape, [2, 3, 32, 32])
        XCTAssert(img.array.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    /// The blocked SIMD gradient norm against a plain Double loop; a NaN or infinity anywhere
    /// (including the scalar tail) makes it non-finite.
    func testGradientNormMatchesANaiveSumAndSeesEveryNaN() throws {
        let store = ParameterStore(model: try Models.make(ModelSpec(name: "mlp", inputShape: [1, 7, 9], classes: 3)), seed: 1)
        let n = store.trainableCount
        XCTAssertNotEqual(n % 16, 0, "the test wants a scalar tail")
        var rng = RandomGenerator(seed: 5)
        for i in 0..<n { store.gradients[i] = rng.normal() * 1e-3 }
        var naive = 0.0
        for i in 0..<n { naive += Double(store.gradients[i]) * Double(store.gradients[i]) }
        XCTAssertEqual(store.gradientNorm(), naive.squareRoot(), accuracy: 1e-6 * naive.squareRoot())
        for position in [0, n / 2, n - 1] {
            let kept = store.gradients[position]
            store.gradients[position] = .nan
            XCTAssert(store.gradientNorm().isNaN, "a NaN at \(position) of \(n)")
            store.gradients[position] = .infinity
            XCTAssertFalse(store.gradientNorm().isFinite, "an infinity at \(position) of \(n)")
            store.gradients[position] = kept
        }
    }

    func testUnknownModelSaysWhatExists() {
        XCTAssertThrowsError(try Models.make(spec("resnet9000"))) { error in
            XCTAssert("\(error)".contains("unknown model 'resnet9000'") && "\(error)".contains("cnn"), "\(error)")
        }
    }

    func testSameSeedSameWeightsDifferentSeedDifferentWeights() throws {
        let a = ParameterStore(model: try Models.make(spec("resnet8")), seed: 42)
        let b = ParameterStore(model: try Models.make(spec("resnet8")), seed: 42)
        let c = ParameterStore(model: try Models.make(spec("resnet8")), seed: 43)
        XCTAssertEqual(a.checksum(), b.checksum())
        XCTAssertEqual(memcmp(a.values, b.values, a.trainableCount * 4), 0)
        XCTAssertNotEqual(a.checksum(), c.checksum())
    }

    func testParametersAreViewsOfTheStore() throws {
        let model = try Models.make(spec("mlp"))
        let store = ParameterStore(model: model, seed: 1)
        let first = store.trainableParameters[0].tensor
        XCTAssertEqual(first.data, store.values)
        store.values[0] = 123
        XCTAssertEqual(first[0], 123)
        // Backward writes straight into the flat gradient buffer.
        store.zeroGrad()
        Tape.current.backward(crossEntropy(model(Tensor.uniform([4, 1, 28, 28], seed: 2)), labels: [0, 1, 2, 3]))
        store.finalizeGradients()
        XCTAssertNotEqual(store.gradients[0], 0)
    }

    func testFusedBatchNormReLUMatchesSeparateLayers() throws {
        // Sequential fuses BN+ReLU; the same layers run one by one must agree bit for bit.
        let seq = Sequential(Conv2d(1, 4, kernel: 3, padding: 1), BatchNorm(4), ReLU())
        _ = ParameterStore(model: seq, seed: 9)
        let x = Tensor.uniform([2, 1, 5, 5], seed: 4)
        let fused = withNoGrad { seq(x) }
        let separate = withNoGrad { seq.layers[2](seq.layers[1](seq.layers[0](x))) }
        XCTAssertEqual(fused.array, separate.array)
    }

    func testGradientAccumulationEqualsFullBatch() throws {
        // Two half-batches accumulated (each loss halved) = one full batch, for a BN-free model.
        let model = Models.mlp(inFeatures: 8, classes: 3)
        let store = ParameterStore(model: model, seed: 5)
        let x = Tensor.uniform([6, 8], seed: 6), labels = [0, 1, 2, 2, 1, 0]
        store.zeroGrad()
        Tape.current.backward(crossEntropy(model(x), labels: labels))
        let full = Array(UnsafeBufferPointer(start: store.gradients, count: store.trainableCount))
        store.zeroGrad()
        for half in 0..<2 {
            let xs = Tensor(Array(x.array[(half * 24)..<(half * 24 + 24)]), shape: [3, 8])
            Tape.current.backward(scale(crossEntropy(model(xs), labels: Array(labels[(half * 3)..<(half * 3 + 3)])), 0.5))
        }
        store.finalizeGradients()
        for i in 0..<store.trainableCount { XCTAssertEqual(store.gradients[i], full[i], accuracy: 1e-6) }
    }

    func testBatchNormCapturesInputMoments() throws {
        let bn = BatchNorm(2)
        _ = ParameterStore(model: bn, seed: 1)
        bn.capturesInputMoments = true
        let x = Tensor.uniform([3, 2, 2, 2], seed: 1, requiresGrad: true)
        _ = bn(x)
        let m = try XCTUnwrap(bn.inputMoments)
        XCTAssertEqual(m.mean.shape, [2])
        // The loss on the moments reaches the input (the data-free BN-statistics loss needs this).
        Tape.current.backward(add(sum(m.mean), sum(m.variance)))
        XCTAssertNotNil(x.gradArray)
        XCTAssertEqual(bn.numBatchesTracked, 1)
    }
}
