/// The executor of one plan step (a layer, or layers the planner fused), with an explicit backward pass
/// (no autograd).
///
/// Training: `forward` returns a view of the layer's own output buffer (or, for a view or the identity, its
/// input) and keeps what `backward` needs; it never writes into its input. `backward` takes dL/dy for that same
/// batch, accumulates dL/dθ into the parameters' gradients and returns dL/dx in the layer's own buffer (or dy
/// itself, for a view or the identity); it never writes into dy, which a residual block's end also hands to the
/// block's start.
/// Inference: `infer` runs the same kernels on caller-owned memory and keeps nothing, so any number of
/// threads may infer with one layer at once.
public protocol Layer: AnyObject {
    /// The output shape for an input shape; the batch dimension passes through.
    func outputShape(_ input: Shape) -> Shape
    var parameters: [Parameter] { get }
    /// False for the first step of a network: its input gradient is never used, so it is not computed.
    var computesInputGradient: Bool { get }
    /// What a model file stores for the layer, in its order: the parameters, then any state training keeps
    /// outside the gradient (BatchNorm's running statistics).
    var stored: [Parameter] { get }
    /// `training` false: evaluation (BatchNorm uses its running statistics, dropout is the identity).
    func forward(_ x: Tensor, training: Bool) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
    /// Floats of scratch `infer` needs for a batch of `n` inputs of per-sample shape `input`.
    func inferenceWork(_ input: Shape, n: Int) -> Int
    /// Inference on `n` samples of per-sample shape `input` at `x`: returns the output, written to `y` (room
    /// for the output) or, for an op that works in place or only reshapes, left in `x`.
    func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
               work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float>
    /// Inference plans call this once their weights are final: a layer whose product packs its weights on
    /// every call (convolutions, dense layers) packs them here once, and `infer` reads them as they are.
    func packForInference(_ input: Shape)
    /// True for a residual block's two ends (`Shortcut`, `AddShortcut`): their `infer` gets, as `work`, memory the
    /// caller keeps intact between them (the block's input), apart from the scratch every other step shares.
    var keepsWork: Bool { get }
}

extension Layer {
    public var parameters: [Parameter] { [] }
    public var stored: [Parameter] { parameters }
    /// The training forward pass.
    public func forward(_ x: Tensor) -> Tensor { forward(x, training: true) }
    public func inferenceWork(_ input: Shape, n: Int) -> Int { 0 }
    public func packForInference(_ input: Shape) {}
    public var keepsWork: Bool { false }
}
