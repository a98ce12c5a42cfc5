/// The architectures fclf-train builds by name: the seed study's two models, and the seed CNN with
/// BatchNorm after each convolution and the first dense layer and dropout before the last (the variant the
/// issue's PyTorch reference found most robust on real photos); the presets' two leave the dropout out, as
/// they underfit with it.
public enum ModelKind: String, CaseIterable, Sendable {
    case cnn, mlp
    case cnnBN = "cnn-bn"
    case wideBN = "wide-bn"
    case cnn3BN = "cnn3-bn"
    case sameBN = "same-bn"
    case deepBN = "deep-bn"
    case cnn3WBN = "cnn3w-bn"
    case wideBNNoDrop = "wide-bn-nodrop"
    case resBN = "res-bn"
    case res2BN = "res2-bn"

    /// The seed study's comparison (`fclf-train --compare`).
    public static let seedModels: [ModelKind] = [.cnn, .mlp]

    public static let imageShape = Shape(n: 1, c: 1, h: 28, w: 28)

    public var specs: [LayerSpec] {
        switch self {
        case .cnn:
            // Conv2D(32, 3x3, valid, ReLU) -> MaxPool 2x2 -> Conv2D(64, 3x3, valid, ReLU) -> MaxPool 2x2
            // -> Flatten -> Dense(128, ReLU) -> Dense(10, softmax)
            // (softmax is part of the loss and of prediction, not a layer)
            return [.conv2d(inChannels: 1, outChannels: 32, kernelSize: 3, padding: .valid, activation: .relu), .maxPool2x2,
                    .conv2d(inChannels: 32, outChannels: 64, kernelSize: 3, padding: .valid, activation: .relu), .maxPool2x2,
                    .flatten, .dense(inputSize: 1600, outputSize: 128, activation: .relu),
                    .dense(inputSize: 128, outputSize: 10, activation: .none)]
        case .mlp:
            // 784 -> Dense(128, ReLU) -> Dense(64, ReLU) -> Dense(10, softmax)
            return [.flatten, .dense(inputSize: 784, outputSize: 128, activation: .relu),
                    .dense(inputSize: 128, outputSize: 64, activation: .relu),
                    .dense(inputSize: 64, outputSize: 10, activation: .none)]
        case .cnnBN:
            // Conv2D(32, 3x3, valid) -> BatchNorm -> ReLU -> MaxPool 2x2 -> Conv2D(64, 3x3, valid) -> BatchNorm -> ReLU
            // -> MaxPool 2x2 -> Flatten -> Dense(128) -> BatchNorm -> ReLU -> Dropout(0.3) -> Dense(10, softmax).
            return convBN(1, 32) + [.maxPool2x2] + convBN(32, 64) + [.maxPool2x2, .flatten] + head(1600, 128, dropout: 0.3)
        case .wideBN:
            // A VGG-style pair of blocks: [Conv2D(32, 3x3) -> BatchNorm -> ReLU] x 2 -> MaxPool 2x2 ->
            // [Conv2D(64, 3x3) -> BatchNorm -> ReLU] x 2 -> MaxPool 2x2 -> Flatten -> Dense(256) -> BatchNorm -> ReLU
            // -> Dropout(0.4) -> Dense(10, softmax), about 10 MMAC per image. 'valid' convolutions (28 -> 26 -> 24
            // -> 12 -> 10 -> 8 -> 4): about half the multiply-adds of 'same' padding, which keeps 28 and 14.
            return wide(dropout: 0.4)
        case .cnn3BN:
            // Three convolutions at about 1.7x the seed CNN's multiply-adds (4.3 MMAC): Conv2D(32, 3x3, same) ->
            // BatchNorm -> ReLU -> MaxPool 2x2 -> Conv2D(64, 3x3, valid) -> BatchNorm -> ReLU -> MaxPool 2x2 ->
            // Conv2D(128, 3x3, valid) -> BatchNorm -> ReLU -> Flatten -> Dense(128) -> BatchNorm -> ReLU ->
            // Dropout(0.3) -> Dense(10, softmax). 28 -> 28 -> 14 -> 12 -> 6 -> 4: the first convolution keeps the
            // border (cheap at one input channel), the third adds depth where the planes are small.
            return cnn3(conv3: 128, dropout: 0.3)
        case .cnn3WBN:
            // cnn3-bn with a wider third convolution (192 channels, 5.0 MMAC) and no dropout: the `fast`
            // preset's since recipe 7 (Preset.fast says why).
            return cnn3(conv3: 192, dropout: 0)
        case .wideBNNoDrop:
            // wide-bn without the dropout (330,858 parameters, about 10 MMAC): the `best` preset's since recipe 5
            // (Preset.best says why).
            return wide(dropout: 0)
        case .deepBN:
            // wide-bn with a fifth convolution where the planes are small, as cnn3-bn adds one to cnn-bn:
            // [Conv2D(32, 3x3) -> BN -> ReLU] x 2 -> MaxPool -> [Conv2D(64, 3x3) -> BN -> ReLU] x 2 ->
            // Conv2D(128, 3x3) -> BN -> ReLU -> MaxPool -> Dense(256) -> BN -> ReLU -> Dropout(0.4) -> Dense(10).
            // 'valid' (28 -> 26 -> 24 -> 12 -> 10 -> 8 -> 6 -> 3): about 12.6 MMAC per image (wide-bn: 10).
            return convBN(1, 32) + convBN(32, 32) + [.maxPool2x2] + convBN(32, 64) + convBN(64, 64) + convBN(64, 128)
                + [.maxPool2x2, .flatten] + head(128 * 3 * 3, 256, dropout: 0.4)
        case .sameBN:
            // wide-bn with 'same' padding (28 -> 28 -> 28 -> 14 -> 14 -> 14 -> 7): the same layers, about 19 MMAC per
            // image (1.9x), and a 7x7x64 map into the dense layer instead of 4x4x64.
            return convBN(1, 32, .same) + convBN(32, 32, .same) + [.maxPool2x2] + convBN(32, 64, .same) + convBN(64, 64, .same)
                + [.maxPool2x2, .flatten] + head(64 * 7 * 7, 256, dropout: 0.4)
        case .resBN:
            // ResNet-20's layout (He et al. 2016: a 3x3 stem, then three stages of three residual blocks at 16, 32
            // and 64 channels, global average pooling, Dense(10)) on 28x28 images, 'same' convolutions throughout.
            // The stages shrink the planes by a 2x2 max pooling and a 3x3 convolution that widens the channels
            // (28 -> 14 -> 7) where ResNet-20 has strided convolutions and projections: every shortcut is the
            // identity. About 34 MMAC per image (wide-bn: 10); 316,490 parameters. Tried for `best` (18 epochs in 30 minutes:
            // validation 93.67%), not adopted (docs/training.md).
            return convBN(1, 16, .same) + stage(16) + [.maxPool2x2] + convBN(16, 32, .same) + stage(32)
                + [.maxPool2x2] + convBN(32, 64, .same) + stage(64) + [.globalAvgPool, .dense(inputSize: 64, outputSize: 10, activation: .none)]
        case .res2BN:
            // res-bn without its full-resolution stage: a 32-channel stem at 28x28 and a 2x2 max pooling, then the
            // 14x14 stage of three blocks at 32 channels, a pooling and a widening Conv2D, and the 7x7 stage at 64.
            // Each of res-bn's stages costs about the same multiply-adds (1.8 MMAC per convolution), but the 28x28
            // one ran its convolutions slowest and its BatchNorm, adds and ReLUs over the largest planes: about 23
            // MMAC per image (res-bn: 34), 297,866 parameters. Tried for `best` (30 epochs: validation 93.73%, one image
            // 540 us), not adopted (docs/training.md).
            return convBN(1, 32, .same) + [.maxPool2x2] + stage(32) + [.maxPool2x2] + convBN(32, 64, .same) + stage(64)
                + [.globalAvgPool, .dense(inputSize: 64, outputSize: 10, activation: .none)]
        }
    }

