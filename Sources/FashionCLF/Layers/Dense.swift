import CKernels

/// Fully connected layer: y = x W + b.
///
/// Input `[N, in]` (any `[N, C, H, W]` with C·H·W = in is read as its flattening), weight `[in, out]`,
/// bias `[out]`, output `[N, out]`.
public final class Dense: Layer {
    public let inputSize: Int, outputSize: Int
    public let weight: Parameter
    public let bias: Parameter
    public var computesInputGradient = true
    public var parameters: [Parameter] { [weight, bias] }

    private let y = Buffer<Float>(), dx = Buffer<Float>()
    private var x: Tensor

    public init(inputSize: Int, outputSize: Int, initializer: Initializer = .glorotUniform,
                rng: inout SplitMix64) {
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
                           Int64(outputSize))
        return Tensor(data: yp, shape: outputShape(x.shape))
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dxp: UnsafeMutablePointer<Float>? = computesInputGradient ? dx.reserve(x.shape.count) : nil
        fclf_dense_backward(dxp, weight.grad, bias.grad, dy.data, x.data, weight.value, Int64(x.shape.n),
                            Int64(inputSize), Int64(outputSize))
        return Tensor(data: dxp ?? dx.pointer, shape: computesInputGradient ? x.shape : x.shape.withBatch(0))
    }
}
