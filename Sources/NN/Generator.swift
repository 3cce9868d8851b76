import Engine

/// The FastDFKD / DFAD-style generator (Fang et al. 2022): z -> Linear -> [2*ngf, S/4, S/4]
/// -> BN -> Up2 -> Conv3x3 -> BN -> LeakyReLU -> Up2 -> Conv3x3 -> BN -> LeakyReLU -> Conv3x3 -> Sigmoid
/// (images in [0, 1]; normalisation happens outside, as in the reference implementation).
public final class Generator: Module {
    public let latentDim: Int, imageShape: [Int]
    let l1: Linear
    let convBlocks: Sequential
    let initSize: Int, ngf: Int

    public init(latentDim: Int = 256, ngf: Int = 64, imageShape: [Int]) {
        precondition(imageShape.count == 3 && imageShape[1] % 4 == 0 && imageShape[1] == imageShape[2],
                     "generator images must be square with a side divisible by 4, got \(imageShape)")
        self.latentDim = latentDim
        self.imageShape = imageShape
        self.ngf = ngf
        initSize = imageShape[1] / 4
        l1 = Linear(latentDim, ngf * 2 * initSize * initSize)
        convBlocks = Sequential(
            BatchNorm(ngf * 2),
            Upsample2x(),
            Conv2d(ngf * 2, ngf * 2, kernel: 3, stride: 1, padding: 1, bias: false),
            BatchNorm(ngf * 2),
            LeakyReLU(slope: 0.2),
            Upsample2x(),
            Conv2d(ngf * 2, ngf, kernel: 3, stride: 1, padding: 1, bias: false),
            BatchNorm(ngf),
            LeakyReLU(slope: 0.2),
            Conv2d(ngf, imageShape[0], kernel: 3, stride: 1, padding: 1),
            Sigmoid())
    }
    override public var children: [(String, Module)] { [("l1", l1), ("conv_blocks", convBlocks)] }

    /// z [N, latentDim] -> images [N, C, H, W]
    override public func forward(_ z: Tensor) -> Tensor {
        let h = reshape(l1(z), [z.shape[0], ngf * 2, initSize, initSize])
        return convBlocks(h)
    }
}
