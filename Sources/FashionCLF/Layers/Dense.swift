import CKernels

/// Fully connected layer with an optional fused activation f (identity or ReLU): y = f(x W + b).
///
/// Input `[N, in]` (any `[N, C, H, W]` with C·H·W = in is read as its flattening), weight `[in, out]`,
/// bias `[out]`, output `[N, out]`.
public final class Dense: Layer {
    public let inputSize: Int, outputSize: Int
    public let activation: Activation
    public let weight: Parameter
    public let bias: Parameter
    public let computesInputGradient: Bool
    public var parameters: [Parameter] { [weight, bias] }

    private let y = Buffer<Float>(), dx = Buffer<Float>(), dz = Buffer<Float>()
    /// W in the GEMM's panels (`packForInference`), nil when not packed.
    private let packedWeight = Buffer<Float>()
    private var packed: UnsafePointer<Float>?
    private var x: Tensor

    public init(inputSize: Int, outputSize: Int, activation: Activation = .none,
                computesInputGradient: Bool = true, initializer: Initializer = .glorotUniform, rng: inout SplitMix64) {
        self.activation = activation
        self.computesInputGradient = computesInputGradient
        self.inputSize = inputSize
        self.outputSize = outputSize
        weight = Parameter(name: "weight", shape: [inputSize, outputSize])
        bias = Parameter(name: "bias", shape: [outputSize])
        initializer.fill(weight.value, count: weight.count, fanIn: inputSize, fanOut: outputSize, rng: &rng)
        bias.value.update(repeating: 0, count: outputSize)
        x = Tensor(data: y.pointer, shape: Shape(n: 0, c: inputSize))  // replaced by the first forward
    }

    public func outputShape(_ input: Shape) -> Shape { Shape(n: input.n, c: outputSize) }

    private func run(_ x: UnsafePointer<Float>, n: Int, y: UnsafeMutablePointer<Float>) {
        fclf_dense_forward(y, x, weight.value, bias.value, Int64(n), Int64(inputSize), Int64(outputSize),
                           activation == .relu ? 1 : 0)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        self.x = x
        let yp = y.reserve(x.shape.n * outputSize)
        run(x.data, n: x.shape.n, y: yp)
        return Tensor(data: yp, shape: outputShape(x.shape))
    }

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        fclf_dense_forward_prepacked(y, x, weight.value, packed, bias.value, Int64(n), Int64(inputSize), Int64(outputSize),
                                     activation == .relu ? 1 : 0)
        return y
    }

    public func packForInference(_ input: Shape) {
        let count = Int(fclf_dense_packed_weights_size(Int64(inputSize), Int64(outputSize)))
        guard count > 0 else { packed = nil; return }
        let p = packedWeight.reserve(count)
        fclf_dense_pack_weights(p, weight.value, Int64(inputSize), Int64(outputSize))
        packed = UnsafePointer(p)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dxp: UnsafeMutablePointer<Float>? = computesInputGradient ? dx.reserve(x.shape.count) : nil
        fclf_dense_backward(dxp, weight.grad, bias.grad, dz.reserve(x.shape.n * outputSize), dy.data, x.data,
                            y.pointer, weight.value, Int64(x.shape.n), Int64(inputSize), Int64(outputSize),
                            activation == .relu ? 1 : 0)
        return Tensor(data: dxp ?? dx.pointer, shape: computesInputGradient ? x.shape : x.shape.withBatch(0))
    }
}
