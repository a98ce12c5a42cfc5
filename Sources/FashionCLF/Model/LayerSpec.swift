/// An activation applied to a layer's output (Keras' `activation=` argument).
public enum Activation: String, Sendable {
    case none, relu
}

public enum Padding: String, Sendable {
    /// No padding: output side = input side - kernel + 1.
    case valid
    /// Zero padding so that output side = input side.
    case same
}

/// One layer of a model, as data: what a model file stores and what the planner compiles. A spec owns
/// no memory; `Plan` turns a list of them into the steps that training and inference execute.
public enum LayerSpec: Equatable, Sendable {
    case conv2d(inChannels: Int, outChannels: Int, kernelSize: Int, padding: Padding, activation: Activation)
    case dense(inputSize: Int, outputSize: Int, activation: Activation)
    case relu
    case maxPool2x2
    case flatten
    /// Batch normalisation over the channels of its input (features, for a flat input).
    case batchNorm(channels: Int)
    /// Inverted dropout of the given rate in training; the identity in evaluation.
    case dropout(rate: Float)
    /// The mean of each channel's plane: [c, h, w] -> [c].
    case globalAvgPool
    /// Logits divided by a temperature T (Guo et al. 2017): fitted on the validation split after training, so
    /// that the softmax's probabilities are calibrated; the predicted class does not change.
    case temperature(Float)
    /// The start of a residual block (He et al. 2016): the identity, its input kept for the `addShortcut` that
    /// closes the block. Blocks do not nest, and each one is closed.
    case shortcut
    /// The end of a residual block: y = x + the input kept by the block's `shortcut`, of the same shape.
    case addShortcut

    /// BatchNorm's constants (PyTorch's defaults): fixed by the format, not stored per layer.
    public static let batchNormEpsilon: Float = 1e-5
    public static let batchNormMomentum: Float = 0.1
    /// Temperatures a model may carry: calibration fits within [0.05, 20]; outside this range logits / T
    /// would overflow or flatten every probability.
    public static let temperatureRange: ClosedRange<Float> = 1e-3...1e3

    /// The layer-kind code a model file stores for this spec.
    public var kind: LayerKind {
        switch self {
        case .conv2d: return .conv2d
        case .dense: return .dense
        case .relu: return .relu
        case .maxPool2x2: return .maxPool2x2
        case .flatten: return .flatten
        case .batchNorm: return .batchNorm
        case .dropout: return .dropout
        case .globalAvgPool: return .globalAvgPool
        case .temperature: return .temperature
        case .shortcut: return .shortcut
        case .addShortcut: return .addShortcut
        }
    }

    /// The per-sample output shape for a per-sample input shape, or why the layer does not fit it.
    /// Computed from the configuration alone (nothing is allocated), so a model file's architecture is
    /// checked before any memory is reserved for it.
    public func outputShape(_ input: Shape) -> Result<Shape, FCLFError> {
        switch self {
        case .conv2d(let ic, let oc, let k, let padding, _):
            guard ic == input.c, ic > 0, oc > 0, k > 0, padding == .same || (k <= input.h && k <= input.w) else {
                return .failure(.invalidArgument("conv2d(\(ic)->\(oc), \(k)x\(k)) does not fit input \(input)"))
            }
            let side = { (x: Int) in padding == .same ? x : x - k + 1 }
            return .success(Shape(n: input.n, c: oc, h: side(input.h), w: side(input.w)))
        case .dense(let inputSize, let outputSize, _):
            guard inputSize == input.perSample, outputSize > 0 else {
                return .failure(.invalidArgument("dense(\(inputSize)->\(outputSize)) does not fit input \(input)"))
            }
            return .success(Shape(n: input.n, c: outputSize))
        case .relu:
            return .success(input)
        case .maxPool2x2:
            guard input.h >= 2, input.w >= 2 else { return .failure(.invalidArgument("2x2 pooling of input \(input)")) }
            return .success(Shape(n: input.n, c: input.c, h: input.h / 2, w: input.w / 2))
        case .flatten:
            return .success(Shape(n: input.n, c: input.perSample))
        case .batchNorm(let channels):
            guard channels == input.c, channels > 0 else {
                return .failure(.invalidArgument("batchnorm(\(channels)) does not fit input \(input)"))
            }
            return .success(input)
        case .dropout(let rate):
            guard rate >= 0, rate < 1 else { return .failure(.invalidArgument("dropout rate \(rate) is outside [0, 1)")) }
            return .success(input)
        case .globalAvgPool:
            return .success(Shape(n: input.n, c: input.c))
        case .temperature(let t):
            guard LayerSpec.temperatureRange.contains(t) else {
                return .failure(.invalidArgument("temperature \(t) is outside \(LayerSpec.temperatureRange)"))
            }
            return .success(input)
        case .shortcut, .addShortcut:
            return .success(input)  // the pairing and the shapes at both ends: `chainShapes`
        }
    }

