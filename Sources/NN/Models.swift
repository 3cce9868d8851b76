import Engine

/// What a model needs to be rebuilt: its name, the input shape (C, H, W) and the class count.
/// Stored in checkpoints (as JSON) so `eval` and `resume` rebuild exactly the same network.
public struct ModelSpec: Codable, Equatable {
    public var name: String
    public var inputShape: [Int]
    public var classes: Int
    public init(name: String, inputShape: [Int], classes: Int) {
        self.name = name; self.inputShape = inputShape; self.classes = classes
    }
}

public enum ModelError: Error, CustomStringConvertible {
    case unknownModel(String)
    case badInput(String)
    public var description: String {
        switch self {
        case .unknownModel(let name):
            return "unknown model '\(name)'; choose one of: \(Models.names.joined(separator: ", "))"
        case .badInput(let why): return why
        }
    }
}

public enum Models {
    public static let names = ["mlp", "cnn", "resnet8", "resnet20", "wrn-16-1", "wrn-16-2"]

    /// Builds a classifier by name for inputs of shape (C, H, W).
    public static func make(_ spec: ModelSpec) throws -> Module {
        guard spec.inputShape.count == 3, spec.inputShape.allSatisfy({ $0 > 0 }), spec.classes > 1 else {
            throw ModelError.badInput("model input must be (C, H, W) with positive sizes and >= 2 classes, got \(spec.inputShape), \(spec.classes) classes")
        }
        let c = spec.inputShape[0], h = spec.inputShape[1], w = spec.inputShape[2]
        switch spec.name {
        case "mlp":
            return mlp(inFeatures: c * h * w, classes: spec.classes)
        case "cnn":
            guard h >= 4, w >= 4 else { throw ModelError.badInput("cnn needs inputs of at least 4x4, got \(h)x\(w)") }
            return cnn(inChannels: c, height: h, width: w, classes: spec.classes)
        case "resnet8": return ResNet(depth: 8, inChannels: c, classes: spec.classes)
        case "resnet20": return ResNet(depth: 20, inChannels: c, classes: spec.classes)
        case "wrn-16-1": return WideResNet(depth: 16, widen: 1, inChannels: c, classes: spec.classes)
        case "wrn-16-2": return WideResNet(depth: 16, widen: 2, inChannels: c, classes: spec.classes)
        default: throw ModelError.unknownModel(spec.name)
        }
    }

    /// Linear(784->256)-ReLU-Linear(256->256)-ReLU-Linear(256->10) for Fashion-MNIST.
    /// state_dict names match torch.nn.Sequential(Flatten(), Linear, ReLU, Linear, ReLU, Linear).
    public static func mlp(inFeatures: Int, classes: Int) -> Module {
        Sequential(Flatten(), Linear(inFeatures, 256), ReLU(), Linear(256, 256), ReLU(), Linear(256, classes))
    }

    /// The reference CNN: Conv(C->32,3x3,pad 1)-BN-ReLU-MaxPool2 - Conv(32->64,3x3,pad 1)-BN-ReLU-MaxPool2
    /// - Flatten - Linear(64*(H/4)*(W/4) -> 128)-ReLU - Linear(128 -> classes).
    public static func cnn(inChannels: Int, height: Int, width: Int, classes: Int) -> Module {
        let features = Sequential(
            Conv2d(inChannels, 32, kernel: 3, padding: 1), BatchNorm(32), ReLU(), MaxPool2d(2),
            Conv2d(32, 64, kernel: 3, padding: 1), BatchNorm(64), ReLU(), MaxPool2d(2))
        let classifier = Sequential(
            Flatten(), Linear(64 * (height / 4) * (width / 4), 128), ReLU(), Linear(128, classes))
        return NamedSequential([("features", features), ("classifier", classifier)])
    }
}
