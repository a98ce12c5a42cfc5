import CKernels

/// y = max(x, 0); dL/dx = dL/dy where y > 0, else 0.
public final class ReLU: Layer {
    public let computesInputGradient = true
    private let y = Buffer<Float>(), dx = Buffer<Float>()
    private var shape = Shape(n: 0, c: 0)

    public init() {}

    public func outputShape(_ input: Shape) -> Shape { input }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
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

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        fclf_relu_forward(x, x, Int64(n * input.perSample))
        return x
    }
}

/// 2x2 max pooling, stride 2: `[N, C, H, W]` -> `[N, C, H/2, W/2]` (floor, as Keras' 'valid' pooling).
/// The gradient flows only to the input that won each window.
public final class MaxPool2D: Layer {
    public let computesInputGradient = true
    private let y = Buffer<Float>(), dx = Buffer<Float>(), argmax = Buffer<Int32>()
    private var inputShape = Shape(n: 0, c: 0)

    public init() {}

    public func outputShape(_ input: Shape) -> Shape {
        Shape(n: input.n, c: input.c, h: input.h / 2, w: input.w / 2)
    }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = x.shape
        let out = outputShape(x.shape)
        let yp = y.reserve(out.count)
        fclf_maxpool2x2_forward(yp, argmax.reserve(out.count), x.data, Int64(x.shape.n * x.shape.c),
                                Int64(x.shape.h), Int64(x.shape.w))
        return Tensor(data: yp, shape: out)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dxp = dx.reserve(inputShape.count)
        fclf_maxpool2x2_backward(dxp, dy.data, argmax.pointer, nil, Int64(inputShape.n * inputShape.c),
                                 Int64(inputShape.h), Int64(inputShape.w))
        return Tensor(data: dxp, shape: inputShape)
    }

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        // inference needs no winner indices
        fclf_maxpool2x2_forward(y, nil, x, Int64(n * input.c), Int64(input.h), Int64(input.w))
        return y
    }
}

/// `[N, C, H, W]` -> `[N, C·H·W]`. NCHW is contiguous, so both directions are a change of shape only.
public final class Flatten: Layer {
    public let computesInputGradient = true
    private var inputShape = Shape(n: 0, c: 0)

    public init() {}

    public func outputShape(_ input: Shape) -> Shape { Shape(n: input.n, c: input.perSample) }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        inputShape = x.shape
        return Tensor(data: x.data, shape: outputShape(x.shape))
    }

    public func backward(_ dy: Tensor) -> Tensor { Tensor(data: dy.data, shape: inputShape) }

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> { x }
}
