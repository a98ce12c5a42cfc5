import CKernels

/// 2-D convolution, stride 1, with an activation f (identity or ReLU) and, when the planner fused it, the
/// 2x2 max pooling that follows:
///
///     z[n, o, i, j] = f(b[o] + Σ_{c, u, v} w[o, c, u, v] · x[n, c, i + u - pad, j + v - pad])
///     y = z, or y[n, o, i, j] = max over the 2x2 window of z at (2i, 2j) when pooled
///
/// Input `[N, C, H, W]`, weight `[O, C, K, K]`, bias `[O]`, z `[N, O, H', W']` with H' = H - K + 1 for
/// `.valid` and H' = H for `.same`; y is z or `[N, O, H'/2, W'/2]`.
///
/// Pooled, backward routes the pooled gradient (with f's mask, read on the pooled output) straight into the
/// layout the products read, so the full-size gradient is never written; with `.onePass` neither the full-size
/// z nor an im2col matrix is stored (the taps are read from x). The forward results are those of the two
/// separate layers, bit for bit (`.winograd`'s to rounding); so is the backward pass's, except that `.onePass`
/// sums the weight and bias gradients in other lanes (to rounding). Where the product has 16 or more taps (c·k·k), the pooled backward pass
/// sums one term per pooling window at its winner instead (`fclf_conv2d_pool_backward_winners`), to rounding for
/// finite x and weights (positions that pass no gradient are skipped, so a NaN there does not spread into the
/// gradients as it does through the products).
public final class Conv2D: Layer {
    public let inChannels: Int, outChannels: Int, kernelSize: Int
    public let padding: Padding
    public let activation: Activation
    public let pooling: Plan.Step.ConvPooling
    /// Unpooled: the forward product by Winograd's F(2x2, 3x3) where this CPU has the kernel for the batch's
    /// shape (`fclf_conv2d_winograd_forward`, to rounding), else the GEMM's. Inference runs the GEMM.
    public let winograd: Bool
    public let weight: Parameter
    public let bias: Parameter
    public let computesInputGradient: Bool
    public var parameters: [Parameter] { [weight, bias] }

    private let y = Buffer<Float>(), col = Buffer<Float>(), tmp = Buffer<Float>()
    private let dcol = Buffer<Float>(), dx = Buffer<Float>(), argmax = Buffer<Int32>(), pooledY = Buffer<Float>()
    /// The weights in the GEMM's panels (`packForInference`), nil where the layer reads them as they are.
    private let packedWeight = Buffer<Float>(), trainingPacked = Buffer<Float>()
    private var packed: UnsafePointer<Float>?
    /// The last training forward's kernel shape (batch included).
    private(set) var shape = fclf_conv2d_shape()
    private(set) var inputShape = Shape(n: 0, c: 0)
    /// The last forward's input: the backward pass packs the weight gradient's product straight from it.
    private(set) var input: UnsafePointer<Float>?

    public init(inChannels: Int, outChannels: Int, kernelSize: Int, padding: Padding = .valid,
                activation: Activation = .none, pooling: Plan.Step.ConvPooling = .none, winograd: Bool = false,
                computesInputGradient: Bool = true, initializer: Initializer = .glorotUniform, rng: inout SplitMix64) {
        self.activation = activation
        self.winograd = winograd && pooling == .none
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelSize = kernelSize
        self.padding = padding
        self.pooling = pooling
        self.computesInputGradient = computesInputGradient
        weight = Parameter(name: "weight", shape: [outChannels, inChannels, kernelSize, kernelSize])
        bias = Parameter(name: "bias", shape: [outChannels])
        let area = kernelSize * kernelSize
        initializer.fill(weight.value, count: weight.count, fanIn: inChannels * area,
                         fanOut: outChannels * area, rng: &rng)
        bias.value.update(repeating: 0, count: outChannels)
    }

    func kernelShape(_ x: Shape) -> fclf_conv2d_shape {
        convShape(x, outChannels: outChannels, kernelSize: kernelSize, padding: padding)
    }

    /// The convolution's own output shape, before any pooling.
    private func productShape(_ input: Shape) -> Shape {
        let s = kernelShape(input)
        return Shape(n: input.n, c: outChannels, h: Int(s.oh), w: Int(s.ow))
    }

