import CKernels

/// An activation fused into the layer that precedes it (Keras' `activation=` argument): one pass over
/// the output instead of a separate layer's two.
public enum Activation: String, Sendable {
    case none, relu
}

public enum Padding: String, Sendable {
    /// No padding: output side = input side - kernel + 1.
    case valid
    /// Zero padding so that output side = input side.
    case same
}

/// 2-D convolution, stride 1, with an optional fused activation f (identity or ReLU).
///
///     y[n, o, i, j] = f(b[o] + Σ_{c, u, v} w[o, c, u, v] · x[n, c, i + u - pad, j + v - pad])
///
/// Input `[N, C, H, W]`, weight `[O, C, K, K]`, bias `[O]`, output `[N, O, H', W']` with
/// H' = H - K + 1 for `.valid` and H' = H for `.same`.
public final class Conv2D: Layer {
    public let inChannels: Int, outChannels: Int, kernelSize: Int
    public let padding: Padding
    public let activation: Activation
    public let weight: Parameter
    public let bias: Parameter
    public var computesInputGradient = true
    /// Set (by `Sequential`) when a 2x2 max pooling follows: forward then returns the pooled output and
    /// backward takes the pooled gradient, while the MaxPool2D hands both through. With few taps per output
    /// (fclf_conv2d_pool_supported: the seed CNN's first layer) convolution and pooling are one pass and the
    /// full-size output is never stored; otherwise the output is pooled right after. Backward routes the
    /// pooled gradient straight into the layout the products read (the ReLU mask applied on the pooled
    /// output), so no full-size gradient is written and copied. The results are the two layers' bit for bit.
    public private(set) var poolsOutput = false
    public var parameters: [Parameter] { [weight, bias] }

    private let y = Buffer<Float>(), col = Buffer<Float>(), tmp = Buffer<Float>()
    private let dcol = Buffer<Float>(), dx = Buffer<Float>(), argmax = Buffer<Int32>(), pooledY = Buffer<Float>()
    private var shape = fclf_conv2d_shape()
    private var inputShape = Shape(n: 0, c: 0)
    /// The last forward's input: the backward pass packs the weight gradient's product straight from it.
    private var input: UnsafePointer<Float>?

    public init(inChannels: Int, outChannels: Int, kernelSize: Int, padding: Padding = .valid,
                activation: Activation = .none, initializer: Initializer = .glorotUniform, rng: inout SplitMix64) {
        self.activation = activation
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.padding = padding
        weight = Parameter(name: "weight", shape: [outChannels, inChannels, kernelSize, kernelSize])
        bias = Parameter(name: "bias", shape: [outChannels])
        let area = kernelSize * kernelSize
        initializer.fill(weight.value, count: weight.count, fanIn: inChannels * area,
                         fanOut: outChannels * area, rng: &rng)
        bias.value.update(repeating: 0, count: outChannels)
    }

    private func kernelShape(_ x: Shape) -> fclf_conv2d_shape {
        fclf_conv2d_make_shape(Int64(x.n), Int64(x.c), Int64(x.h), Int64(x.w), Int64(outChannels),
                               Int64(kernelSize), Int64(kernelSize), padding == .same ? 1 : 0)
    }

    public func outputShape(_ input: Shape) -> Shape {
        let s = kernelShape(input)
        return Shape(n: input.n, c: outChannels, h: Int(s.oh), w: Int(s.ow))
    }

    func fusePooling() { poolsOutput = true }

    public func forward(_ x: Tensor) -> Tensor {
        inputShape = x.shape
        input = UnsafePointer(x.data)
        shape = kernelShape(x.shape)
        let out = outputShape(x.shape)
        let relu: Int32 = activation == .relu ? 1 : 0
        let pooled = Shape(n: out.n, c: out.c, h: out.h / 2, w: out.w / 2)
        if poolsOutput && fclf_conv2d_pool_supported(shape) != 0 {
            let yp = pooledY.reserve(pooled.count)
            fclf_conv2d_pool_forward(yp, argmax.reserve(pooled.count), col.reserve(Int(fclf_conv2d_col_size(shape))),
                                     x.data, weight.value, bias.value, relu, shape)
            return Tensor(data: yp, shape: pooled)
        }
        let yp = y.reserve(out.count)
        let colp = fclf_conv2d_uses_col(shape) != 0 ? col.reserve(Int(fclf_conv2d_col_size(shape))) : col.pointer
        fclf_conv2d_forward(yp, colp, x.data, weight.value, bias.value, relu, shape)
        guard poolsOutput else { return Tensor(data: yp, shape: out) }
        let pooledp = pooledY.reserve(pooled.count)
        fclf_maxpool2x2_forward(pooledp, argmax.reserve(pooled.count), yp, Int64(out.n * out.c), Int64(out.h),
                                Int64(out.w))
        return Tensor(data: pooledp, shape: pooled)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dxp: UnsafeMutablePointer<Float>? = computesInputGradient ? dx.reserve(inputShape.count) : nil
        // Without dx, dcol only holds the K x oc weight-gradient product.
        let dcolp = dcol.reserve(computesInputGradient ? Int(fclf_conv2d_dcol_size(shape)) : weight.count)
        let tmpCount = fclf_conv2d_backward_tmp_size(shape, computesInputGradient ? 1 : 0, poolsOutput ? 1 : 0)
        let tmpp = tmp.reserve(Int(tmpCount))
        if poolsOutput {
            fclf_conv2d_pool_backward(dxp, weight.grad, bias.grad, dcolp, tmpp, dy.data, argmax.pointer,
                                      activation == .relu ? UnsafePointer(pooledY.pointer) : nil, col.pointer, input,
                                      weight.value, shape)
        } else {
            fclf_conv2d_backward(dxp, weight.grad, bias.grad, dcolp, tmpp, dy.data, y.pointer, col.pointer,
                                 input, weight.value, activation == .relu ? 1 : 0, shape)
        }
        return Tensor(data: dxp ?? dx.pointer, shape: computesInputGradient ? inputShape : inputShape.withBatch(0))
    }
}
