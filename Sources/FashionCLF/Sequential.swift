import CKernels

/// The architecture of a layer, as stored in a model file.
public enum LayerSpec: Equatable, Sendable {
    case conv2d(inChannels: Int, outChannels: Int, kernelSize: Int, padding: Padding, activation: Activation)
    case dense(inputSize: Int, outputSize: Int, activation: Activation)
    case relu
    case maxPool2x2
    case flatten
}

/// Layers applied in order; backward walks them in reverse.
public final class Sequential {
    public let name: String
    public let specs: [LayerSpec]
    public let layers: [any Layer]
    /// Per-sample input shape (`n` = 1).
    public let inputShape: Shape
    public let parameters: [Parameter]

    /// Builds the layers and draws their initial weights from `rng`. Throws when the specs do not
    /// chain (a layer's input size differs from the previous output).
    public init(name: String, inputShape: Shape, specs: [LayerSpec], rng: inout SplitMix64) throws(FCLFError) {
        var layers: [any Layer] = []
        var shape = inputShape.withBatch(1)
        for (i, spec) in specs.enumerated() {
            let layer: any Layer
            switch spec {
            case .conv2d(let ic, let oc, let k, let padding, let activation):
                guard ic == shape.c, ic > 0, oc > 0, k > 0, padding == .same || (k <= shape.h && k <= shape.w)
                else { throw .invalidArgument("layer \(i): conv2d(\(ic)->\(oc), \(k)x\(k)) does not fit input \(shape)") }
                layer = Conv2D(inChannels: ic, outChannels: oc, kernelSize: k, padding: padding,
                               activation: activation, rng: &rng)
            case .dense(let input, let output, let activation):
                guard input == shape.perSample, output > 0
                else { throw .invalidArgument("layer \(i): dense(\(input)->\(output)) does not fit input \(shape)") }
                layer = Dense(inputSize: input, outputSize: output, activation: activation, rng: &rng)
            case .relu: layer = ReLU()
            case .maxPool2x2:
                guard shape.h >= 2, shape.w >= 2
                else { throw .invalidArgument("layer \(i): 2x2 pooling of input \(shape)") }
                layer = MaxPool2D()
            case .flatten: layer = Flatten()
            }
            shape = layer.outputShape(shape)
            layers.append(layer)
        }
        guard !layers.isEmpty else { throw .invalidArgument("a network needs at least one layer") }
        layers[0].computesInputGradient = false
        // Conv2D then MaxPool2D: the convolution pools its own output (see Conv2D.poolsOutput).
        for (conv, pool) in zip(layers, layers.dropFirst()) {
            if let conv = conv as? Conv2D, let pool = pool as? MaxPool2D {
                conv.fusePooling()
                pool.isFusedIntoPrevious = true
            }
        }
        self.name = name
        self.specs = specs
        self.layers = layers
        self.inputShape = inputShape.withBatch(1)
        self.parameters = layers.flatMap { $0.parameters }
        self.outputSize = shape.perSample
    }

    /// Per-sample output size (the number of classes for a classifier).
    public let outputSize: Int

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    public func forward(_ x: Tensor) -> Tensor {
        var t = x
        for layer in layers { t = layer.forward(t) }
        return t
    }

    /// Accumulates every parameter gradient for the batch of the last `forward`.
    public func backward(_ dy: Tensor) {
        var g = dy
        for layer in layers.reversed() { g = layer.backward(g) }
    }

    public func zeroGradients() {
        for p in parameters { p.zeroGrad() }
    }
}

/// The seed study's two models.
public enum ModelKind: String, CaseIterable, Sendable {
    case cnn, mlp

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
        }
    }

    public func build(seed: UInt64) -> Sequential {
        var rng = SplitMix64(seed: seed)
        // The specs above are fixed and chain by construction.
        return try! Sequential(name: rawValue, inputShape: ModelKind.imageShape, specs: specs, rng: &rng)
    }
}
