import CKernels

/// A trainable network: a model's plan (`Plan`) with one executor per step, applied in order; backward
/// walks them in reverse.
public final class Sequential {
    public let name: String
    public let plan: Plan
    /// One executor per plan step (`plan.steps[i]` runs on `steps[i]`).
    public let steps: [any Layer]
    /// The trainable parameters, which the optimiser updates.
    public let parameters: [Parameter]
    /// Everything the model file stores, in its order (parameters and BatchNorm's running statistics).
    public let stored: [Parameter]
    /// What the model file records about the model besides its layers (fclf-train fills it).
    public var metadata = ModelMetadata()
    /// The model file format it was read from (the current one for a network built here).
    public internal(set) var formatVersion = Int(ModelFile.formatVersion)

    public var specs: [LayerSpec] { plan.specs }
    /// Per-sample input shape (`n` = 1).
    public var inputShape: Shape { plan.inputShape }
    /// Per-sample output size (the number of classes for a classifier).
    public var outputSize: Int { plan.outputSize }
    /// Trainable values (what the optimiser updates).
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
    /// Values the model file stores: the parameters and BatchNorm's running statistics.
    public var storedCount: Int { stored.reduce(0) { $0 + $1.count } }
    public var summary: ModelSummary { ModelSummary(name: name, plan: plan) }

    /// Compiles `specs` and draws the initial weights from `rng`. Throws when the specs do not chain (a
    /// layer's input size differs from the previous output).
    public convenience init(name: String, inputShape: Shape, specs: [LayerSpec], rng: inout SplitMix64) throws(FCLFError) {
        self.init(name: name, plan: try Plan(specs: specs, inputShape: inputShape), rng: &rng)
    }

    /// Builds the executors of `plan`'s steps, drawing their initial weights from `rng` in layer order
    /// (`.zero`: none drawn, for a network whose values are written next).
    public init(name: String, plan: Plan, initializer: Initializer = .glorotUniform, rng: inout SplitMix64) {
        self.name = name
        self.plan = plan
        var link = ShortcutLink()  // what the residual block being built shares between its ends
        steps = plan.steps.map { step in
            if case .shortcut = step.layer { link = ShortcutLink() }
            return Sequential.executor(step, link: link, initializer: initializer, rng: &rng)
        }
        parameters = steps.flatMap { $0.parameters }
        stored = steps.flatMap { $0.stored }
    }

    /// What the model file stores for layer `layer` (empty for a layer without parameters, and for one the
    /// planner fused into the step of another).
    public func stored(ofLayer layer: Int) -> [Parameter] {
        guard let k = plan.step(executing: layer) else { return [] }
        if let both = steps[k] as? ConvBatchNorm {  // two layers with values in one step
            return layer == plan.steps[k].layers.lowerBound ? both.conv.stored : layer == plan.steps[k].trainedBatchNorm ? both.norm.stored : []
        }
        return plan.steps[k].layers.lowerBound == layer ? steps[k].stored : []
    }

    /// The BatchNorm executing layer `layer`, alone or in a first convolution's step.
    func batchNorm(layer: Int) -> BatchNorm? {
        guard let k = plan.step(executing: layer) else { return nil }
        return steps[k] as? BatchNorm ?? (steps[k] as? ConvBatchNorm)?.norm
    }

    /// The one place that maps a step to the layer that executes it.
    private static func executor(_ step: Plan.Step, link: ShortcutLink, initializer: Initializer, rng: inout SplitMix64) -> any Layer {
        switch step.layer {
        case .conv2d(let ic, let oc, let k, let padding, _) where step.trainedBatchNorm != nil:
            let conv = Conv2D(inChannels: ic, outChannels: oc, kernelSize: k, padding: padding, computesInputGradient: false,
                              initializer: initializer, rng: &rng)
            // The BatchNorm keeps its input gradient for ConvBatchNorm's fallback only (never taken for a planned step).
            return ConvBatchNorm(conv: conv, norm: BatchNorm(channels: oc, relu: step.fusedReLU, pool: step.pooling != .none))
        case .conv2d(let ic, let oc, let k, let padding, let activation):
            return Conv2D(inChannels: ic, outChannels: oc, kernelSize: k, padding: padding, activation: activation,
                          pooling: step.pooling, winograd: step.winograd, computesInputGradient: step.computesInputGradient,
                          initializer: initializer, rng: &rng)
        case .dense(let input, let output, let activation):
            return Dense(inputSize: input, outputSize: output, activation: activation,
                         computesInputGradient: step.computesInputGradient, initializer: initializer, rng: &rng)
        case .relu: return ReLU()
        case .maxPool2x2: return MaxPool2D()
        case .flatten: return Flatten()
        case .batchNorm(let channels):
            return BatchNorm(channels: channels, relu: step.fusedReLU, pool: step.pooling != .none,
                             computesInputGradient: step.computesInputGradient)
        case .dropout(let rate): return Dropout(rate: rate, seed: rng.next())
        case .globalAvgPool: return GlobalAvgPool()
        case .temperature(let t): return Temperature(t)
        case .shortcut: return Shortcut(link: link)
        case .addShortcut: return AddShortcut(link: link)
        }
    }

    /// `training` false: evaluation (BatchNorm's running statistics, no dropout).
    public func forward(_ x: Tensor, training: Bool = true) -> Tensor {
        var t = x
        for step in steps { t = step.forward(t, training: training) }
        return t
    }

    /// Accumulates every parameter gradient for the batch of the last `forward`.
    public func backward(_ dy: Tensor) {
        var g = dy
        for step in steps.reversed() { g = step.backward(g) }
    }

    /// A copy of every stored value (for keeping the best epoch), and its restoration.
    public func snapshot() -> [[Float]] { stored.map { Array(UnsafeBufferPointer(start: $0.value, count: $0.count)) } }

    public func restore(_ snapshot: [[Float]]) {
        for (p, values) in zip(stored, snapshot) { values.withUnsafeBufferPointer { p.value.update(from: $0.baseAddress!, count: p.count) } }
    }

    public func zeroGradients() {
        for p in parameters { p.zeroGrad() }
    }

    /// Loads every step's stored values from `model`, a network of the same layers compiled for training: as
    /// they are, or with the BatchNorm the step folds applied to its weights (w' = w s, b' = b s + t per output
    /// channel, with s and t the BatchNorm's evaluation scale and shift, computed in double).
    func load(from model: Sequential) {
        for (step, executor) in zip(plan.steps, steps) {
            let source = model.stored(ofLayer: step.layers.lowerBound), target = executor.stored
            guard let bn = step.foldedBatchNorm, let norm = model.batchNorm(layer: bn) else {
                for (p, q) in zip(target, source) { p.value.update(from: q.value, count: p.count) }
                continue
            }
            let (scale, shift) = norm.inferenceCoefficients()
            let (w, b) = (source[0], source[1]), outputs = b.count
            // conv weight [out, in, k, k]: output channel outermost; dense weight [in, out]: innermost.
            let outerOutput = w.shape[0] == outputs && w.shape.count == 4
            for i in 0..<w.count {
                let o = outerOutput ? i / (w.count / outputs) : i % outputs
                target[0].value[i] = Float(Double(w.value[i]) * Double(scale[o]))
            }
            for o in 0..<outputs { target[1].value[o] = Float(Double(b.value[o]) * Double(scale[o]) + Double(shift[o])) }
        }
    }
}