    /// The shapes of the layer's parameters, in the order a model file stores them (weight, then bias).
    public var parameterShapes: [[Int]] {
        switch self {
        case .conv2d(let ic, let oc, let k, _, _): return [[oc, ic, k, k], [oc]]
        case .dense(let inputSize, let outputSize, _): return [[inputSize, outputSize], [outputSize]]
        case .batchNorm(let c): return [[c], [c], [c], [c]]  // gamma, beta, running mean, running variance
        case .relu, .maxPool2x2, .flatten, .dropout, .globalAvgPool, .temperature, .shortcut, .addShortcut: return []
        }
    }

    /// Stored values that training does not update by gradient (BatchNorm's running statistics).
    public var nonTrainableCount: Int {
        if case .batchNorm(let c) = self { return 2 * c }
        return 0
    }

    public var parameterCount: Int { parameterShapes.reduce(0) { $0 + $1.reduce(1, *) } }

    /// The configuration words a model file stores after the layer's kind code (`LayerKind` documents them).
    public var configuration: [Int] {
        switch self {
        case .conv2d(let ic, let oc, let k, let padding, let a): return [ic, oc, k, padding == .same ? 1 : 0, a == .relu ? 1 : 0]
        case .dense(let inputSize, let outputSize, let a): return [inputSize, outputSize, a == .relu ? 1 : 0]
        case .batchNorm(let c): return [c]
        case .dropout(let rate): return [Int(rate.bitPattern)]
        case .temperature(let t): return [Int(t.bitPattern)]
        case .relu, .maxPool2x2, .flatten, .globalAvgPool, .shortcut, .addShortcut: return []
        }
    }

    /// The spec a model file describes by `kind` and the configuration words `next` reads, or why it is
    /// invalid. The bounds keep every size the network derives from them far from overflow.
    public init(kind: LayerKind, configuration next: () throws(FCLFError) -> Int) throws(FCLFError) {
        switch kind {
        case .conv2d:
            let ic = try next(), oc = try next(), k = try next(), pad = try next(), act = try next()
            guard (1...4096).contains(ic), (1...4096).contains(oc), (1...15).contains(k), pad <= 1, act <= 1 else {
                throw .invalidArgument("bad conv2d configuration")
            }
            self = .conv2d(inChannels: ic, outChannels: oc, kernelSize: k, padding: pad == 1 ? .same : .valid,
                           activation: act == 1 ? .relu : .none)
        case .dense:
            let input = try next(), output = try next(), act = try next()
            guard (1...1 << 24).contains(input), (1...1 << 16).contains(output), act <= 1 else {
                throw .invalidArgument("bad dense configuration")
            }
            self = .dense(inputSize: input, outputSize: output, activation: act == 1 ? .relu : .none)
        case .relu: self = .relu
        case .maxPool2x2: self = .maxPool2x2
        case .flatten: self = .flatten
        case .batchNorm:
            let c = try next()
            guard (1...1 << 24).contains(c) else { throw .invalidArgument("bad batchnorm configuration") }
            self = .batchNorm(channels: c)
        case .dropout:
            let rate = Float(bitPattern: UInt32(truncatingIfNeeded: try next()))
            guard rate >= 0, rate < 1 else { throw .invalidArgument("bad dropout rate") }
            self = .dropout(rate: rate)
        case .globalAvgPool: self = .globalAvgPool
        case .temperature:
            let t = Float(bitPattern: UInt32(truncatingIfNeeded: try next()))
            guard LayerSpec.temperatureRange.contains(t) else { throw .invalidArgument("temperature \(t) outside \(LayerSpec.temperatureRange)") }
            self = .temperature(t)
        case .shortcut: self = .shortcut
        case .addShortcut: self = .addShortcut
        }
    }

