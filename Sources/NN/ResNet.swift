import Engine

/// CIFAR-style ResNet basic block (He et al. 2016): conv3x3-BN-ReLU-conv3x3-BN, plus the input
/// (through a 1x1 conv + BN when the shape changes), then ReLU.
public final class BasicBlock: Module {
    let conv1: Conv2d, bn1: BatchNorm, conv2: Conv2d, bn2: BatchNorm
    let shortcut: Sequential?

    public init(_ inPlanes: Int, _ planes: Int, stride: Int) {
        conv1 = Conv2d(inPlanes, planes, kernel: 3, stride: stride, padding: 1, bias: false)
        bn1 = BatchNorm(planes)
        conv2 = Conv2d(planes, planes, kernel: 3, stride: 1, padding: 1, bias: false)
        bn2 = BatchNorm(planes)
        shortcut = (stride != 1 || inPlanes != planes)
            ? Sequential(Conv2d(inPlanes, planes, kernel: 1, stride: stride, bias: false), BatchNorm(planes))
            : nil
    }
    override public var children: [(String, Module)] {
        [("conv1", conv1), ("bn1", bn1), ("conv2", conv2), ("bn2", bn2)] + (shortcut.map { [("shortcut", $0)] } ?? [])
    }
    override public func forward(_ x: Tensor) -> Tensor {
        let h = bn2(conv2(bn1.forward(conv1(x), fusedReLU: true)))
        return relu(add(h, shortcut?.forward(x) ?? x))
    }
}

/// ResNet-(6n+2) for 32x32-style inputs: 16-32-64 channels, n blocks per stage.
public final class ResNet: Module {
    let conv1: Conv2d, bn1: BatchNorm
    let layer1: Sequential, layer2: Sequential, layer3: Sequential
    let linear: Linear

    public init(depth: Int, inChannels: Int, classes: Int) {
        precondition((depth - 2) % 6 == 0, "ResNet depth must be 6n+2")
        let n = (depth - 2) / 6
        conv1 = Conv2d(inChannels, 16, kernel: 3, padding: 1, bias: false)
        bn1 = BatchNorm(16)
        func stage(_ inPlanes: Int, _ planes: Int, _ stride: Int) -> Sequential {
            Sequential((0..<n).map { BasicBlock($0 == 0 ? inPlanes : planes, planes, stride: $0 == 0 ? stride : 1) })
        }
        layer1 = stage(16, 16, 1)
        layer2 = stage(16, 32, 2)
        layer3 = stage(32, 64, 2)
        linear = Linear(64, classes)
    }
    override public var children: [(String, Module)] {
        [("conv1", conv1), ("bn1", bn1), ("layer1", layer1), ("layer2", layer2), ("layer3", layer3), ("linear", linear)]
    }
    override public func forward(_ x: Tensor) -> Tensor {
        let h = layer3(layer2(layer1(bn1.forward(conv1(x), fusedReLU: true))))
        return linear(globalAvgPool(h))
    }
}

/// Wide ResNet pre-activation block (Zagoruyko & Komodakis 2016): BN-ReLU-conv3x3-BN-ReLU-conv3x3,
/// with a 1x1 conv shortcut on the activated input when the shape changes.
public final class WideBasicBlock: Module {
    let bn1: BatchNorm, conv1: Conv2d, bn2: BatchNorm, conv2: Conv2d
    let convShortcut: Conv2d?

    public init(_ inPlanes: Int, _ outPlanes: Int, stride: Int) {
        bn1 = BatchNorm(inPlanes)
        conv1 = Conv2d(inPlanes, outPlanes, kernel: 3, stride: stride, padding: 1, bias: false)
        bn2 = BatchNorm(outPlanes)
        conv2 = Conv2d(outPlanes, outPlanes, kernel: 3, stride: 1, padding: 1, bias: false)
        convShortcut = (inPlanes != outPlanes || stride != 1)
            ? Conv2d(inPlanes, outPlanes, kernel: 1, stride: stride, bias: false) : nil
    }
    override public var children: [(String, Module)] {
        [("bn1", bn1), ("conv1", conv1), ("bn2", bn2), ("conv2", conv2)]
            + (convShortcut.map { [("convShortcut", $0)] } ?? [])
    }
    override public func forward(_ x: Tensor) -> Tensor {
        let a = bn1.forward(x, fusedReLU: true)
        let h = conv2(bn2.forward(conv1(a), fusedReLU: true))
        return add(h, convShortcut?.forward(a) ?? x)
    }
}

/// WRN-depth-width: 16k-32k-64k channels, (depth-4)/6 blocks per stage.
public final class WideResNet: Module {
    let conv1: Conv2d
    let block1: Sequential, block2: Sequential, block3: Sequential
    let bn1: BatchNorm
    let fc: Linear

    public init(depth: Int, widen: Int, inChannels: Int, classes: Int) {
        precondition((depth - 4) % 6 == 0, "WideResNet depth must be 6n+4")
        let n = (depth - 4) / 6
        let widths = [16, 16 * widen, 32 * widen, 64 * widen]
        conv1 = Conv2d(inChannels, widths[0], kernel: 3, padding: 1, bias: false)
        func stage(_ inPlanes: Int, _ outPlanes: Int, _ stride: Int) -> Sequential {
            Sequential((0..<n).map { WideBasicBlock($0 == 0 ? inPlanes : outPlanes, outPlanes, stride: $0 == 0 ? stride : 1) })
        }
        block1 = stage(widths[0], widths[1], 1)
        block2 = stage(widths[1], widths[2], 2)
        block3 = stage(widths[2], widths[3], 2)
        bn1 = BatchNorm(widths[3])
        fc = Linear(widths[3], classes)
    }
    override public var children: [(String, Module)] {
        [("conv1", conv1), ("block1", block1), ("block2", block2), ("block3", block3), ("bn1", bn1), ("fc", fc)]
    }
    override public func forward(_ x: Tensor) -> Tensor {
        let h = block3(block2(block1(conv1(x))))
        return fc(globalAvgPool(bn1.forward(h, fusedReLU: true)))
    }
}
