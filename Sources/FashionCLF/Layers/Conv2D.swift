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
    /// Set when the layer after has already zeroed dy where this layer's ReLU output is 0 (a MaxPool2D with
    /// `appliesPrecedingReLUMask`): the backward pass then skips the mask and never reads its output y
    /// again (2.8 MB per batch of 32 for the seed CNN's first layer). The gradients are the same.
    public var outputGradientIsMasked = false
    /// Set (by `Sequential`) when this first layer is fused with the 2x2 max pooling after it: forward then
    /// returns the pooled output, backward takes the pooled gradient, and the MaxPool2D passes both through.
    /// The full-size output and its gradient are never stored (fclf_conv2d_pool_forward); the results are
    /// those of the two layers.
    public private(set) var poolsOutput = false
    public var parameters: [Parameter] { [weight, bias] }

    private let y = Buffer<Float>(), col = Buffer<Float>(), tmp = Buffer<Float>()
    private let dcol = Buffer<Float>(), dx = Buffer<Float>(), argmax = Buffer<Int32>()
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

    /// Whether this layer, taking inputs of `input`'s per-sample shape, can fuse the pooling after it.
    func canPoolOutput(_ input: Shape) -> Bool {
        fclf_conv2d_pool_supported(kernelShape(input)) != 0 && !computesInputGradient
    }

    func fusePooling() { poolsOutput = true }

    public func forward(_ x: Tensor) -> Tensor {
        inputShape = x.shape
        input = UnsafePointer(x.data)
        shape = kernelShape(x.shape)
        let out = outputShape(x.shape)
        if poolsOutput {
            let pooled = Shape(n: out.n, c: out.c, h: out.h / 2, w: out.w / 2)
            let yp = y.reserve(pooled.count)
            fclf_conv2d_pool_forward(yp, argmax.reserve(pooled.count), col.reserve(Int(fclf_conv2d_col_size(shape))),
                                     x.data, weight.value, bias.value, activation == .relu ? 1 : 0, shape)
            return Tensor(data: yp, shape: pooled)
        }
        let yp = y.reserve(out.count)
        let colp = fclf_conv2d_uses_col(shape) != 0 ? col.reserve(Int(fclf_conv2d_col_size(shape))) : col.pointer
        fclf_conv2d_forward(yp, colp, x.data, weight.value, bias.value, activation == .relu ? 1 : 0, shape)
        return Tensor(data: yp, shape: out)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let pooledY: UnsafePointer<Float>? = activation == .relu ? UnsafePointer(y.pointer) : nil
        if poolsOutput && !computesInputGradient {
            fclf_conv2d_pool_backward(weight.grad, bias.grad, dy.data, argmax.pointer, pooledY, col.pointer, shape)
            return Tensor(data: dx.pointer, shape: inputShape.withBatch(0))
        }
        if poolsOutput { // dx asked for after fusing: route the gradient back to full size, then as unfused
            let full = outputShape(inputShape)
            let dyFull = tmp.reserve(full.count + Int(fclf_conv2d_tmp_size(shape)))
            fclf_maxpool2x2_backward(dyFull, dy.data, argmax.pointer, pooledY, Int64(full.n * full.c), Int64(full.h),
                                     Int64(full.w))
            let dxp = dx.reserve(inputShape.count)
            fclf_conv2d_backward(dxp, weight.grad, bias.grad, dcol.reserve(Int(fclf_conv2d_dcol_size(shape))),
                                 dyFull + full.count, dyFull, nil, col.pointer, input, weight.value, 0, shape)
            return Tensor(data: dxp, shape: inputShape)
        }
        let dxp: UnsafeMutablePointer<Float>? = computesInputGradient ? dx.reserve(inputShape.count) : nil
        // Without dx, dcol only holds the K x oc weight-gradient product.
        let dcolp = dcol.reserve(computesInputGradient ? Int(fclf_conv2d_dcol_size(shape)) : weight.count)
        let tmpp = tmp.reserve(Int(fclf_conv2d_tmp_size(shape)))
        fclf_conv2d_backward(dxp, weight.grad, bias.grad, dcolp, tmpp, dy.data, y.pointer, col.pointer,
                             input, weight.value, activation == .relu && !outputGradientIsMasked ? 1 : 0, shape)
        return Tensor(data: dxp ?? dx.pointer, shape: computesInputGradient ? inputShape : inputShape.withBatch(0))
    }
}
