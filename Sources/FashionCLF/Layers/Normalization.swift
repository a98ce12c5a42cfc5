import CKernels

/// Batch normalisation (Ioffe & Szegedy 2015) over channels, with a learnt scale γ and shift β:
///
///     training:   y = γ (x - μ_B) / sqrt(σ²_B + ε) + β   (μ_B, σ²_B: the batch's per-channel statistics)
///     evaluation: y = γ (x - μ_run) / sqrt(σ²_run + ε) + β
///
/// The running statistics follow each training batch (PyTorch's momentum rule) and are stored in the model
/// file after γ and β. Input `[N, C, H, W]` or `[N, C]`; the inference plan folds the evaluation form into
/// the convolution or dense layer before it when there is one. With `relu` (the planner fuses a ReLU that
/// follows) y = max(y, 0) in the same pass, and backward masks dL/dy by y > 0. With `pool` as well (training
/// plans, when a 2x2 max pooling follows the ReLU) the step's output is max-pooled in the same pass:
/// `[N, C, H/2, W/2]`, and the full-size output is never stored.
public final class BatchNorm: Layer {
    public let channels: Int
    public let gamma: Parameter, beta: Parameter
    public let runningMean: Parameter, runningVariance: Parameter
    public let computesInputGradient: Bool
    public let relu: Bool
    public let pool: Bool
    public var parameters: [Parameter] { [gamma, beta] }
    public var stored: [Parameter] { [gamma, beta, runningMean, runningVariance] }
    static let epsilon = LayerSpec.batchNormEpsilon
    /// The running statistics' update weight per training batch: LayerSpec's 0.1 while training; a cumulative
    /// 1 / (k + 1) at batch k while `Trainer.recomputeBatchNormStatistics` averages them over a whole pass.
    var momentum = LayerSpec.batchNormMomentum

    private let y = Buffer<Float>(), dx = Buffer<Float>(), mean = Buffer<Float>(), invstd = Buffer<Float>()
    /// With `pool`: the winners of the pooling, and the full-size values before it (evaluation's output;
    /// the backward pass's unpooled gradient, laid out channel by channel).
    private let argmax = Buffer<Int32>(), unpooled = Buffer<Float>()
    /// Evaluation's scale and shift, 2 x channels (inference keeps them in its call's scratch instead).
    private let coefficients = Buffer<Float>()
    private var input = Tensor(data: UnsafeMutablePointer<Float>(bitPattern: 64)!, shape: Shape(n: 0, c: 0))

    public init(channels: Int, relu: Bool = false, pool: Bool = false, computesInputGradient: Bool = true) {
        precondition(!pool || relu, "BatchNorm: pooling is fused only after a fused ReLU")
        self.channels = channels
        self.relu = relu
        self.pool = pool
        self.computesInputGradient = computesInputGradient
        gamma = Parameter(name: "gamma", shape: [channels])
        beta = Parameter(name: "beta", shape: [channels])
        runningMean = Parameter(name: "running_mean", shape: [channels])
        runningVariance = Parameter(name: "running_var", shape: [channels])
        gamma.value.update(repeating: 1, count: channels)
        beta.value.update(repeating: 0, count: channels)
        runningMean.value.update(repeating: 0, count: channels)
        runningVariance.value.update(repeating: 1, count: channels)
    }

    public func outputShape(_ input: Shape) -> Shape {
        pool ? Shape(n: input.n, c: input.c, h: input.h / 2, w: input.w / 2) : input
    }

    /// The evaluation form's per-channel scale and shift.
    public func inferenceCoefficients() -> (scale: [Float], shift: [Float]) {
        var s = [Float](repeating: 0, count: channels), t = s
        fclf_batchnorm_inference_coefficients(&s, &t, gamma.value, beta.value, runningMean.value, runningVariance.value,
                                              Int64(channels), BatchNorm.epsilon)
        return (s, t)
    }