    /// Three residual blocks of `c` channels: shortcut -> Conv2D(c, 3x3, same) -> BN -> ReLU -> Conv2D(c, 3x3, same) ->
    /// BN -> add shortcut -> ReLU (He et al. 2016's basic block).
    private func stage(_ c: Int) -> [LayerSpec] {
        let block: [LayerSpec] = [.shortcut] + convBN(c, c, .same)
            + [.conv2d(inChannels: c, outChannels: c, kernelSize: 3, padding: .same, activation: .none), .batchNorm(channels: c),
               .addShortcut, .relu]
        return block + block + block
    }

    /// cnn3-bn's layers with the third convolution conv3 channels wide and the given dropout (cnn3w-bn: 192, none).
    private func cnn3(conv3: Int, dropout: Float) -> [LayerSpec] {
        convBN(1, 32, .same) + [.maxPool2x2] + convBN(32, 64) + [.maxPool2x2] + convBN(64, conv3) + [.flatten]
            + head(conv3 * 4 * 4, 128, dropout: dropout)
    }

    /// wide-bn's layers with the given dropout (wide-bn-nodrop: none).
    private func wide(dropout: Float) -> [LayerSpec] {
        convBN(1, 32) + convBN(32, 32) + [.maxPool2x2] + convBN(32, 64) + convBN(64, 64) + [.maxPool2x2, .flatten]
            + head(64 * 4 * 4, 256, dropout: dropout)
    }

    /// Conv2D(oc, 3x3) -> BatchNorm -> ReLU. The convolution has a bias although BatchNorm cancels it: the
    /// inference plan folds BatchNorm into exactly this weight and bias.
    private func convBN(_ ic: Int, _ oc: Int, _ padding: Padding = .valid) -> [LayerSpec] {
        [.conv2d(inChannels: ic, outChannels: oc, kernelSize: 3, padding: padding, activation: .none), .batchNorm(channels: oc), .relu]
    }

    /// The BatchNorm networks' classifier: Dense(hidden) -> BatchNorm -> ReLU -> Dropout (none for rate 0) ->
    /// Dense(10, softmax).
    private func head(_ input: Int, _ hidden: Int, dropout: Float) -> [LayerSpec] {
        [.dense(inputSize: input, outputSize: hidden, activation: .none), .batchNorm(channels: hidden), .relu]
            + (dropout > 0 ? [.dropout(rate: dropout)] : [])
            + [.dense(inputSize: hidden, outputSize: 10, activation: .none)]
    }

    public func build(seed: UInt64) -> Sequential {
        var rng = SplitMix64(seed: seed)
        // The specs above are fixed and chain by construction.
        return try! Sequential(name: rawValue, inputShape: ModelKind.imageShape, specs: specs, rng: &rng)
    }
}
