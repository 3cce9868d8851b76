import Engine

/// y = x W^T + b; W [out, in].
public final class Linear: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let inFeatures: Int, outFeatures: Int

    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = 1 / Float(inFeatures).squareRoot()
        weight = Parameter(shape: [outFeatures, inFeatures], initializer: .uniform(bound: bound))
        self.bias = bias ? Parameter(shape: [outFeatures], initializer: .uniform(bound: bound)) : nil
    }
    override public var localParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
    override public func forward(_ x: Tensor) -> Tensor {
        linear(x.rank == 2 ? x : flatten(x), weight.tensor, bias?.tensor)
    }
}

/// 2-D convolution; weight [out, in, k, k].
public final class Conv2d: Module {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int, padding: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true) {
        self.stride = stride
        self.padding = padding
        let bound = 1 / Float(inChannels * kernel * kernel).squareRoot()
        weight = Parameter(shape: [outChannels, inChannels, kernel, kernel], initializer: .uniform(bound: bound))
        self.bias = bias ? Parameter(shape: [outChannels], initializer: .uniform(bound: bound)) : nil
    }
    override public var localParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
    override public func forward(_ x: Tensor) -> Tensor {
        conv2d(x, weight.tensor, bias?.tensor, stride: stride, padding: padding)
    }
}

/// BatchNorm1d ([N, C]) and BatchNorm2d ([N, C, H, W]) in one type: the kernel is the same.
public final class BatchNorm: Module {
    public let weight: Parameter, bias: Parameter
    public let runningMean: Parameter, runningVar: Parameter
    /// PyTorch's num_batches_tracked: an integer, kept outside the float buffers.
    public var numBatchesTracked = 0
    public let momentum: Float, eps: Float
    /// When set, each forward also records the batch mean/variance of its input (differentiable),
    /// for the data-free BN-statistics loss.
    public var capturesInputMoments = false
    public private(set) var inputMoments: (mean: Tensor, variance: Tensor)?

    public init(_ channels: Int, momentum: Float = 0.1, eps: Float = 1e-5) {
        self.momentum = momentum
        self.eps = eps
        weight = Parameter(shape: [channels], initializer: .ones)
        bias = Parameter(shape: [channels], initializer: .zeros)
        runningMean = Parameter(shape: [channels], kind: .buffer, initializer: .zeros)
        runningVar = Parameter(shape: [channels], kind: .buffer, initializer: .ones)
    }
    override public var localParameters: [(String, Parameter)] {
        [("weight", weight), ("bias", bias), ("running_mean", runningMean), ("running_var", runningVar)]
    }
    override public func forward(_ x: Tensor) -> Tensor { forward(x, fusedReLU: false) }

    public func forward(_ x: Tensor, fusedReLU: Bool) -> Tensor {
        if capturesInputMoments { inputMoments = batchMoments(x) }
        if training { numBatchesTracked += 1 }
        return batchNorm(x, weight: weight.tensor, bias: bias.tensor,
                         runningMean: runningMean.tensor, runningVar: runningVar.tensor,
                         training: training, momentum: momentum, eps: eps, fusedReLU: fusedReLU)
    }
    /// maxPool2d(relu(self(x)), 2) in one fused pass (see batchNormReLUMaxPool2x2).
    public func forwardReLUMaxPool2x2(_ x: Tensor) -> Tensor {
        if capturesInputMoments { inputMoments = batchMoments(x) }
        if training { numBatchesTracked += 1 }
        return batchNormReLUMaxPool2x2(x, weight: weight.tensor, bias: bias.tensor,
                                       runningMean: runningMean.tensor, runningVar: runningVar.tensor,
                                       training: training, momentum: momentum, eps: eps)
    }
    public func clearInputMoments() { inputMoments = nil }
}

public final class ReLU: Module {
    override public func forward(_ x: Tensor) -> Tensor { relu(x) }
}

public final class LeakyReLU: Module {
    public let slope: Float
    public init(slope: Float = 0.2) { self.slope = slope }
    override public func forward(_ x: Tensor) -> Tensor { leakyReLU(x, slope: slope) }
}

