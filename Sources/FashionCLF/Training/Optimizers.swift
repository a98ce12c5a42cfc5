import CKernels

/// An optimiser sees only the parameters it was given and their accumulated gradients.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// One update from the gradients currently held by the parameters.
    func step()
}

/// Adam (Kingma & Ba 2015) with bias correction; defaults as in Keras (epsilon 1e-7).
public final class Adam: Optimizer {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float
    public private(set) var t: Int64 = 0
    private let parameters: [Parameter]
    private let moments: [Buffer<Float>]

    public init(parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                epsilon: Float = 1e-7) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        moments = parameters.map { Buffer<Float>(capacity: 2 * $0.count) }  // zeroed: m then v
    }

    public func step() {
        t += 1
        for (p, mv) in zip(parameters, moments) {
            fclf_adam_update(p.value, mv.pointer, mv.pointer + p.count, p.grad, Int64(p.count), learningRate,
                             beta1, beta2, epsilon, t)
        }
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
    public private(set) var t: Int64 = 0
    private let parameters: [Parameter]
    private let moments: [Buffer<Float>]

    public init(parameters: [Parameter], learningRate: Float = 1e-3, weightDecay: Float = 1e-2, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float = 1e-7, decay: (Parameter) -> Bool = { $0.shape.count > 1 }) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        decays = parameters.map(decay)
        moments = parameters.map { Buffer<Float>(capacity: 2 * $0.count) }  // zeroed: m then v
    }

    public func step() {
        t += 1
        for ((p, mv), decayed) in zip(zip(parameters, moments), decays) {
            fclf_adamw_update(p.value, mv.pointer, mv.pointer + p.count, p.grad, Int64(p.count), learningRate,
                              beta1, beta2, epsilon, decayed ? weightDecay : 0, t)
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
