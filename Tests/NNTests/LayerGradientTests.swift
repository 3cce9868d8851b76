import XCTest
@testable import NN
import Engine

/// Finite-difference checks through layers and whole models, on parameters and inputs.
final class LayerGradientTests: XCTestCase {
    let tolerance: Float = 1e-3

    /// Checks d(output)/d(input) and d(output)/d(every trainable parameter) of `module`.
    func assertModuleGradients(_ module: Module, input shape: [Int], seed: UInt64 = 1, h: Float = 1e-2,
                               file: StaticString = #filePath, line: UInt = #line) {
        let store = ParameterStore(model: module, seed: seed)
        let x = Tensor.uniform(shape, seed: seed + 100, requiresGrad: true)
        let params = store.trainableParameters.map(\.tensor)
        let r = GradientCheck.check([x] + params, h: h, maxCoordinates: 24) { module(x) }
        let names = ["input"] + store.trainable.map(\.name)
        for (name, e) in zip(names, r.errors) {
            XCTAssertLessThanOrEqual(e, tolerance, "\(type(of: module)) \(name): \(e)", file: file, line: line)
        }
    }

    func testLinearLayer() { assertModuleGradients(Linear(5, 3), input: [4, 5]) }
    func testLinearWithoutBias() { assertModuleGradients(Linear(5, 3, bias: false), input: [4, 5]) }
    func testConvLayer() { assertModuleGradients(Conv2d(2, 3, kernel: 3, stride: 2, padding: 1), input: [2, 2, 5, 5]) }
    func testConvWithoutBias() { assertModuleGradients(Conv2d(2, 3, kernel: 3, padding: 1, bias: false), input: [2, 2, 4, 4]) }
    func testBatchNorm1d() { assertModuleGradients(BatchNorm(4), input: [5, 4]) }
    func testBatchNorm2d() { assertModuleGradients(BatchNorm(3), input: [2, 3, 3, 3]) }
    func testBatchNormEval() {
        let bn = BatchNorm(3)
        let store = ParameterStore(model: bn, seed: 1)
        for i in 0..<3 { store.buffers[i] = Float(i) * 0.1; store.buffers[3 + i] = 1 + Float(i) }
        bn.eval()
        let x = Tensor.uniform([2, 3, 2, 2], seed: 5, requiresGrad: true)
        let r = GradientCheck.check([x, bn.weight.tensor, bn.bias.tensor]) { bn(x) }
        XCTAssertLessThanOrEqual(r.maxError, tolerance, "\(r)")
    }
    func testReshapeUpsampleSequential() {
        let m = Sequential(Linear(6, 8), Reshape([2, 2, 2]), Upsample2x(), Conv2d(2, 1, kernel: 3, padding: 1), Tanh())
        assertModuleGradients(m, input: [3, 6])
    }
    func testPoolingLayers() {
        assertModuleGradients(Sequential(Conv2d(1, 2, kernel: 3, padding: 1), AvgPool2d(2), Sigmoid()), input: [2, 1, 6, 6])
        assertModuleGradients(Sequential(Conv2d(1, 2, kernel: 3, padding: 1), GlobalAvgPool(), LeakyReLU()), input: [2, 1, 4, 4])
    }

    /// Whole models: directional derivatives over the input and every parameter at once
    /// (see GradientCheck.checkDirectional for why single coordinates are too noisy here).
    func assertModelGradients(_ model: Module, input shape: [Int], tolerance: Float = 1e-3,
                              file: StaticString = #filePath, line: UInt = #line) {
        let store = ParameterStore(model: model, seed: 2)
        let x = Tensor.uniform(shape, seed: 3, requiresGrad: true)
        let r = GradientCheck.checkDirectional([x] + store.trainableParameters.map(\.tensor), directions: 3, h: 3e-4) { model(x) }
        XCTAssertLessThanOrEqual(r.maxError, tolerance, "\(type(of: model)): \(r)", file: file, line: line)
    }
    func testMLP() { assertModelGradients(Models.mlp(inFeatures: 12, classes: 3), input: [4, 1, 3, 4]) }
    func testCNN() { assertModelGradients(Models.cnn(inChannels: 1, height: 8, width: 8, classes: 3), input: [3, 1, 8, 8]) }
    func testResNet8() { assertModelGradients(ResNet(depth: 8, inChannels: 1, classes: 3), input: [3, 1, 8, 8]) }
    func testWideResNet() { assertModelGradients(WideResNet(depth: 16, widen: 1, inChannels: 1, classes: 3), input: [3, 1, 8, 8]) }
    /// The generator puts LeakyReLU(0.2) right after batch-normalised values, which crowd around
    /// the kink; the difference quotient then carries kink-crossing error (measured: 3-4e-3 for
    /// h from 1e-3 to 1e-4; the same stack with Tanh in that place checks to 2e-6, and with
    /// slope 0.999 to 2e-5). Every op in it is checked on its own at 1e-3 above.
    func testGenerator() {
        assertModelGradients(Generator(latentDim: 6, ngf: 4, imageShape: [1, 8, 8]), input: [3, 6], tolerance: 1e-2)
    }

    func testDropoutLayerIsIdentityInEval() {
        let d = Dropout(0.5)
        d.eval()
        let x = Tensor.uniform([3, 4], seed: 1)
        XCTAssertEqual(d(x).array, x.array)
    }
}
