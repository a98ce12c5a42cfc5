import CKernels

/// An optimiser sees only the parameters it was given and their accumulated gradients.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// One update from the gradients currently held by the parameters.
    func step()
    /// Everything besides the parameters that later steps depend on, for training checkpoints.
    var state: OptimizerState { get }
    /// Puts back a state taken from an optimiser of the same kind over parameters of the same sizes; throws
    /// (changing nothing) when the sizes differ.
    func restore(_ state: OptimizerState) throws(FCLFError)
}

/// An optimiser's state: its step count (Adam's bias correction; 0 for SGD) and its buffers, one per parameter
/// in order (Adam, AdamW: the first moment m then the second v; SGD: the velocity).
public struct OptimizerState: Equatable, Sendable {
    public var step: Int64
    public var buffers: [[Float]]

    public init(step: Int64, buffers: [[Float]]) {
        self.step = step
        self.buffers = buffers
    }

    static func of(_ step: Int64, _ buffers: [Buffer<Float>], counts: [Int]) -> OptimizerState {
        OptimizerState(step: step, buffers: zip(buffers, counts).map { Array(UnsafeBufferPointer(start: $0.pointer, count: $1)) })
    }

    /// Copies into `buffers` after checking every size.
    func restore(into buffers: [Buffer<Float>], counts: [Int]) throws(FCLFError) {
        guard buffers.count == self.buffers.count, step >= 0,
              zip(self.buffers, counts).allSatisfy({ $0.count == $1 }) else {
            throw .invalidArgument("optimiser state of \(self.buffers.count) buffers (\(self.buffers.map(\.count))) does not fit \(counts.count) parameters (\(counts))")
        }
        for (b, values) in zip(buffers, self.buffers) {
            values.withUnsafeBufferPointer { b.pointer.update(from: $0.baseAddress!, count: $0.count) }
        }
    }
}

/// Adam's and AdamW's state: the step count t and, per parameter, one buffer holding m then v.
struct AdamMoments {
    var t: Int64 = 0
    let parameters: [Parameter]
    let buffers: [Buffer<Float>]

    init(_ parameters: [Parameter]) {
        self.parameters = parameters
        buffers = parameters.map { Buffer<Float>(capacity: 2 * $0.count) }  // zeroed: m then v
    }

    var state: OptimizerState { .of(t, buffers, counts: parameters.map { 2 * $0.count }) }

    mutating func restore(_ state: OptimizerState) throws(FCLFError) {
        try state.restore(into: buffers, counts: parameters.map { 2 * $0.count })
        t = state.step
    }

    /// t + 1, then `update(index, parameter, m, v, t)` for each parameter in order.
    mutating func step(_ update: (Int, Parameter, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, Int64) -> Void) {
        t += 1
        for (i, (p, mv)) in zip(parameters, buffers).enumerated() { update(i, p, mv.pointer, mv.pointer + p.count, t) }
    }
}

/// Adam (Kingma & Ba 2015) with bias correction; defaults as in Keras (epsilon 1e-7).
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float
    public var t: Int64 { moments.t }
    private var moments: AdamMoments

    public init(parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-7) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        moments = AdamMoments(parameters)
    }

    public var state: OptimizerState { moments.state }

    public func restore(_ state: OptimizerState) throws(FCLFError) { try moments.restore(state) }

    public func step() {
        let (lr, b1, b2, eps) = (learningRate, beta1, beta2, epsilon)
        moments.step { _, p, m, v, t in fclf_adam_update(p.value, m, v, p.grad, Int64(p.count), lr, b1, b2, eps, t) }
    }
}

/// AdamW (Loshchilov & Hutter 2019, decoupled weight decay) as PyTorch's `torch.optim.AdamW` implements it:
/// for each parameter, first θ ← θ (1 − lr·λ), then the Adam step of ``Adam`` from the decayed θ
/// (m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²; θ ← θ − lr (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + ε)).
/// The decay scales with the current learning rate, so it follows a schedule.
///
/// `decay` picks the parameters that are decayed (λ = 0 for the others): by default those with more than one
/// dimension, i.e. weight matrices and convolution kernels, not biases (nor BatchNorm's γ and β). With
/// `weightDecay` 0 every update is ``Adam``'s, bit for bit. Defaults: PyTorch's λ = 0.01; ε = 1e-7 as ``Adam``
/// here (PyTorch's is 1e-8).
public final class AdamW: Optimizer {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float, weightDecay: Float
    /// Whether each parameter (in the order given) is decayed.
    public let decays: [Bool]
    public var t: Int64 { moments.t }
    private var moments: AdamMoments

    public init(parameters: [Parameter], learningRate: Float = 1e-3, weightDecay: Float = 1e-2, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float = 1e-7, decay: (Parameter) -> Bool = { $0.shape.count > 1 }) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        decays = parameters.map(decay)
        moments = AdamMoments(parameters)
    }

    public var state: OptimizerState { moments.state }

    public func restore(_ state: OptimizerState) throws(FCLFError) { try moments.restore(state) }

    public func step() {
        let (lr, b1, b2, eps, wd, decays) = (learningRate, beta1, beta2, epsilon, weightDecay, decays)
        moments.step { i, p, m, v, t in
            fclf_adamw_update(p.value, m, v, p.grad, Int64(p.count), lr, b1, b2, eps, decays[i] ? wd : 0, t)
        }
    }
}

/// Stochastic gradient descent with (PyTorch-style) momentum, dampening 0:
/// g' = g + λ θ (L2 weight decay, `weightDecay` λ; 0 by default); b ← μ b + g'; then θ ← θ − lr b, or with
/// `nesterov`, θ ← θ − lr (g' + μ b) (Sutskever et al.'s look-ahead in PyTorch's form).
/// With the defaults (no Nesterov, λ = 0) the update is the plain momentum kernel's, bit for bit.
/// The decay applies to every parameter, biases included, as PyTorch's `weight_decay` does.
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    private let parameters: [Parameter]
    private let velocity: [Buffer<Float>]

    public init(parameters: [Parameter], learningRate: Float = 0.01, momentum: Float = 0.9, nesterov: Bool = false,
                weightDecay: Float = 0) {
        precondition(!nesterov || momentum > 0, "Nesterov momentum needs momentum > 0")
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        velocity = parameters.map { Buffer<Float>(capacity: $0.count) }
    }

    public var state: OptimizerState { .of(0, velocity, counts: parameters.map(\.count)) }

    public func restore(_ state: OptimizerState) throws(FCLFError) {
        try state.restore(into: velocity, counts: parameters.map(\.count))
    }

    public func step() {
        for (p, b) in zip(parameters, velocity) {
            let n = Int64(p.count)
            if nesterov {
                fclf_sgd_nesterov_update(p.value, b.pointer, p.grad, n, learningRate, momentum, weightDecay)
            } else if weightDecay != 0 {
                fclf_sgd_momentum_decay_update(p.value, b.pointer, p.grad, n, learningRate, momentum, weightDecay)
            } else {
                fclf_sgd_momentum_update(p.value, b.pointer, p.grad, n, learningRate, momentum)
            }
        }
    }
}
