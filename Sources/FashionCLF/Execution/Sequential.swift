import CKernels

/// A trainable network: a model's plan (`Plan`) with one executor per step, applied in order; backward
/// walks them in reverse.
public final class Sequential {
    public let name: String
    public let plan: Plan
    /// One executor per plan step (`plan.steps[i]` runs on `steps[i]`).
    public let steps: [any Layer]
    public let parameters: [Parameter]

    public var specs: [LayerSpec] { plan.specs }
    /// Per-sample input shape (`n` = 1).
    public var inputShape: Shape { plan.inputShape }
    /// Per-sample output size (the number of classes for a classifier).
    public var outputSize: Int { plan.outputSize }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
    public var summary: ModelSummary { ModelSummary(name: name, plan: plan) }

    /// Compiles `specs` and draws the initial weights from `rng`. Throws when the specs do not chain (a
    /// layer's input size differs from the previous output).
    public convenience init(name: String, inputShape: Shape, specs: [LayerSpec], rng: inout SplitMix64) throws(FCLFError) {
        self.init(name: name, plan: try Plan(specs: specs, inputShape: inputShape), rng: &rng)
    }

    /// Builds the executors of `plan`'s steps, drawing their initial weights from `rng` in layer order.
    public init(name: String, plan: Plan, rng: inout SplitMix64) {
        self.name = name
        self.plan = plan
        steps = plan.steps.map { Sequential.executor($0, rng: &rng) }
        parameters = steps.flatMap { $0.parameters }
    }

    /// The one place that maps a step to the layer that executes it.
    private static func executor(_ step: Plan.Step, rng: inout SplitMix64) -> any Layer {
        switch step.layer {
        case .conv2d(let ic, let oc, let k, let padding, let activation):
            return Conv2D(inChannels: ic, outChannels: oc, kernelSize: k, padding: padding, activation: activation,
                          pooling: step.pooling, computesInputGradient: step.computesInputGradient, rng: &rng)
        case .dense(let input, let output, let activation):
            return Dense(inputSize: input, outputSize: output, activation: activation,
                         computesInputGradient: step.computesInputGradient, rng: &rng)
        case .relu: return ReLU()
        case .maxPool2x2: return MaxPool2D()
        case .flatten: return Flatten()
        }
    }

    public func forward(_ x: Tensor) -> Tensor {
        var t = x
        for step in steps { t = step.forward(t) }
        return t
    }

    /// Accumulates every parameter gradient for the batch of the last `forward`.
    public func backward(_ dy: Tensor) {
        var g = dy
        for step in steps.reversed() { g = step.backward(g) }
    }

    public func zeroGradients() {
        for p in parameters { p.zeroGrad() }
    }

    /// Copies every parameter value from `other`, a network of the same plan.
    func copyWeights(from other: Sequential) {
        precondition(other.plan.specs == plan.specs, "copyWeights: the networks have different architectures")
        for (p, q) in zip(parameters, other.parameters) { p.value.update(from: q.value, count: p.count) }
    }
}
