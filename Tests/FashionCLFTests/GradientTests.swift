// Finite-difference gradient checks for every layer and the loss. The probe is L = Σ y·r for a fixed
// random r, so dL/dy = r; the analytic backward (float32) is compared with central differences of the
// naive Double forward. Shapes are small, include batch 1, and are not multiples of the SIMD widths.
import CKernels
@testable import FashionCLF
import Testing
#if canImport(Glibc)
import Glibc
#endif

private let atol = 1e-4, rtol = 1e-3

/// Runs forward then backward(r) on `layer` and returns (dx, parameter grads, output count).
private func analytic(_ layer: any Layer, x: [Float], shape: Shape, seed: UInt64) -> (dx: [Float], grads: [[Float]], r: [Float]) {
    for p in layer.parameters { p.zeroGrad() }
    var input = x
    return input.withUnsafeMutableBufferPointer { xb in
        let y = layer.forward(Tensor(data: xb.baseAddress!, shape: shape))
        var r = randomArray(y.shape.count, seed: seed)
        let dx = r.withUnsafeMutableBufferPointer { rb in layer.backward(Tensor(data: rb.baseAddress!, shape: y.shape)) }
        let dxArray = Array(UnsafeBufferPointer(start: dx.data, count: dx.shape.count))
        let grads = layer.parameters.map { Array(UnsafeBufferPointer(start: $0.grad, count: $0.count)) }
        return (dxArray, grads, r)
    }
}

private func values(_ p: Parameter) -> [Double] { (0..<p.count).map { Double(p.value[$0]) } }

@Suite("Gradients match finite differences")
struct GradientTests {
    @Test("Conv2D: dx, dW, db (with and without fused ReLU)",
          arguments: [(1, 3, 5, 7, 4, 3, false, false), (2, 3, 5, 7, 4, 3, true, true), (1, 2, 6, 5, 3, 2, true, false),
                      (3, 1, 7, 9, 5, 3, false, true), (2, 1, 6, 7, 3, 3, false, false)])
    func conv(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ oc: Int, _ k: Int, _ same: Bool, _ relu: Bool) {
        var rng = SplitMix64(seed: 100)
        let layer = Conv2D(inChannels: c, outChannels: oc, kernelSize: k, padding: same ? .same : .valid,
                           activation: relu ? .relu : .none, rng: &rng)
        for i in 0..<oc { layer.bias.value[i] = Float(i) * 0.1 - 0.2 }
        let shape = Shape(n: n, c: c, h: h, w: w)
        let x = randomArray(shape.count, seed: 101)
        let (dx, grads, r) = analytic(layer, x: x, shape: shape, seed: 102)
        let xd = x.map(Double.init), wd = values(layer.weight), bd = values(layer.bias)
        func L(_ x: [Double], _ wt: [Double], _ b: [Double]) -> Double {
            dot(convRef(x, wt, b, n: n, c: c, h: h, wd: w, oc: oc, k: k, same: same).map { relu ? max($0, 0) : $0 }, r)
        }
        let tag = "conv n\(n) c\(c) \(h)x\(w) oc\(oc) k\(k) \(same ? "same" : "valid") relu \(relu)"
        expectClose(dx, numericGradient(xd) { L($0, wd, bd) }.map(Float.init), atol: atol, rtol: rtol, "\(tag) dx")
        expectClose(grads[0], numericGradient(wd) { L(xd, $0, bd) }.map(Float.init), atol: atol, rtol: rtol, "\(tag) dW")
        expectClose(grads[1], numericGradient(bd) { L(xd, wd, $0) }.map(Float.init), atol: atol, rtol: rtol, "\(tag) db")
    }

