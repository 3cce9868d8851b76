import Engine
import Foundation
import NN
import RunConfig

/// Data-free synthesis: images made from a trained teacher alone, for distilling a student.
///
/// Both methods minimise, over a batch of synthetic images x with sampled target classes y,
///     bn * sum over the teacher's BatchNorm layers of (||mu(x_l) - mu_l|| + ||var(x_l) - var_l||)
///   + oh * CE(teacher(aug(x)), y)
///   + adv * -mean(agree * KL(teacher(aug(x)) || student(aug(x))))      (after warm-up rounds)
/// (DeepInversion, Yin et al. 2020; the adversarial term as in Fang et al.'s code).
/// DeepInversion optimises the pixels of every batch from noise for hundreds of steps.
/// FastDFKD (Fang et al. 2022) optimises a generator instead, and meta-learns its starting point:
/// each round clones a meta-generator, adapts the clone (and the latent codes) for a few steps,
/// and moves the meta-generator with the first-order MAML gradient (the sum of the clone's
/// gradients over those steps), so later rounds start close to good images and need few steps.
public struct SynthesisConfig {
    public var method = SynthesisMethod.fastDFKD
    public var batch = 128
    /// Optimisation steps per batch (FastDFKD: a few; DeepInversion: hundreds).
    public var steps = 5
    public var bnWeight: Float = 10
    public var ceWeight: Float = 0.5
    public var advWeight: Float = 1
    /// Rounds before the adversarial term switches on (the student is still untrained).
    public var advWarmupRounds = 2
    /// Generator learning rate (FastDFKD) or pixel learning rate (DeepInversion).
    public var lr: Float = 3e-3
    /// Latent-code learning rate (FastDFKD).
    public var latentLR: Float = 0.01
    public var latentDim = 256
    /// Generator width ngf (the reference uses 64 for 32x32 colour images; 32 reaches the same
    /// student accuracy on Fashion-MNIST at 2.5x less cost, docs/DATAFREE.md).
    public var generatorWidth = 32
    /// Momentum of the batch statistics the BN loss compares (FastDFKD's bn_mmt; 0: off).
    public var statisticsMomentum: Float = 0.9
    /// Random shift of up to this many pixels (a crop after padding) and random flips before the teacher.
    public var shiftPixels = 2
    public var flips = true
    public var seed: UInt64 = 1
    public init() {}
}

public enum SynthesisMethod: String, OptionChoice {
    case fastDFKD = "fastdfkd"
    case deepInversion = "deepinversion"
    public static let optionName = "--method"

    /// Optimisation steps per batch: a few from the meta-learned generator, hundreds from noise.
    public var defaultSteps: Int { self == .fastDFKD ? 5 : 200 }
    /// The generator's (FastDFKD) or the pixels' (DeepInversion) learning rate.
    public var defaultLR: Float { self == .fastDFKD ? 3e-3 : 0.05 }
}

/// The frozen teacher seen from the synthesiser: eval mode, no parameter gradients, BatchNorm
/// layers capturing the moments of their inputs during synthesis.
public final class TeacherProbe {
    public let model: Module
    let batchNorms: [BatchNorm]
    let momentum: Float
    /// Per BN layer, the running average of the synthetic batches' statistics (bn_mmt).
    var averaged: [(mean: [Float], variance: [Float])]?

    public init(model: Module, store: ParameterStore, momentum: Float) {
        self.model = model
        self.momentum = momentum
        batchNorms = store.batchNorms.map { $0.1 }
        model.eval()
        for p in store.trainableParameters { p.tensor.requiresGrad = false }
    }

    public var layerCount: Int { batchNorms.count }