    /// The evaluation form, for training's evaluation and for inference alike: out = act(x * s + t) for `n`
    /// samples of per-sample shape `shape`, with s and t written to `st` (2 x channels floats).
    private func evaluate(_ x: UnsafePointer<Float>, _ shape: Shape, n: Int, into out: UnsafeMutablePointer<Float>,
                          coefficients st: UnsafeMutablePointer<Float>) {
        fclf_batchnorm_inference_coefficients(st, st + channels, gamma.value, beta.value, runningMean.value,
                                              runningVariance.value, Int64(channels), BatchNorm.epsilon)
        fclf_channel_affine(out, x, st, st + channels, Int64(n), Int64(channels), Int64(shape.h * shape.w))
        if relu { fclf_relu_forward(out, out, Int64(n * shape.perSample)) }
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        input = x
        let out = outputShape(x.shape)
        let yp = y.reserve(out.count)
        if pool {
            let (n, h, w) = (Int64(x.shape.n), Int64(x.shape.h), Int64(x.shape.w))
            if training {
                fclf_batchnorm_relu_pool_forward_train(yp, argmax.reserve(out.count), mean.reserve(channels), invstd.reserve(channels),
                                                       runningMean.value, runningVariance.value, x.data, gamma.value, beta.value,
                                                       n, Int64(channels), h, w, momentum, BatchNorm.epsilon)
            } else {
                let full = unpooled.reserve(x.shape.count)
                evaluate(x.data, x.shape, n: x.shape.n, into: full, coefficients: coefficients.reserve(2 * channels))
                fclf_maxpool2x2_forward(yp, nil, full, n * Int64(channels), h, w)
            }
            return Tensor(data: yp, shape: out)
        }
        if training {
            fclf_batchnorm_forward_train(yp, mean.reserve(channels), invstd.reserve(channels), runningMean.value,
                                         runningVariance.value, x.data, gamma.value, beta.value, Int64(x.shape.n),
                                         Int64(channels), Int64(x.shape.h * x.shape.w), momentum, BatchNorm.epsilon,
                                         relu ? 1 : 0)
        } else {
            evaluate(x.data, x.shape, n: x.shape.n, into: yp, coefficients: coefficients.reserve(2 * channels))
        }
        return Tensor(data: yp, shape: x.shape)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let shape = input.shape
        let dxp: UnsafeMutablePointer<Float>? = computesInputGradient ? dx.reserve(shape.count) : nil
        if pool {
            fclf_batchnorm_relu_pool_backward(dxp, gamma.grad, beta.grad, unpooled.reserve(shape.count), dy.data, argmax.pointer,
                                              y.pointer, input.data, mean.pointer, invstd.pointer, gamma.value, Int64(shape.n),
                                              Int64(channels), Int64(shape.h), Int64(shape.w))
        } else {
            fclf_batchnorm_backward(dxp, gamma.grad, beta.grad, dy.data, relu ? UnsafePointer(y.pointer) : nil, input.data, mean.pointer,
                                    invstd.pointer, gamma.value, Int64(shape.n), Int64(channels), Int64(shape.h * shape.w))
        }
        return Tensor(data: dxp ?? dx.pointer, shape: computesInputGradient ? shape : shape.withBatch(0))
    }

    /// Training forward of the network's first convolution `conv` and this BatchNorm after it as one pass
    /// (`ConvBatchNorm`): the batch statistics from the moments of x's patches, the convolution's output
    /// computed plane by plane in L1 and never stored. `moments` is kept for `backward(_:intoFirstConvolution:)`.
    func forward(_ x: Tensor, afterFirstConvolution conv: Conv2D, moments: Buffer<Double>) -> Tensor {
        let s = conv.kernelShape(x.shape)
        let out = outputShape(Shape(n: x.shape.n, c: channels, h: Int(s.oh), w: Int(s.ow)))
        let yp = y.reserve(out.count)
        fclf_conv2d_batchnorm_forward_train(yp, pool ? argmax.reserve(out.count) : nil, mean.reserve(channels), invstd.reserve(channels),
                                            runningMean.value, runningVariance.value, moments.reserve(Int(fclf_conv2d_batchnorm_moments_size(s))),
                                            x.data, conv.weight.value, conv.bias.value, gamma.value, beta.value, relu ? 1 : 0, pool ? 1 : 0,
                                            s, momentum, BatchNorm.epsilon)
        return Tensor(data: yp, shape: out)
    }

    /// Backward of that pass: accumulates dL/dγ, dL/dβ and the convolution's weight gradient (its bias gets
    /// none: BatchNorm removes any shift); nothing else.
    func backward(_ dy: Tensor, intoFirstConvolution conv: Conv2D, x: Tensor, moments: Buffer<Double>) {
        fclf_conv2d_batchnorm_backward(conv.weight.grad, gamma.grad, beta.grad, dy.data, pool ? argmax.pointer : nil,
                                       relu ? UnsafePointer(y.pointer) : nil, x.data, conv.weight.value, invstd.pointer,
                                       gamma.value, moments.pointer, pool ? 1 : 0, conv.kernelShape(x.shape))
    }

    public func inferenceWork(_ input: Shape, n: Int) -> Int { 2 * channels }

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        // Coefficients into the call's scratch: this layer's own buffers are not shared between threads.
        evaluate(x, input, n: n, into: x, coefficients: work)
        guard pool else { return x }
        fclf_maxpool2x2_forward(y, nil, x, Int64(n * channels), Int64(input.h), Int64(input.w))
        return y
    }
}

/// Inverted dropout (Srivastava et al. 2014): in training each value is kept with probability 1 - rate and
/// scaled by 1/(1 - rate); evaluation is the identity. The mask of the k-th training batch is a pure function
/// of (the layer's seed, k), so a run is reproducible from its seed whatever the thread count.
public final class Dropout: Layer {
    public let rate: Float
    public let computesInputGradient = true
    private let seed: UInt64
    /// Training batches seen so far (the next mask's k - 1); training checkpoints save and restore it.
    var batches: UInt64 = 0
    private let y = Buffer<Float>(), dx = Buffer<Float>(), mask = Buffer<UInt8>()
    private var shape = Shape(n: 0, c: 0)
    private var active = false

    public init(rate: Float, seed: UInt64) {
        self.rate = rate
        self.seed = seed
    }