    public func outputShape(_ input: Shape) -> Shape {
        let z = productShape(input)
        return pooling == .none ? z : Shape(n: z.n, c: z.c, h: z.h / 2, w: z.w / 2)
    }

    /// The pooling the kernels run for this batch: the planner's choice, except that a one-pass, per-window or
    /// Winograd request the kernels cannot serve for this shape (a layer built by hand) or CPU (the window kernel
    /// needs AVX-512, or AVX2 for the GEMM's shapes and one-channel 3x3; Winograd needs AVX-512 or AVX2) takes the path
    /// that can, as does training for per-window, which keeps no winners. Every path but Winograd gives the same
    /// bits.
    private func pooling(_ s: fclf_conv2d_shape, training: Bool = false) -> Plan.Step.ConvPooling {
        switch pooling {
        case .onePass where fclf_conv2d_pool_supported(s) == 0: .afterwards
        case .perWindow where training || fclf_conv2d_window_pool_packed_size(s) == 0:
            fclf_conv2d_pool_supported(s) != 0 ? .onePass : .afterwards
        case .winograd where fclf_conv2d_winograd_pool_packed_size(s) == 0:
            fclf_conv2d_pool_supported(s) != 0 ? .onePass : .afterwards
        default: pooling
        }
    }

    /// The forward pass of both modes: training keeps `col` (where the path has one) and the pooling's winners
    /// (`argmax`), inference passes scratch for `col` and no winners. `z` receives the unpooled output when it is pooled afterwards.
    private func run(_ x: UnsafePointer<Float>, _ s: fclf_conv2d_shape, y: UnsafeMutablePointer<Float>,
                     z: UnsafeMutablePointer<Float>, col: UnsafeMutablePointer<Float>?, argmax: UnsafeMutablePointer<Int32>?,
                     packed: UnsafePointer<Float>? = nil) {
        let relu: Int32 = activation == .relu ? 1 : 0
        switch pooling(s, training: argmax != nil) {
        case .onePass:
            fclf_conv2d_pool_forward(y, argmax, x, weight.value, bias.value, relu, s)
        case .none:
            fclf_conv2d_forward_prepacked(y, col, x, weight.value, packed, bias.value, relu, s)
        case .afterwards:
            fclf_conv2d_forward_prepacked(z, col, x, weight.value, packed, bias.value, relu, s)
            fclf_maxpool2x2_forward(y, argmax, z, s.n * s.oc, s.oh, s.ow)
        case .perWindow:
            fclf_conv2d_window_pool(y, z, x, weight.value, packed, bias.value, relu, s)
        case .winograd:
            fclf_conv2d_winograd_pool(y, argmax, z, x, weight.value, packed, bias.value, relu, s)
        }
    }

    public func packForInference(_ input: Shape) {
        let s = kernelShape(input.withBatch(1))
        let way = pooling(s)
        let count = Int(way == .winograd ? fclf_conv2d_winograd_pool_packed_size(s)
            : way == .perWindow ? fclf_conv2d_window_pool_packed_size(s) : fclf_conv2d_packed_weights_size(s))
        guard count > 0, way != .onePass else { packed = nil; return }
        let p = packedWeight.reserve(count)
        switch way {
        case .winograd: fclf_conv2d_winograd_pool_pack_weights(p, weight.value, s)
        case .perWindow: fclf_conv2d_window_pool_pack_weights(p, weight.value, s)
        default: fclf_conv2d_pack_weights(p, weight.value, s)
        }
        packed = UnsafePointer(p)
    }

