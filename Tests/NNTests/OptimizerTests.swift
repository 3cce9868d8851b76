import XCTest
@testable import NN
import Engine

/// Optimizer trajectories against torch.optim (Golden/optimizer_reference.py), and LR schedules.
final class OptimizerTests: XCTestCase {
    final class Vector: Module {
        let p = Parameter(shape: [3], initializer: .zeros)
        override var localParameters: [(String, Parameter)] { [("p", p)] }
    }

    let reference: [String: [Float]] = [
        "sgd": [0.058099468, -0.638125384, -0.258957054],
        "sgdNesterov": [-0.103513523, -0.368694018, -0.317663347],
        "sgdPlain": [0.6380495, -1.452438125, 0.260431281],
        "adam": [0.504025511, -1.498484929, 0.052922002],
        "adamw": [0.500039718, -1.489483673, 0.051659587],
    ]

    func trajectory(_ make: (ParameterStore) -> Optimizer) -> [Float] {
        let store = ParameterStore(model: Vector(), seed: 0)
        store.values[0] = 1; store.values[1] = -2; store.values[2] = 0.5
        let opt = make(store)
        for t in 0..<5 {
            let base: [Float] = [0.3, -0.1 * Float(t), 0.7 - 0.2 * Float(t)]
            for i in 0..<3 { store.gradients[i] = base[i] + 0.5 * store.values[i] }
            opt.step(lr: 0.1)
        }
        return (0..<3).map { store.values[$0] }
    }

    func assertTrajectory(_ name: String, _ make: (ParameterStore) -> Optimizer) {
        let got = trajectory(make), want = reference[name]!
        for i in 0..<3 { XCTAssertEqual(got[i], want[i], accuracy: 1e-5, "\(name)[\(i)]") }
    }

    func testSGDMatchesTorch() {
        assertTrajectory("sgd") { SGD(parameters: $0, momentum: 0.9, weightDecay: 0.01) }
        assertTrajectory("sgdNesterov") { SGD(parameters: $0, momentum: 0.9, weightDecay: 0.01, nesterov: true) }
        assertTrajectory("sgdPlain") { SGD(parameters: $0, momentum: 0) }
    }

    func testAdamMatchesTorch() {
        assertTrajectory("adam") { Adam(parameters: $0, weightDecay: 0.01) }
        assertTrajectory("adamw") { Adam(parameters: $0, weightDecay: 0.01, decoupled: true) }
    }

    final class Wide: Module {
        let p = Parameter(shape: [35], initializer: .zeros)
        override var localParameters: [(String, Parameter)] { [("p", p)] }
    }

    /// 35 values repeating the 3-element case: two 16-lane chunks and a scalar tail of 3. Every
    /// element must follow torch's trajectory, and the vector lanes must equal the scalar tail
    /// bit for bit (same arithmetic in the same order).
    func testVectorisedUpdatesMatchTheScalarTail() {
        let makers: [(String, (ParameterStore) -> Optimizer)] = [
            ("sgd", { SGD(parameters: $0, momentum: 0.9, weightDecay: 0.01) }),
            ("sgdNesterov", { SGD(parameters: $0, momentum: 0.9, weightDecay: 0.01, nesterov: true) }),
            ("sgdPlain", { SGD(parameters: $0, momentum: 0) }),
            ("adam", { Adam(parameters: $0, weightDecay: 0.01) }),
            ("adamw", { Adam(parameters: $0, weightDecay: 0.01, decoupled: true) }),
        ]
        for (name, make) in makers {
            let store = ParameterStore(model: Wide(), seed: 0)
            let start: [Float] = [1, -2, 0.5]
            for i in 0..<35 { store.values[i] = start[i % 3] }
            let opt = make(store)
            for t in 0..<5 {
                let base: [Float] = [0.3, -0.1 * Float(t), 0.7 - 0.2 * Float(t)]
                for i in 0..<35 { store.gradients[i] = base[i % 3] + 0.5 * store.values[i] }
                opt.step(lr: 0.1)
            }
            let want = reference[name]!
            for i in 0..<35 {
                XCTAssertEqual(store.values[i], want[i % 3], accuracy: 1e-5, "\(name)[\(i)]")
                let tail = (32..<35).first { $0 % 3 == i % 3 }!
                XCTAssertEqual(store.values[i], store.values[tail], "\(name)[\(i)]: vector lane vs scalar tail")
            }
        }
    }

    func testSchedules() {
        let constant = LRSchedule(base: 0.1)
        XCTAssertEqual(constant.lr(at: 1000), 0.1)
        let step = LRSchedule(base: 0.1, shape: .step(every: 10, gamma: 0.5))
        XCTAssertEqual(step.lr(at: 9), 0.1, accuracy: 1e-7)
        XCTAssertEqual(step.lr(at: 10), 0.05, accuracy: 1e-7)
        XCTAssertEqual(step.lr(at: 25), 0.025, accuracy: 1e-7)
        let cosine = LRSchedule(base: 0.1, shape: .cosine(totalSteps: 100, minLR: 0))
        XCTAssertEqual(cosine.lr(at: 0), 0.1, accuracy: 1e-7)
        XCTAssertEqual(cosine.lr(at: 50), 0.05, accuracy: 1e-6)
        XCTAssertEqual(cosine.lr(at: 100), 0, accuracy: 1e-7)
        let warm = LRSchedule(base: 0.1, shape: .cosine(totalSteps: 110, minLR: 0), warmupSteps: 10)
        XCTAssertEqual(warm.lr(at: 0), 0.01, accuracy: 1e-7)
        XCTAssertEqual(warm.lr(at: 9), 0.1, accuracy: 1e-7)
        XCTAssertEqual(warm.lr(at: 10), 0.1, accuracy: 1e-7)
        XCTAssertEqual(warm.lr(at: 60), 0.05, accuracy: 1e-6)
    }
}