    public func outputShape(_ input: Shape) -> Shape { input }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        shape = x.shape
        active = training && rate > 0
        guard active else { return x }
        batches += 1
        let yp = y.reserve(x.shape.count)
        var rng = SplitMix64(seed: seed &+ batches &* 0x9E37_79B9_7F4A_7C15)
        fclf_dropout_forward(yp, mask.reserve(x.shape.count), x.data, Int64(x.shape.count), rate, rng.next())
        return Tensor(data: yp, shape: x.shape)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard active else { return dy }
        // Into its own buffer, never into dy: a residual block's end hands the same dy to its shortcut.
        let dxp = dx.reserve(shape.count)
        fclf_dropout_backward(dxp, dy.data, mask.pointer, Int64(shape.count), rate)
        return Tensor(data: dxp, shape: shape)
    }

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> { x }
}

/// Global average pooling: `[N, C, H, W]` -> `[N, C]`, each channel's mean; the gradient spreads evenly.
public final class GlobalAvgPool: Layer {
    public let computesInputGradient = true
    private let y = Buffer<Float>(), dx = Buffer<Float>()
    private var inputShape = Shape(n: 0, c: 0)

    public init() {}

    public func outputShape(_ input: Shape) -> Shape { Shape(n: input.n, c: input.c) }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = x.shape
        let yp = y.reserve(x.shape.n * x.shape.c)
        fclf_global_avgpool_forward(yp, x.data, Int64(x.shape.n * x.shape.c), Int64(x.shape.h * x.shape.w))
        return Tensor(data: yp, shape: outputShape(x.shape))
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dxp = dx.reserve(inputShape.count)
        fclf_global_avgpool_backward(dxp, dy.data, Int64(inputShape.n * inputShape.c), Int64(inputShape.h * inputShape.w))
        return Tensor(data: dxp, shape: inputShape)
    }

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        fclf_global_avgpool_forward(y, x, Int64(n * input.c), Int64(input.h * input.w))
        return y
    }
}

/// A network's first convolution and the BatchNorm (with its ReLU and 2x2 max pooling, when the planner fused
/// them) right after it, as one training step that never stores the convolution's output
/// (`fclf_conv2d_batchnorm_forward_train`, `fclf_conv2d_batchnorm_backward`). With z = w . x_p + b over the
/// patches x_p, BatchNorm's statistics are mean(z) = w . m + b and var(z) = w^T C w for the patches' mean m and
/// covariance C, and its gradients are sums of g x_p against the input; z (6.4 MB for the first layer of
/// cnn3-bn at batch 64) is computed plane by plane in L1 instead of written and read back four times. Only a
/// first layer qualifies: nothing upstream reads the convolution's input gradient. Evaluation runs the two
/// layers as they are. What the step stores is the two layers' values in the model file's order.
public final class ConvBatchNorm: Layer {
    public let conv: Conv2D
    public let norm: BatchNorm
    public let computesInputGradient = false
    public var parameters: [Parameter] { conv.parameters + norm.parameters }
    public var stored: [Parameter] { conv.stored + norm.stored }

    public init(conv: Conv2D, norm: BatchNorm) {
        precondition(!conv.computesInputGradient && conv.activation == .none && conv.pooling == .none,
                     "ConvBatchNorm: a first convolution without activation or pooling of its own")
        precondition(conv.outChannels == norm.channels && norm.computesInputGradient,
                     "ConvBatchNorm: a BatchNorm over the convolution's \(conv.outChannels) channels that computes its input gradient")
        self.conv = conv
        self.norm = norm
    }

    /// The batch's patch moments, from the fused forward pass to its backward pass.
    private let moments = Buffer<Double>()
    private var fused = false
    private var input = Tensor(data: UnsafeMutablePointer<Float>(bitPattern: 64)!, shape: Shape(n: 0, c: 0))

    public func outputShape(_ input: Shape) -> Shape { norm.outputShape(conv.outputShape(input)) }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        // The planner only fuses shapes the kernels support; a step built by hand with others runs the two
        // layers apart (the same function, other sums).
        input = x
        fused = training && fclf_conv2d_batchnorm_supported(conv.kernelShape(x.shape), norm.pool ? 1 : 0) != 0
        guard fused else { return norm.forward(conv.forward(x, training: training), training: training) }
        return norm.forward(x, afterFirstConvolution: conv, moments: moments)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        if fused {
            norm.backward(dy, intoFirstConvolution: conv, x: input, moments: moments)
        } else {
            _ = conv.backward(norm.backward(dy))
        }
        return Tensor(data: dy.data, shape: input.shape.withBatch(0))
    }

    public func inferenceWork(_ input: Shape, n: Int) -> Int {
        let z = conv.outputShape(input)
        return z.perSample * n + max(conv.inferenceWork(input, n: n), norm.inferenceWork(z, n: n))
    }

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        let z = conv.outputShape(input), zp = work
        let produced = conv.infer(x, input, n: n, y: zp, work: work + z.perSample * n)
        let out = norm.infer(produced, z, n: n, y: y, work: work + z.perSample * n)
        if out != y { y.update(from: out, count: n * outputShape(input).perSample) }  // the output goes to y, not scratch
        return y
    }
}