public final class Tanh: Module {
    override public func forward(_ x: Tensor) -> Tensor { Engine.tanh(x) }
}

public final class Sigmoid: Module {
    override public func forward(_ x: Tensor) -> Tensor { Engine.sigmoid(x) }
}

public final class MaxPool2d: Module {
    public let kernel: Int, stride: Int, padding: Int
    public init(_ kernel: Int, stride: Int? = nil, padding: Int = 0) {
        self.kernel = kernel; self.stride = stride ?? kernel; self.padding = padding
    }
    override public func forward(_ x: Tensor) -> Tensor { maxPool2d(x, kernel: kernel, stride: stride, padding: padding) }
    /// 2x2 windows, stride 2, no padding: the case batch norm and ReLU can fuse into.
    public var isPlain2x2: Bool { kernel == 2 && stride == 2 && padding == 0 }
}

public final class AvgPool2d: Module {
    public let kernel: Int, stride: Int
    public init(_ kernel: Int, stride: Int? = nil) { self.kernel = kernel; self.stride = stride ?? kernel }
    override public func forward(_ x: Tensor) -> Tensor { avgPool2d(x, kernel: kernel, stride: stride) }
}

/// [N, C, H, W] -> [N, C]
public final class GlobalAvgPool: Module {
    override public func forward(_ x: Tensor) -> Tensor { globalAvgPool(x) }
}

public final class Flatten: Module {
    override public func forward(_ x: Tensor) -> Tensor { flatten(x) }
}

/// Reshapes each sample to `shape` (the batch axis is kept).
public final class Reshape: Module {
    public let shape: [Int]
    public init(_ shape: [Int]) { self.shape = shape }
    override public func forward(_ x: Tensor) -> Tensor { reshape(x, [x.shape[0]] + shape) }
}

public final class Upsample2x: Module {
    override public func forward(_ x: Tensor) -> Tensor { upsampleNearest2x(x) }
}

public final class Dropout: Module {
    public let p: Float
    public var rng: RandomGenerator
    public init(_ p: Float, seed: UInt64 = 0) { self.p = p; rng = RandomGenerator(seed: seed, stream: "dropout") }
    override public func forward(_ x: Tensor) -> Tensor { dropout(x, p: p, training: training, rng: &rng) }
}

/// Layers applied in order, named "0", "1", ... like torch.nn.Sequential.
/// A BatchNorm directly followed by a ReLU runs as one fused pass (same result, one fewer
/// pass over the activation and one fewer tensor); BatchNorm, ReLU, MaxPool2d(2) runs as one
/// pass that writes only the pooled output.
public final class Sequential: Module {
    public let layers: [Module]
    public init(_ layers: [Module]) { self.layers = layers }
    public convenience init(_ layers: Module...) { self.init(layers) }
    override public var children: [(String, Module)] { layers.enumerated().map { (String($0.offset), $0.element) } }
    override public func forward(_ x: Tensor) -> Tensor {
        var h = x
        var i = 0
        while i < layers.count {
            if let bn = layers[i] as? BatchNorm, i + 2 < layers.count, layers[i + 1] is ReLU,
               let pool = layers[i + 2] as? MaxPool2d, pool.isPlain2x2, h.rank == 4 {
                h = bn.forwardReLUMaxPool2x2(h)
                i += 3
            } else if let bn = layers[i] as? BatchNorm, i + 1 < layers.count, layers[i + 1] is ReLU {
                h = bn.forward(h, fusedReLU: true)
                i += 2
            } else {
                h = layers[i].forward(h)
                i += 1
            }
        }
        return h
    }
}

/// Named children applied in order (for models whose state_dict names are words, not indices).
public final class NamedSequential: Module {
    public let named: [(String, Module)]
    public init(_ named: [(String, Module)]) { self.named = named }
    override public var children: [(String, Module)] { named }
    override public func forward(_ x: Tensor) -> Tensor {
        named.reduce(x) { $1.1.forward($0) }
    }
}
