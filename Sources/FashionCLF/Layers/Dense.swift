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
    public var computesInputGradient = true
    public var parameters: [Parameter] { [weight, bias] }

    private let y = Buffer<Float>(), dx = Buffer<Float>(), dz = Buffer<Float>()
    private var x: Tensor

    public init(inputSize: Int, outputSize: Int, activation: Activation = .none,
                initializer: Initializer = .glorotUniform, rng: inout SplitMix64) {
        self.activation = activation
        self.inputSize = inputSize
        self.outputSize = outputSize
        weight = Parameter(name: "weight", shape: [inputSize, outputSize])
        bias = Parameter(name: "bias", shape: [outputSize])
        initializer.fill(weight.value, count: weight.count, fanIn: inputSize, fanOut: outputSize, rng: &rng)
        bias.value.update(repeating: 0, count: outputSize)
        x = Tensor(data: y.pointer, shape: Shape(n: 0, c: inputSize))  // replaced by the first forward
    }

    public func outputShape(_ input: Shape) -> Shape { Shape(n: input.n, c: outputSize) }

    public func forward(_ x: Tensor) -> Tensor {
        self.x = x
        let yp = y.reserve(x.shape.n * outputSize)
        fclf_dense_forward(yp, x.data, weight.value, bias.value, Int64(x.shape.n), Int64(inputSize),
                           Int64(outputSize), activation == .relu ? 1 : 0)
        return Tensor(data: yp, shape: outputShape(x.shape))
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dxp: UnsafeMutablePointer<Float>? = computesInputGradient ? dx.reserve(x.shape.count) : nil
        fclf_dense_backward(dxp, weight.grad, bias.grad, dz.reserve(x.shape.n * outputSize), dy.data, x.data,
                            y.pointer, weight.value, Int64(x.shape.n), Int64(inputSize), Int64(outputSize),
                            activation == .relu ? 1 : 0)
        return Tensor(data: dxp ?? dx.pointer, shape: computesInputGradient ? x.shape : x.shape.withBatch(0))
    }
}
