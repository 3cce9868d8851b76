import Engine

/// A flat group of floats an optimizer steps in place: `trainableCount` values and, in the same
/// layout, their gradients. A model's ParameterStore is one; so is a free tensor optimised
/// directly (`TensorParameters`), so the synthesisers' pixels and latent codes use the same Adam
/// as models do.
public protocol ParameterGroup {
    var values: UnsafeMutablePointer<Float> { get }
    /// Read at each step (a tensor's gradient buffer appears with its first backward).
    var gradients: UnsafeMutablePointer<Float> { get }
    var trainableCount: Int { get }
}

/// Every trainable parameter of a model, one flat buffer (buffers such as BN statistics are not stepped).
extension ParameterStore: ParameterGroup {}

/// A free tensor's elements as parameters (DeepInversion's pixels, FastDFKD's latent codes).
/// Step only after a backward that reached the tensor, and clear its gradient after the step so
/// the next backward assigns instead of accumulating.
public struct TensorParameters: ParameterGroup {
    public let tensor: Tensor
    public init(_ tensor: Tensor) { self.tensor = tensor }

    public var values: UnsafeMutablePointer<Float> { tensor.data }
    public var gradients: UnsafeMutablePointer<Float> {
        guard tensor.gradIsSet, let g = tensor.grad else {
            preconditionFailure("a tensor is stepped only after a backward that reached it")
        }
        return g
    }
    public var trainableCount: Int { tensor.count }
}