    /// Short form for summaries: "conv2d 32 3x3 valid, relu".
    public var summary: String {
        func act(_ a: Activation) -> String { a == .relu ? ", relu" : "" }
        switch self {
        case .conv2d(_, let oc, let k, let padding, let a): return "conv2d \(oc) \(k)x\(k) \(padding.rawValue)\(act(a))"
        case .dense(_, let outputSize, let a): return "dense \(outputSize)\(act(a))"
        case .relu: return "relu"
        case .maxPool2x2: return "maxpool 2x2"
        case .flatten: return "flatten"
        case .batchNorm: return "batchnorm"
        case .dropout(let rate): return "dropout \(rate)"
        case .globalAvgPool: return "global avgpool"
        case .temperature(let t): return "temperature \(t)"
        case .shortcut: return "shortcut"
        case .addShortcut: return "add shortcut"
        }
    }
}

/// The layer-kind codes of the model file (format version 1). Codes are never reused or renumbered:
/// a new layer kind takes the next free number.
public enum LayerKind: UInt32, Sendable, CaseIterable {
    /// Followed by in channels, out channels, kernel size, padding (0 valid, 1 same), activation (0 none, 1 ReLU).
    case conv2d = 1
    /// Followed by inputs, outputs, activation (0 none, 1 ReLU).
    case dense = 2
    /// No configuration.
    case relu = 3
    case maxPool2x2 = 4
    case flatten = 5
    /// Followed by channels. Stored values: gamma, beta, running mean, running variance ([channels] each).
    case batchNorm = 6
    /// Followed by the rate's float32 bit pattern.
    case dropout = 7
    case globalAvgPool = 8
    /// Followed by the temperature's float32 bit pattern.
    case temperature = 9
    /// No configuration (a residual block's start and end).
    case shortcut = 10
    case addShortcut = 11
}

/// The per-sample shape after each spec, or the first spec that does not chain (its index and why).
public func chainShapes(_ specs: [LayerSpec], input: Shape) throws(FCLFError) -> [Shape] {
    guard !specs.isEmpty else { throw .invalidArgument("a network needs at least one layer") }
    var shapes: [Shape] = []
    var shape = input.withBatch(1)
    var open: (layer: Int, shape: Shape)?  // the residual block being read
    for (i, spec) in specs.enumerated() {
        switch spec {
        case .shortcut:
            if let open { throw .invalidArgument("layer \(i): shortcut inside the residual block opened at layer \(open.layer); close that one first (add shortcut)") }
            open = (i, shape)
        case .addShortcut:
            guard let block = open else { throw .invalidArgument("layer \(i): add shortcut without a shortcut before it") }
            guard block.shape == shape else {
                throw .invalidArgument("layer \(i): add shortcut of \(shape) to the \(block.shape) kept at layer \(block.layer); the block must keep its shape")
            }
            open = nil
        default: break
        }
        switch spec.outputShape(shape) {
        case .success(let out): shape = out
        case .failure(let error): throw .invalidArgument("layer \(i): \(error)")
        }
        shapes.append(shape)
    }
    if let open { throw .invalidArgument("layer \(open.layer): shortcut never closed; add an add shortcut layer") }
    return shapes
}
