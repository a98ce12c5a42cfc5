/// y = x / T: temperature scaling of the logits (Guo et al. 2017). Ten values per image: a plain loop.
public final class Temperature: Layer {
    public let temperature: Float
    public let computesInputGradient = true
    private let y = Buffer<Float>(), dx = Buffer<Float>()

    public init(_ temperature: Float) { self.temperature = temperature }

    public func outputShape(_ input: Shape) -> Shape { input }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        let yp = y.reserve(x.shape.count)
        for i in 0..<x.shape.count { yp[i] = x.data[i] / temperature }
        return Tensor(data: yp, shape: x.shape)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let dxp = dx.reserve(dy.shape.count)
        for i in 0..<dy.shape.count { dxp[i] = dy.data[i] / temperature }
        return Tensor(data: dxp, shape: dy.shape)
    }

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        for i in 0..<n * input.perSample { x[i] /= temperature }
        return x
    }
}