    /// Floats of col the passes keep: the im2col matrix, or x in zero-framed planes for a padded shape that
    /// packs from x (0 when the products read x itself).
    private func colCount(_ s: fclf_conv2d_shape, training: Bool = false) -> Int {
        switch pooling(s, training: training) {
        case .perWindow, .winograd, .onePass: 0  // reads x
        default: fclf_conv2d_uses_col(s) != 0 ? Int(fclf_conv2d_col_size(s)) : 0
        }
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = x.shape
        input = UnsafePointer(x.data)
        shape = kernelShape(x.shape)
        let out = outputShape(x.shape)
        let colp = colCount(shape, training: true) > 0 ? col.reserve(colCount(shape, training: true)) : nil
        if pooling == .none {
            let yp = y.reserve(out.count)
            if winograd, fclf_conv2d_winograd_packed_size(shape) > 0 {
                // the transformed weights again after each step's update; col (which the GEMM's backward pass does
                // not read for these 'valid' shapes) holds the transformed input
                let p = trainingPacked.reserve(Int(fclf_conv2d_winograd_packed_size(shape)))
                fclf_conv2d_winograd_pack_weights(p, weight.value, shape)
                let work = col.reserve(Int(fclf_conv2d_winograd_work_size(shape)))
                fclf_conv2d_winograd_forward(yp, work, x.data, weight.value, p, bias.value, activation == .relu ? 1 : 0, shape)
            } else {
                run(x.data, shape, y: yp, z: yp, col: colp, argmax: nil)
            }
            return Tensor(data: yp, shape: out)
        }
        let way = pooling(shape, training: true)
        let z = way == .afterwards ? y.reserve(productShape(x.shape).count)
            : way == .winograd ? y.reserve(Int(fclf_conv2d_winograd_pool_work_size(shape))) : y.pointer
        // Winograd's transformed weights, again after each step's update.
        var transformed: UnsafePointer<Float>?
        if way == .winograd {
            let p = trainingPacked.reserve(Int(fclf_conv2d_winograd_pool_packed_size(shape)))
            fclf_conv2d_winograd_pool_pack_weights(p, weight.value, shape)
            transformed = UnsafePointer(p)
        }
        let yp = pooledY.reserve(out.count)
        run(x.data, shape, y: yp, z: z, col: colp, argmax: argmax.reserve(out.count), packed: transformed)
        return Tensor(data: yp, shape: out)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dxp: UnsafeMutablePointer<Float>? = computesInputGradient ? dx.reserve(inputShape.count) : nil
        let mask = activation == .relu ? UnsafePointer(pooledY.pointer) : nil
        let pooled = pooling != .none
        if pooled && fclf_conv2d_pool_backward_winners_supported(shape) != 0 {
            // One term per pooling window that passes a gradient; the work holds x, dx and w channel-last.
            let work = dcol.reserve(Int(fclf_conv2d_pool_backward_winners_work_size(shape)))
            fclf_conv2d_pool_backward_winners(dxp, weight.grad, bias.grad, work, dy.data, argmax.pointer, mask, input,
                                              weight.value, shape)
        } else {
            // Without dx, dcol only holds the K x oc weight-gradient product.
            let dcolp = dcol.reserve(computesInputGradient ? Int(fclf_conv2d_dcol_size(shape)) : weight.count)
            let tmpp = tmp.reserve(Int(fclf_conv2d_backward_tmp_size(shape, computesInputGradient ? 1 : 0, pooled ? 1 : 0)))
            if pooled {
                fclf_conv2d_pool_backward(dxp, weight.grad, bias.grad, dcolp, tmpp, dy.data, argmax.pointer, mask,
                                          col.pointer, input, weight.value, shape)
            } else {
                fclf_conv2d_backward(dxp, weight.grad, bias.grad, dcolp, tmpp, dy.data, y.pointer, col.pointer,
                                     input, weight.value, activation == .relu ? 1 : 0, shape)
            }
        }
        return Tensor(data: dxp ?? dx.pointer, shape: computesInputGradient ? inputShape : inputShape.withBatch(0))
    }

    public func inferenceWork(_ input: Shape, n: Int) -> Int {
        let x = input.withBatch(n)
        let s = kernelShape(x)
        switch pooling(s) {
        case .afterwards: return colCount(s) + productShape(x).count
        case .perWindow: return Int(fclf_conv2d_window_pool_work_size(s))
        case .winograd: return Int(fclf_conv2d_winograd_pool_work_size(s))
        default: return colCount(s)
        }
    }

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        let s = kernelShape(input.withBatch(n))
        let cols = colCount(s)
        run(x, s, y: y, z: work + cols, col: cols > 0 ? work : nil, argmax: nil, packed: packed)  // inference needs no winners
        return y
    }
}
