import CKernels

/// Softmax followed by cross-entropy, fused: L = (1/N) Σ_n -log softmax(z_n)[y_n], dL/dz = (p - onehot)/N.
public final class SoftmaxCrossEntropy {
    public let classes: Int
    private let probs = Buffer<Float>(), dlogits = Buffer<Float>()

    public init(classes: Int) { self.classes = classes }

    public var probabilities: UnsafeMutablePointer<Float> { probs.pointer }

    /// Returns the summed (not averaged) loss of the batch and keeps the probabilities.
    /// With `gradient`, also returns dL/dlogits of the batch-mean loss.
    public func callAsFunction(_ logits: Tensor, labels: UnsafePointer<Int32>, gradient: Bool) -> (sum: Double, dlogits: Tensor) {
        let n = logits.shape.n, count = n * classes
        let p = probs.reserve(count)
        let d: UnsafeMutablePointer<Float>? = gradient ? dlogits.reserve(count) : nil
        let sum = fclf_softmax_xent(d, p, logits.data, labels, Int64(n), Int64(classes))
        return (sum, Tensor(data: d ?? dlogits.pointer, shape: logits.shape))
    }
}