    @Test("Dense: dx, dW, db (with and without fused ReLU)", arguments: [(1, 13, 7, false), (3, 5, 11, true), (4, 33, 17, true)])
    func dense(_ n: Int, _ input: Int, _ output: Int, _ relu: Bool) {
        var rng = SplitMix64(seed: 200)
        let layer = Dense(inputSize: input, outputSize: output, activation: relu ? .relu : .none, rng: &rng)
        for i in 0..<output { layer.bias.value[i] = Float(i) * 0.05 }
        let shape = Shape(n: n, c: input)
        let x = randomArray(shape.count, seed: 201)
        let (dx, grads, r) = analytic(layer, x: x, shape: shape, seed: 202)
        let xd = x.map(Double.init), wd = values(layer.weight), bd = values(layer.bias)
        func L(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
            dot(denseRef(x, w, b, n: n, input: input, output: output).map { relu ? max($0, 0) : $0 }, r)
        }
        let tag = "dense n\(n) \(input)->\(output) relu \(relu)"
        expectClose(dx, numericGradient(xd) { L($0, wd, bd) }.map(Float.init), atol: atol, rtol: rtol, "\(tag) dx")
        expectClose(grads[0], numericGradient(wd) { L(xd, $0, bd) }.map(Float.init), atol: atol, rtol: rtol, "\(tag) dW")
        expectClose(grads[1], numericGradient(bd) { L(xd, wd, $0) }.map(Float.init), atol: atol, rtol: rtol, "\(tag) db")
    }

    @Test("ReLU, MaxPool2D and Flatten: dx", arguments: [1, 2])
    func parameterFree(_ n: Int) {
        let shape = Shape(n: n, c: 3, h: 5, w: 7)
        // Keep inputs away from ReLU's kink and pooling ties, where the derivative is not defined.
        let x = randomArray(shape.count, seed: 300).enumerated().map { i, v in (v < 0 ? v - 0.05 : v + 0.05) + Float(i) * 1e-3 }
        let xd = x.map(Double.init)
        let relu = analytic(ReLU(), x: x, shape: shape, seed: 301)
        expectClose(relu.dx, numericGradient(xd) { dot($0.map { max($0, 0) }, relu.r) }.map(Float.init), atol: atol, rtol: rtol, "relu dx")
        let pool = analytic(MaxPool2D(), x: x, shape: shape, seed: 302)
        expectClose(pool.dx, numericGradient(xd) { dot(maxPoolRef($0, planes: n * 3, h: 5, w: 7), pool.r) }.map(Float.init), atol: atol, rtol: rtol, "maxpool dx")
        let flat = analytic(Flatten(), x: x, shape: shape, seed: 303)
        expectClose(flat.dx, numericGradient(xd) { dot($0, flat.r) }.map(Float.init), atol: atol, rtol: rtol, "flatten dx")
    }

    @Test("a residual block (shortcut -> Conv2D same + ReLU -> add shortcut): dx through both paths, dW, db", arguments: [1, 2])
    func residualBlock(_ n: Int) {
        var rng = SplitMix64(seed: 500)
        let (c, h, w) = (3, 5, 6)
        let link = ShortcutLink()
        let start = Shortcut(link: link), end = AddShortcut(link: link)
        let conv = Conv2D(inChannels: c, outChannels: c, kernelSize: 3, padding: .same, activation: .relu, rng: &rng)
        for i in 0..<c { conv.bias.value[i] = Float(i) * 0.1 - 0.1 }
        let shape = Shape(n: n, c: c, h: h, w: w)
        let x = randomArray(shape.count, seed: 501)
        for p in conv.parameters { p.zeroGrad() }
        var input = x
        var r = randomArray(shape.count, seed: 502)
        let dx: [Float] = input.withUnsafeMutableBufferPointer { xb in
            let y = end.forward(conv.forward(start.forward(Tensor(data: xb.baseAddress!, shape: shape))))
            return r.withUnsafeMutableBufferPointer { rb in
                let g = start.backward(conv.backward(end.backward(Tensor(data: rb.baseAddress!, shape: y.shape))))
                return Array(UnsafeBufferPointer(start: g.data, count: g.shape.count))
            }
        }
        let xd = x.map(Double.init), wd = values(conv.weight), bd = values(conv.bias)
        func L(_ x: [Double], _ wt: [Double], _ b: [Double]) -> Double {
            let f = convRef(x, wt, b, n: n, c: c, h: h, wd: w, oc: c, k: 3, same: true).map { max($0, 0) }
            return dot(zip(x, f).map { $0 + $1 }, r)
        }
        let tag = "residual n\(n)"
        expectClose(dx, numericGradient(xd) { L($0, wd, bd) }.map(Float.init), atol: atol, rtol: rtol, "\(tag) dx")
        expectClose(Array(UnsafeBufferPointer(start: conv.weight.grad, count: conv.weight.count)),
                    numericGradient(wd) { L(xd, $0, bd) }.map(Float.init), atol: atol, rtol: rtol, "\(tag) dW")
        expectClose(Array(UnsafeBufferPointer(start: conv.bias.grad, count: conv.bias.count)),
                    numericGradient(bd) { L(xd, wd, $0) }.map(Float.init), atol: atol, rtol: rtol, "\(tag) db")
    }

