import CKernels

/// Softmax followed by cross-entropy, fused: L = (1/N) Σ_n -log softmax(z_n)[y_n], dL/dz = (p - onehot)/N.
///
/// With `labelSmoothing` ε > 0 (PyTorch's `CrossEntropyLoss(label_smoothing:)`), the target is
/// q = (1-ε) onehot + ε/K instead of onehot: L = (1/N) Σ_n -Σ_j q_nj log softmax(z_n)_j, dL/dz = (p - q)/N.
/// The loss returned is then this smoothed training loss (it is larger than the plain cross-entropy, and not 0
/// even for a perfect prediction); evaluate with a loss of smoothing 0 to report the plain cross-entropy.
/// ε = 0 gives the unsmoothed kernel's bits.
public final class SoftmaxCrossEntropy {
    public let classes: Int
    public let labelSmoothing: Float
    private let probs = Buffer<Float>(), dlogits = Buffer<Float>()

    public init(classes: Int, labelSmoothing: Float = 0) {
        precondition(labelSmoothing >= 0 && labelSmoothing <= 1, "label smoothing must lie in [0, 1]")
        self.classes = classes
        self.labelSmoothing = labelSmoothing
    }

    public var probabilities: UnsafeMutablePointer<Float> { probs.pointer }

    /// Returns the summed (not averaged) loss of the batch and keeps the probabilities.
    /// With `gradient`, also returns dL/dlogits of the batch-mean loss.
    public func callAsFunction(_ logits: Tensor, labels: UnsafePointer<Int32>, gradient: Bool) -> (sum: Double, dlogits: Tensor) {
        let n = logits.shape.n, count = n * classes
        let p = probs.reserve(count)
        let d: UnsafeMutablePointer<Float>? = gradient ? dlogits.reserve(count) : nil
        let sum = fclf_softmax_xent_smooth(d, p, logits.data, labels, Int64(n), Int64(classes), labelSmoothing)
        return (sum, Tensor(data: d ?? dlogits.pointer, shape: logits.shape))
    }
}
