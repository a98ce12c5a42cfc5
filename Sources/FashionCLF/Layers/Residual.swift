import CKernels

/// What a residual block's two ends share in training: the block's input, kept by `Shortcut` for
/// `AddShortcut`'s forward pass, and dL/dy at the block's end, kept by `AddShortcut` for `Shortcut`'s backward
/// pass. Both are views of other layers' buffers, valid for the batch in flight.
final class ShortcutLink {
    var input: Tensor?
    var outputGradient: Tensor?
}

/// A residual block's start (He et al. 2016): y = x, with x kept for the block's end.
/// Backward: dL/dx = dL/dy through the block + dL/dy at the block's end (the identity path).
/// Inference keeps x in `work`, which the caller keeps intact until the block's `AddShortcut` (`keepsWork`).
public final class Shortcut: Layer {
    public let computesInputGradient = true
    public let keepsWork = true
    let link: ShortcutLink
    private let dx = Buffer<Float>()

    init(link: ShortcutLink) { self.link = link }

    public func outputShape(_ input: Shape) -> Shape { input }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        link.input = x
        return x
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let identity = link.outputGradient else { preconditionFailure("Shortcut.backward before its AddShortcut's") }
        let dxp = dx.reserve(dy.shape.count)
        fclf_add(dxp, dy.data, identity.data, Int64(dy.shape.count))
        return Tensor(data: dxp, shape: dy.shape)
    }

    public func inferenceWork(_ input: Shape, n: Int) -> Int { n * input.perSample }

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        work.update(from: x, count: n * input.perSample)
        return x
    }
}

/// A residual block's end: y = x + the input its `Shortcut` kept. Backward: dL/dx = dL/dy, which the
/// `Shortcut` also adds to the block's input gradient.
public final class AddShortcut: Layer {
    public let computesInputGradient = true
    public let keepsWork = true
    let link: ShortcutLink
    private let y = Buffer<Float>()

    init(link: ShortcutLink) { self.link = link }

    public func outputShape(_ input: Shape) -> Shape { input }

    public func forward(_ x: Tensor, training: Bool) -> Tensor {
        guard let kept = link.input else { preconditionFailure("AddShortcut.forward before its Shortcut's") }
        let yp = y.reserve(x.shape.count)
        fclf_add(yp, x.data, kept.data, Int64(x.shape.count))
        return Tensor(data: yp, shape: x.shape)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        link.outputGradient = dy
        return dy
    }

    public func inferenceWork(_ input: Shape, n: Int) -> Int { n * input.perSample }

    public func infer(_ x: UnsafeMutablePointer<Float>, _ input: Shape, n: Int, y: UnsafeMutablePointer<Float>,
                      work: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<Float> {
        fclf_add(x, x, work, Int64(n * input.perSample))
        return x
    }
}
