import Engine

/// A trainable weight or a non-trained buffer (BatchNorm running statistics) declared by a layer.
///
/// Until a `ParameterStore` binds it, `tensor` is a standalone tensor; afterwards it is a view
/// into the store's contiguous buffer (and its gradient a view into the gradient buffer).
public final class Parameter {
    public enum Kind { case trainable, buffer }
    public enum Initializer {
        case zeros, ones
        /// U(-bound, bound): PyTorch's default for Linear/Conv weights and biases is 1/sqrt(fan_in).
        case uniform(bound: Float)
        /// N(0, std^2)
        case normal(std: Float)
    }

    public let shape: [Int]
    public let kind: Kind
    public let initializer: Initializer
    public internal(set) var tensor: Tensor

    public init(shape: [Int], kind: Kind = .trainable, initializer: Initializer) {
        self.shape = shape
        self.kind = kind
        self.initializer = initializer
        self.tensor = Tensor(zeros: shape, requiresGrad: kind == .trainable)
    }

    public var count: Int { tensor.count }
}

/// The base of every layer and model: named parameters, named children, train/eval mode.
/// Names compose like PyTorch's `state_dict` keys (`features.0.weight`).
open class Module {
    public private(set) var training = true

    public init() {}

    /// This module's own parameters and buffers, in declaration order.
    open var localParameters: [(String, Parameter)] { [] }
    /// Direct submodules, in order.
    open var children: [(String, Module)] { [] }

    open func forward(_ x: Tensor) -> Tensor { fatalError("\(type(of: self)) must implement forward") }

    public func callAsFunction(_ x: Tensor) -> Tensor { forward(x) }

    /// Every parameter and buffer below this module with its full dotted name.
    public func namedParameters(prefix: String = "") -> [(String, Parameter)] {
        var out = localParameters.map { (prefix + $0.0, $0.1) }
        for (name, child) in children {
            out += child.namedParameters(prefix: prefix + name + ".")
        }
        return out
    }

    /// Every module in the tree, depth first, with its dotted name.
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (name, child) in children {
            out += child.namedModules(prefix: prefix.isEmpty ? name : prefix + "." + name)
        }
        return out
    }

    public func setTraining(_ on: Bool) {
        training = on
        for (_, child) in children { child.setTraining(on) }
    }
    public func train() { setTraining(true) }
    public func eval() { setTraining(false) }
}
