import CKernels

/// A trainable tensor and its gradient, allocated once. `backward` passes ACCUMULATE into `grad`;
/// the trainer zeroes it before each batch.
public final class Parameter {
    public let name: String
    public let shape: [Int]
    public let count: Int
    public let value: UnsafeMutablePointer<Float>
    public let grad: UnsafeMutablePointer<Float>
    private let storage: Buffer<Float>

    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
        count = shape.reduce(1, *)
        storage = Buffer(capacity: 2 * count)
        value = storage.pointer
        grad = storage.pointer + count
    }

    public func zeroGrad() { grad.update(repeating: 0, count: count) }
}

/// A layer with an explicit backward pass (no autograd).
///
/// `forward` returns a view of the layer's own output buffer and keeps what `backward` needs;
/// `backward` takes dL/dy for that same batch, accumulates dL/dθ into the parameters' gradients and
/// returns dL/dx in the layer's own buffer.
public protocol Layer: AnyObject {
    /// The output shape for an input shape; the batch dimension passes through.
    func outputShape(_ input: Shape) -> Shape
    var parameters: [Parameter] { get }
    /// False for the first layer of a network: its input gradient is never used, so it is not computed.
    var computesInputGradient: Bool { get set }
    func forward(_ x: Tensor) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
}

extension Layer {
    public var parameters: [Parameter] { [] }
}