    /// Teacher logits for `images`; with `capture`, also the BN-statistics loss of this batch.
    func forward(_ images: Tensor, capture: Bool) -> (logits: Tensor, bnLoss: Tensor?) {
        for bn in batchNorms { bn.capturesInputMoments = capture }
        defer { for bn in batchNorms { bn.capturesInputMoments = false; bn.clearInputMoments() } }
        let logits = model(images)
        guard capture else { return (logits, nil) }
        var total: Tensor?
        for (l, bn) in batchNorms.enumerated() {
            guard let (mu, v) = bn.inputMoments else { continue }
            let rm = bn.runningMean.tensor.array, rv = bn.runningVar.tensor.array
            // With momentum m the distance is to the running statistic minus m * the average of
            // earlier batches, from (1 - m) * this batch: the image batches together, not each
            // alone, have to match the teacher's statistics.
            let term: Tensor
            if momentum > 0, let avg = averaged?[l] {
                let m = momentum
                term = distanceL2(scale(mu, 1 - m), to: zip(rm, avg.mean).map { $0 - m * $1 })
                    + distanceL2(scale(v, 1 - m), to: zip(rv, avg.variance).map { $0 - m * $1 })
            } else {
                term = distanceL2(mu, to: rm) + distanceL2(v, to: rv)
            }
            total = total.map { $0 + term } ?? term
        }
        return (logits, total)
    }

    /// Folds the last synthesised batch's statistics into the running average (once per round).
    func updateAverages(with images: Tensor) {
        guard momentum > 0 else { return }
        for bn in batchNorms { bn.capturesInputMoments = true }
        defer { for bn in batchNorms { bn.capturesInputMoments = false; bn.clearInputMoments() } }
        withNoGrad { _ = model(images) }
        let current = batchNorms.map { ($0.inputMoments?.mean.array ?? [], $0.inputMoments?.variance.array ?? []) }
        if let old = averaged {
            averaged = zip(old, current).map { o, c in
                (zip(o.mean, c.0).map { momentum * $0 + (1 - momentum) * $1 },
                 zip(o.variance, c.1).map { momentum * $0 + (1 - momentum) * $1 })
            }
        } else {
            averaged = current.map { (mean: $0.0, variance: $0.1) }
        }
    }
}

/// The loss both methods minimise, and the random augmentation before the teacher.
struct InversionLoss {
    let config: SynthesisConfig
    let teacher: TeacherProbe
    let student: Module?

    /// `images` are normalised inputs [B, C, H, W]; returns the loss and its terms.
    func callAsFunction(_ images: Tensor, targets: [Int], adversarial: Bool,
                        rng: inout RandomGenerator) -> (loss: Tensor, bn: Float, ce: Float, adv: Float) {
        let n = images.shape[0]
        var x = images
        if config.shiftPixels > 0 {
            let p = config.shiftPixels
            x = translate(x, shifts: (0..<n).map { _ in (rng.int(below: 2 * p + 1) - p, rng.int(below: 2 * p + 1) - p) })
        }
        if config.flips { x = flipHorizontal(x, flips: (0..<n).map { _ in rng.int(below: 2) == 1 }) }
        let (logits, bnLoss) = teacher.forward(x, capture: true)
        let ce = crossEntropy(logits, labels: targets)
        var loss = scale(ce, config.ceWeight)
        if let bnLoss { loss = loss + scale(bnLoss, config.bnWeight) }
        var advValue: Float = 0
        if adversarial, config.advWeight > 0, let student {
            // Only samples the two still agree on: pushing disagreement further gains nothing.
            let s = student(x)
            let agree = (0..<n).map { argmax(s, row: $0) == argmax(logits, row: $0) ? Float(1) : 0 }
            let adv = klDivergence(student: s, teacher: logits, rowWeights: agree)
            advValue = adv.scalar
            loss = loss + scale(adv, -config.advWeight)
        }
        return (loss, bnLoss?.scalar ?? 0, ce.scalar, advValue)
    }
}

/// One synthesised batch and what it cost.
public struct SynthesisRound {
    public let images: Tensor
    public let seconds: Double
    public let loss: Float, bnLoss: Float, ceLoss: Float, advLoss: Float
}

/// The synthesisers. `synthesize` returns the best batch (lowest loss over the steps), in the
/// teacher's normalised input space.
public final class Synthesizer {
    public let config: SynthesisConfig
    let teacher: TeacherProbe
    let student: Module?
    let imageShape: [Int]
    let mean: [Float], std: [Float]
    var rng: RandomGenerator
    var round = 0
    // FastDFKD state: the meta-generator, the per-round clone, their stores, the meta optimiser.
    let meta: Generator?, metaStore: ParameterStore?, metaAdam: Adam?
    let fast: Generator?, fastStore: ParameterStore?