    @Test("a residual block around dropout: dL/dx = dy + the masked dy, and dy itself left as it was")
    func residualDropout() {
        let link = ShortcutLink()
        let start = Shortcut(link: link), end = AddShortcut(link: link), dropout = Dropout(rate: 0.5, seed: 7)
        let shape = Shape(n: 2, c: 3, h: 4, w: 5)
        var x = randomArray(shape.count, seed: 510).map { $0 < 0 ? $0 - 0.1 : $0 + 0.1 }  // no zeros: the mask reads from y
        var dy = randomArray(shape.count, seed: 511)
        let original = dy
        let (y, dx): ([Float], [Float]) = x.withUnsafeMutableBufferPointer { xb in
            let out = end.forward(dropout.forward(start.forward(Tensor(data: xb.baseAddress!, shape: shape), training: true), training: true),
                                  training: true)
            let y = Array(UnsafeBufferPointer(start: out.data, count: out.shape.count))
            let g = dy.withUnsafeMutableBufferPointer { start.backward(dropout.backward(end.backward(Tensor(data: $0.baseAddress!, shape: shape)))) }
            return (y, Array(UnsafeBufferPointer(start: g.data, count: g.shape.count)))
        }
        // y = x + m x / (1 - p), m in {0, 1}: the kept scale m / (1 - p) is (y - x) / x, 0 or 2.
        let scale = zip(y, x).map { (($0 - $1) / $1).rounded() }
        #expect(Set(scale).isSubset(of: [0, 2]) && scale.contains(0) && scale.contains(2), "\(Set(scale))")
        #expect(dx == zip(original, scale).map { $0 + $0 * $1 }, "dx = dy + m dy / (1 - p)")
        #expect(dy == original, "a backward pass wrote into dy")
    }

    @Test("softmax cross-entropy through the loss object, batch 1 and 3", arguments: [1, 3])
    func loss(_ n: Int) {
        let k = 10
        let loss = SoftmaxCrossEntropy(classes: k)
        var z = randomArray(n * k, seed: 400, scale: 3)
        let labels: [Int32] = (0..<n).map { Int32(($0 * 7 + 3) % k) }
        let grad = z.withUnsafeMutableBufferPointer { zb in
            labels.withUnsafeBufferPointer { lb in
                let d = loss(Tensor(data: zb.baseAddress!, shape: Shape(n: n, c: k)), labels: lb.baseAddress!, gradient: true).dlogits
                return Array(UnsafeBufferPointer(start: d.data, count: n * k))
            }
        }
        let numeric = numericGradient(z.map(Double.init)) { xentRef($0, labels: labels, k: k) }
        expectClose(grad, numeric.map(Float.init), atol: 1e-6, rtol: 1e-4, "dlogits n\(n)")
    }
}
