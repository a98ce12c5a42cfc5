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

/// Stochastic gradient descent with (PyTorch-style) momentum: b = μ b + g; θ -= lr b.
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float
    private let parameters: [Parameter]
    private let velocity: [Buffer<Float>]

    public init(parameters: [Parameter], learningRate: Float = 0.01, momentum: Float = 0.9) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        velocity = parameters.map { Buffer<Float>(capacity: $0.count) }
    }

    public func step() {
        for (p, b) in zip(parameters, velocity) {
            fclf_sgd_momentum_update(p.value, b.pointer, p.grad, Int64(p.count), learningRate, momentum)
        }
    }
}