    let classes: Int

    public init(config: SynthesisConfig, teacher: TeacherProbe, student: Module?, imageShape: [Int], classes: Int,
                mean: [Float], std: [Float]) {
        self.config = config
        self.classes = classes
        self.teacher = teacher
        self.student = student
        self.imageShape = imageShape
        self.mean = mean; self.std = std
        rng = RandomGenerator(seed: config.seed, stream: "synthesis")
        if config.method == .fastDFKD {
            let g = Generator(latentDim: config.latentDim, ngf: config.generatorWidth, imageShape: imageShape)
            let gs = ParameterStore(model: g, seed: config.seed)
            let f = Generator(latentDim: config.latentDim, ngf: config.generatorWidth, imageShape: imageShape)
            meta = g; metaStore = gs; fast = f; fastStore = ParameterStore(model: f, seed: config.seed)
            metaAdam = Adam(parameters: gs, beta1: 0.5, beta2: 0.999)
        } else {
            meta = nil; metaStore = nil; metaAdam = nil; fast = nil; fastStore = nil
        }
    }

    /// Generator parameter count (0 for DeepInversion), for reports.
    public var generatorParameters: Int { metaStore?.trainableCount ?? 0 }

    public func synthesize() -> SynthesisRound {
        let start = Date()
        round += 1
        let targets = (0..<config.batch).map { _ in rng.int(below: classes) }
        let loss = InversionLoss(config: config, teacher: teacher, student: student)
        let adversarial = round > config.advWarmupRounds
        student?.eval()
        defer { student?.train() }
        var best: (Tensor, Float, Float, Float, Float)?
        func keep(_ images: Tensor, _ r: (loss: Tensor, bn: Float, ce: Float, adv: Float)) {
            if best == nil || r.loss.scalar < best!.1 { best = (images.copy(), r.loss.scalar, r.bn, r.ce, r.adv) }
        }
        switch config.method {
        case .deepInversion:
            let x = Tensor.normal([config.batch] + imageShape, seed: rng.next(), requiresGrad: true)
            let adam = Adam(parameters: TensorParameters(x), beta1: 0.5, beta2: 0.99)
            for _ in 0..<config.steps {
                let r = loss(x, targets: targets, adversarial: adversarial, rng: &rng)
                keep(x, r)
                Tape.current.backward(r.loss)
                adam.step(lr: config.lr)
                x.clearGrad()
            }
        case .fastDFKD:
            guard let metaStore, let fastStore, let fast, let metaAdam else { preconditionFailure() }
            fastStore.copy(from: metaStore)
            fast.train()
            let fastAdam = Adam(parameters: fastStore, beta1: 0.5, beta2: 0.999)
            let z = Tensor.normal([config.batch, config.latentDim], seed: rng.next(), requiresGrad: true)
            let zAdam = Adam(parameters: TensorParameters(z), beta1: 0.5, beta2: 0.999)
            var metaGradient = [Float](repeating: 0, count: metaStore.trainableCount)
            for _ in 0..<config.steps {
                fastStore.zeroGrad()
                let images = channelAffine(fast(z), scale: std.map { 1 / $0 }, shift: zip(mean, std).map { -$0 / $1 })
                let r = loss(images, targets: targets, adversarial: adversarial, rng: &rng)
                keep(images, r)
                Tape.current.backward(r.loss)
                fastStore.finalizeGradients()
                // First-order MAML: the meta-gradient is the sum of the clone's gradients.
                for i in 0..<metaGradient.count { metaGradient[i] += fastStore.gradients[i] }
                fastAdam.step(lr: config.lr)
                zAdam.step(lr: config.latentLR)
                z.clearGrad()
            }
            metaStore.gradients.update(from: metaGradient, count: metaGradient.count)
            metaAdam.step(lr: config.lr * Float(config.steps))
        }
        let (images, l, bn, ce, adv) = best!
        teacher.updateAverages(with: images)
        return SynthesisRound(images: images, seconds: Date().timeIntervalSince(start), loss: l, bnLoss: bn, ceLoss: ce, advLoss: adv)
    }
}
