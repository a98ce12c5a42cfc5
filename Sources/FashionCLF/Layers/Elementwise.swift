import CKernels

/// y = max(x, 0); dL/dx = dL/dy where y > 0, else 0.
public final class ReLU: Layer {
    public var computesInputGradient = true
    private let y = Buffer<Float>(), dx = Buffer<Float>()
    private var shape = Shape(n: 0, c: 0)

    public init() {}

    public func outputShape(_ input: Shape) -> Shape { input }

    public func forward(_ x: Tensor) -> Tensor {
        shape = x.shape
        let yp = y.reserve(shape.count)
        fclf_relu_forward(yp, x.data, Int64(shape.count))
        return Tensor(data: yp, shape: shape)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dxp = dx.reserve(shape.count)
        fclf_relu_backward(dxp, dy.data, y.pointer, Int64(shape.count))
        return Tensor(data: dxp, shape: shape)
    }
}

/// 2x2 max pooling, stride 2: `[N, C, H, W]` -> `[N, C, H/2, W/2]` (floor, as Keras' 'valid' pooling).
/// The gradient flows only to the input that won each window.
public final class MaxPool2D: Layer {
    public var computesInputGradient = true
    /// Set when the convolution before pools its own output (`Conv2D.poolsOutput`): both passes then hand
    /// their tensor through.
    public internal(set) var isFusedIntoPrevious = false
    private let y = Buffer<Float>(), dx = Buffer<Float>(), argmax = Buffer<Int32>()
    private var inputShape = Shape(n: 0, c: 0)

    public init() {}

    public func outputShape(_ input: Shape) -> Shape {
        Shape(n: input.n, c: input.c, h: input.h / 2, w: input.w / 2)
    }

    public func forward(_ x: Tensor) -> Tensor {
        if isFusedIntoPrevious { return x }
        inputShape = x.shape
        let out = outputShape(x.shape)
        let yp = y.reserve(out.count)
        fclf_maxpool2x2_forward(yp, argmax.reserve(out.count), x.data, Int64(x.shape.n * x.shape.c),
                                Int64(x.shape.h), Int64(x.shape.w))
        return Tensor(data: yp, shape: out)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        if isFusedIntoPrevious { return dy }
        let dxp = dx.reserve(inputShape.count)
        fclf_maxpool2x2_backward(dxp, dy.data, argmax.pointer, nil, Int64(inputShape.n * inputShape.c),
                                 Int64(inputShape.h), Int64(inputShape.w))
        return Tensor(data: dxp, shape: inputShape)
    }
}

/// `[N, C, H, W]` -> `[N, C·H·W]`. NCHW is contiguous, so both directions are a change of shape only.
public final class Flatten: Layer {
    public var computesInputGradient = true
    private var inputShape = Shape(n: 0, c: 0)

    public init() {}

    public func outputShape(_ input: Shape) -> Shape { Shape(n: input.n, c: input.perSample) }

    public func forward(_ x: Tensor) -> Tensor {
        inputShape = x.shape
        return Tensor(data: x.data, shape: outputShape(x.shape))
    }

    public func backward(_ dy: Tensor) -> Tensor { Tensor(data: dy.data, shape: inputShape) }
}
