// BatchNorm, dropout and global average pooling: kernels against their references, gradients against finite
// differences, the model file, and the inference plan's BatchNorm folding.
import CKernels
@testable import FashionCLF
import Testing

private func bnRef(_ x: [Double], _ gamma: [Double], _ beta: [Double], n: Int, c: Int, hw: Int) -> [Double] {
    var y = x
    let eps = Double(LayerSpec.batchNormEpsilon)
    for ch in 0..<c {
        let idx = (0..<n).flatMap { i in (0..<hw).map { (i * c + ch) * hw + $0 } }
        let m = idx.reduce(0) { $0 + x[$1] } / Double(idx.count)
        let v = idx.reduce(0) { $0 + (x[$1] - m) * (x[$1] - m) } / Double(idx.count)
        for at in idx { y[at] = gamma[ch] * (x[at] - m) / (v + eps).squareRoot() + beta[ch] }
    }
    return y
}

@Suite("BatchNorm, dropout, global average pooling")
struct NormalizationTests {
    @Test("BatchNorm kernels against the references; 1 and 2 threads give the same bits", arguments: [(2, 3, 25), (64, 32, 169), (5, 7, 1), (256, 300, 1)])
    func batchNormKernels(_ n: Int, _ c: Int, _ hw: Int) {
        let x = randomArray(n * c * hw, seed: 1, scale: 3).map { $0 + 0.5 }, dy = randomArray(n * c * hw, seed: 2)
        let gamma = randomArray(c, seed: 3).map { 1 + $0 * 0.5 }, beta = randomArray(c, seed: 4)
        func run() -> (y: [Float], dx: [Float], dg: [Float], db: [Float], rm: [Float], rv: [Float]) {
            var y = [Float](repeating: .nan, count: x.count + 1), dx = y, mean = [Float](repeating: 0, count: c), invstd = mean
            var rm = [Float](repeating: 0, count: c), rv = [Float](repeating: 1, count: c), dg = mean, db = mean
            fclf_batchnorm_forward_train(&y, &mean, &invstd, &rm, &rv, x, gamma, beta, Int64(n), Int64(c), Int64(hw),
                                         LayerSpec.batchNormMomentum, LayerSpec.batchNormEpsilon, 0)
            fclf_batchnorm_backward(&dx, &dg, &db, dy, nil, x, mean, invstd, gamma, Int64(n), Int64(c), Int64(hw))
            #expect(y.last!.isNaN && dx.last!.isNaN, "guard tails untouched")
            return (Array(y.dropLast()), Array(dx.dropLast()), dg, db, rm, rv)
        }
        let one = withThreads(1, run), two = withThreads(2, run)
        #expect(one.y == two.y && one.dx == two.dx && one.dg == two.dg && one.rv == two.rv)
        var yr = [Float](repeating: 0, count: x.count), dxr = yr, dgr = [Float](repeating: 0, count: c), dbr = dgr
        fclf_batchnorm_forward_train_ref(&yr, x, gamma, beta, Int64(n), Int64(c), Int64(hw), LayerSpec.batchNormEpsilon)
        fclf_batchnorm_backward_ref(&dxr, &dgr, &dbr, dy, x, gamma, Int64(n), Int64(c), Int64(hw), LayerSpec.batchNormEpsilon)
        expectClose(one.y, yr, atol: 1e-5, rtol: 1e-5, "y")
        expectClose(one.dx, dxr, atol: 1e-5, rtol: 1e-4, "dx")
        expectClose(one.dg, dgr, atol: 1e-4, rtol: 1e-5, "dgamma")
        expectClose(one.db, dbr, atol: 1e-4, rtol: 1e-5, "dbeta")
        // Running statistics after one batch from (0, 1): momentum times the batch mean and unbiased variance.
        let m = Double(LayerSpec.batchNormMomentum), count = Double(n * hw)
        for ch in 0..<c {
            let vals = (0..<n).flatMap { i in (0..<hw).map { Double(x[(i * c + ch) * hw + $0]) } }
            let mean = vals.reduce(0, +) / count
            let unbiased = count > 1 ? vals.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (count - 1) : 0
            expectClose([one.rm[ch]], [Float(m * mean)], atol: 1e-6, rtol: 1e-5, "running mean \(ch)")
            expectClose([one.rv[ch]], [Float((1 - m) + m * (count > 1 ? unbiased : vals.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / count))],
                        atol: 1e-6, rtol: 1e-5, "running var \(ch)")
        }
    }

    @Test("BatchNorm+ReLU+pooling in one step: the bits of the three separate kernels; 1 and 2 threads",
          arguments: [(32, 8, 26, 26), (3, 5, 11, 11), (2, 3, 7, 6), (4, 64, 2, 3)])
    func batchNormPoolFused(_ n: Int, _ c: Int, _ h: Int, _ w: Int) {
        let hw = h * w, pooled = n * c * (h / 2) * (w / 2)
        let x = randomArray(n * c * hw, seed: 7, scale: 2).map { $0 + 0.3 }, dyp = randomArray(pooled, seed: 8)
        let gamma = randomArray(c, seed: 9).map { 1 + $0 * 0.5 }, beta = randomArray(c, seed: 10)
        typealias Out = (y: [Float], argmax: [Int32], dx: [Float], dg: [Float], db: [Float], rm: [Float], rv: [Float])
        func separate() -> Out {
            var full = [Float](repeating: .nan, count: n * c * hw), mean = [Float](repeating: 0, count: c), invstd = mean
            var rm = [Float](repeating: 0, count: c), rv = [Float](repeating: 1, count: c), dg = mean, db = mean
            var y = [Float](repeating: .nan, count: pooled), am = [Int32](repeating: -1, count: pooled)
            fclf_batchnorm_forward_train(&full, &mean, &invstd, &rm, &rv, x, gamma, beta, Int64(n), Int64(c), Int64(hw),
                                         LayerSpec.batchNormMomentum, LayerSpec.batchNormEpsilon, 1)
            fclf_maxpool2x2_forward(&y, &am, full, Int64(n * c), Int64(h), Int64(w))
            var dfull = [Float](repeating: .nan, count: n * c * hw), dx = dfull
            fclf_maxpool2x2_backward(&dfull, dyp, am, nil, Int64(n * c), Int64(h), Int64(w))
            fclf_batchnorm_backward(&dx, &dg, &db, dfull, full, x, mean, invstd, gamma, Int64(n), Int64(c), Int64(hw))
            return (y, am, dx, dg, db, rm, rv)
        }
        func fused() -> Out {
            var mean = [Float](repeating: 0, count: c), invstd = mean
            var rm = [Float](repeating: 0, count: c), rv = [Float](repeating: 1, count: c), dg = mean, db = mean
            var y = [Float](repeating: .nan, count: pooled + 1), am = [Int32](repeating: -1, count: pooled + 1)
            var dx = [Float](repeating: .nan, count: n * c * hw + 1), work = dx
            fclf_batchnorm_relu_pool_forward_train(&y, &am, &mean, &invstd, &rm, &rv, x, gamma, beta, Int64(n), Int64(c), Int64(h),
                                                   Int64(w), LayerSpec.batchNormMomentum, LayerSpec.batchNormEpsilon)
            fclf_batchnorm_relu_pool_backward(&dx, &dg, &db, &work, dyp, am, y, x, mean, invstd, gamma, Int64(n), Int64(c), Int64(h), Int64(w))
            #expect(y.last!.isNaN && am.last! == -1 && dx.last!.isNaN && work.last!.isNaN, "guard tails untouched")
            return (Array(y.dropLast()), Array(am.dropLast()), Array(dx.dropLast()), dg, db, rm, rv)
        }
        #expect(fclf_batchnorm_pool_supported(Int64(h), Int64(w)) != 0)
        let want = withThreads(1, separate)
        for threads in [1, 2] {
            let got = withThreads(threads, fused)
            #expect(got.y == want.y && got.argmax == want.argmax, "\(threads) threads: forward")
            #expect(got.dx == want.dx && got.dg == want.dg && got.db == want.db, "\(threads) threads: backward")
            #expect(got.rm == want.rm && got.rv == want.rv, "\(threads) threads: running statistics")
        }
        #expect(want.dx.contains { $0 != 0 } && want.y.contains { $0 == 0 }, "the case exercises both sides of the ReLU")
    }

    /// (n, input channels, h, w, output channels, kernel side, same padding, relu, pool)
    @Test("first convolution + BatchNorm from the input's moments: the separate kernels' outputs and statistics, their gradients with the reference convolution's weight gradient; 1 and 2 threads the same bits",
          arguments: [(5, 1, 28, 28, 4, 3, false, true, true), (3, 2, 9, 9, 3, 3, true, true, true), (2, 3, 7, 6, 2, 2, false, true, false),
                      (4, 1, 12, 20, 3, 5, true, false, false), (40, 1, 28, 28, 32, 3, true, true, true),
                      (3, 1, 8, 8, 2, 2, true, false, false), (2, 3, 10, 10, 2, 2, true, true, false), (3, 1, 9, 9, 2, 2, true, true, true),
                      (2, 2, 6, 7, 3, 4, true, true, false), (1, 1, 17, 17, 1, 3, true, true, true)])
    func convBatchNormFused(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ oc: Int, _ k: Int, _ same: Bool, _ relu: Bool, _ pool: Bool) {
        // Pixels with an offset, as images in [0, 1] have: the moments must not lose the variance to the mean.
        checkConvBatchNorm(n, c, h, w, oc, k, same, relu, pool, offset: 0.6)
    }

    /// Raw 0-255 pixels, or any input far from 0 for its spread: float sums of x x^T about 0 would lose the
    /// covariance to cancellation ((mean / sd)^2 = 10^4 here).
    @Test("first convolution + BatchNorm from the input's moments: an input offset 100 times its spread",
          arguments: [(4, 1, 28, 28, 4, 3, true, true, true), (3, 2, 9, 9, 3, 3, false, true, false)])
    func convBatchNormFarInput(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ oc: Int, _ k: Int, _ same: Bool, _ relu: Bool, _ pool: Bool) {
        checkConvBatchNorm(n, c, h, w, oc, k, same, relu, pool, offset: 58)
    }

    private func checkConvBatchNorm(_ n: Int, _ c: Int, _ h: Int, _ w: Int, _ oc: Int, _ k: Int, _ same: Bool, _ relu: Bool, _ pool: Bool,
                                    offset: Float) {
        let s = fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(w), Int64(oc), Int64(k), Int64(k), same ? 1 : 0)
        let (oh, ow) = (Int(s.oh), Int(s.ow)), hw = oh * ow, full = n * oc * hw, taps = c * k * k
        #expect(fclf_conv2d_batchnorm_supported(s, pool ? 1 : 0) != 0)
        let x = randomArray(n * c * h * w, seed: 21).map { $0 + offset }, weight = randomArray(oc * taps, seed: 22)
        let bias = randomArray(oc, seed: 26), gamma = randomArray(oc, seed: 23).map { 1 + $0 * 0.5 }, beta = randomArray(oc, seed: 24)
        let cells = pool ? n * oc * (oh / 2) * (ow / 2) : full
        let dy = randomArray(cells, seed: 25)
        typealias Pass = (y: [Float], argmax: [Int32], mean: [Float], invstd: [Float], rm: [Float], rv: [Float])

        // The separate kernels: the reference convolution, BatchNorm's forward, its backward into dz, and the
        // reference convolution's weight gradient from dz.
        var z = [Float](repeating: 0, count: full)
        fclf_conv2d_forward_ref(&z, x, weight, bias, s)
        var want: Pass = ([Float](repeating: 0, count: cells), [Int32](repeating: 0, count: cells), [Float](repeating: 0, count: oc),
                          [Float](repeating: 0, count: oc), [Float](repeating: 0.1, count: oc), [Float](repeating: 1, count: oc))
        if pool {
            fclf_batchnorm_relu_pool_forward_train(&want.y, &want.argmax, &want.mean, &want.invstd, &want.rm, &want.rv, z, gamma, beta,
                                                   Int64(n), Int64(oc), Int64(oh), Int64(ow), LayerSpec.batchNormMomentum, LayerSpec.batchNormEpsilon)
        } else {
            fclf_batchnorm_forward_train(&want.y, &want.mean, &want.invstd, &want.rm, &want.rv, z, gamma, beta, Int64(n), Int64(oc), Int64(hw),
                                         LayerSpec.batchNormMomentum, LayerSpec.batchNormEpsilon, relu ? 1 : 0)
        }
        var dz = [Float](repeating: 0, count: full), dgWant = [Float](repeating: 0, count: oc), dbWant = dgWant
        var scratch = [Float](repeating: 0, count: full)
        if pool {
            fclf_batchnorm_relu_pool_backward(&dz, &dgWant, &dbWant, &scratch, dy, want.argmax, want.y, z, want.mean, want.invstd, gamma,
                                              Int64(n), Int64(oc), Int64(oh), Int64(ow))
        } else {
            fclf_batchnorm_backward(&dz, &dgWant, &dbWant, dy, relu ? want.y : nil, z, want.mean, want.invstd, gamma, Int64(n), Int64(oc), Int64(hw))
        }
        var dwWant = [Float](repeating: 0, count: oc * taps), dbRef = [Float](repeating: 0, count: oc)
        fclf_conv2d_backward_ref(nil, &dwWant, &dbRef, dz, x, weight, s)

        func fused() -> (pass: Pass, dw: [Float], dg: [Float], dbeta: [Float]) {
            // Every output with a guard value after it; the gradients accumulate onto 0.25.
            var p: Pass = ([Float](repeating: .nan, count: cells + 1), [Int32](repeating: -7, count: cells + 1), [Float](repeating: .nan, count: oc + 1),
                           [Float](repeating: .nan, count: oc + 1), [Float](repeating: 0.1, count: oc + 1), [Float](repeating: 1, count: oc + 1))
            p.rm[oc] = .nan; p.rv[oc] = .nan
            var moments = [Double](repeating: .nan, count: Int(fclf_conv2d_batchnorm_moments_size(s)))
            fclf_conv2d_batchnorm_forward_train(&p.y, &p.argmax, &p.mean, &p.invstd, &p.rm, &p.rv, &moments, x, weight, bias, gamma, beta,
                                                relu ? 1 : 0, pool ? 1 : 0, s, LayerSpec.batchNormMomentum, LayerSpec.batchNormEpsilon)
            #expect(p.y[cells].isNaN && p.argmax[cells] == -7 && p.mean[oc].isNaN && p.invstd[oc].isNaN && p.rm[oc].isNaN && p.rv[oc].isNaN,
                    "forward: guard values untouched")
            var dw = [Float](repeating: 0.25, count: oc * taps + 1), dg = [Float](repeating: 0.25, count: oc + 1), dbeta = dg
            dw[oc * taps] = .nan; dg[oc] = .nan; dbeta[oc] = .nan
            fclf_conv2d_batchnorm_backward(&dw, &dg, &dbeta, dy, pool ? p.argmax : nil, relu ? p.y : nil, x, weight, p.invstd, gamma,
                                           &moments, pool ? 1 : 0, s)
            #expect(dw.last!.isNaN && dg.last!.isNaN && dbeta.last!.isNaN, "backward: guard values untouched")
            p = (Array(p.y.dropLast()), pool ? Array(p.argmax.dropLast()) : want.argmax, Array(p.mean.dropLast()), Array(p.invstd.dropLast()),
                 Array(p.rm.dropLast()), Array(p.rv.dropLast()))
            return (p, dw.dropLast().map { $0 - 0.25 }, dg.dropLast().map { $0 - 0.25 }, dbeta.dropLast().map { $0 - 0.25 })
        }
        let one = withThreads(1, fused), two = withThreads(2, fused)
        #expect(one.pass.y == two.pass.y && one.pass.argmax == two.pass.argmax && one.pass.mean == two.pass.mean && one.pass.rv == two.pass.rv
                && one.dw == two.dw && one.dg == two.dg && one.dbeta == two.dbeta, "1 and 2 threads: the same bits")

        func close(_ got: [Float], _ want: [Float], _ tolerance: Float, _ what: String) {
            let scale = want.map(abs).max()! + 1e-3
            let worst = zip(got, want).map { abs($0 - $1) }.max()!
            #expect(worst <= tolerance * scale, "\(what): off by \(worst) of \(scale)")
        }
        close(one.pass.mean, want.mean, 1e-5, "mean")
        close(one.pass.invstd, want.invstd, 1e-4, "invstd")
        close(one.pass.rm, want.rm, 1e-5, "running mean")
        close(one.pass.rv, want.rv, 1e-4, "running variance")
        close(one.pass.y, want.y, 1e-4, "output")
        #expect(one.pass.argmax == want.argmax, "the pooling's winners")
        close(one.dg, dgWant, 1e-4, "dgamma")
        close(one.dbeta, dbWant, 1e-5, "dbeta")
        close(one.dw, dwWant, 2e-4, "weight gradient")
        #expect(dwWant.contains { abs($0) > 1e-3 } && (!relu || (want.y.contains { $0 == 0 } && want.y.contains { $0 > 0 })),
                "the case has a weight gradient to compare and both sides of the ReLU")
        // The bias gets no gradient: the separate path's is rounding noise around 0, bounded by the magnitudes it cancels.
        for o in 0..<oc {
            let magnitude = (0..<n).reduce(Float(0)) { acc, i in acc + dz[(i * oc + o) * hw..<(i * oc + o + 1) * hw].reduce(0) { $0 + abs($1) } }
            #expect(abs(dbRef[o]) <= 1e-5 * magnitude, "db[\(o)]: \(dbRef[o]) of sums of \(magnitude)")
        }
    }

    @Test("the first convolution + BatchNorm step refuses what it cannot run: no output pixels, over 32 taps, planes over its stack, no images")
    func convBatchNormUnsupported() {
        func supported(_ n: Int, _ c: Int, _ h: Int, _ k: Int, same: Bool = false, pool: Bool = false) -> Bool {
            fclf_conv2d_batchnorm_supported(fclf_conv2d_make_shape(Int64(n), Int64(c), Int64(h), Int64(h), 4, Int64(k), Int64(k), same ? 1 : 0),
                                            pool ? 1 : 0) != 0
        }
        #expect(supported(2, 1, 28, 3, same: true, pool: true))
        #expect(!supported(2, 1, 3, 5), "a 'valid' 5x5 kernel on 3x3 images has no output pixel (oh = -1, oh * ow = 1)")
        #expect(!supported(2, 1, 4, 5), "nor on 4x4 (oh = 0)")
        #expect(!supported(2, 4, 12, 3), "36 taps")
        #expect(!supported(2, 1, 80, 3), "a 78 x 78 plane is over the stack buffer")
        #expect(!supported(0, 1, 28, 3), "an empty batch")
    }

    /// Kernel 7 (49 taps) is beyond the fused kernels: the step runs the two layers apart, with their bits.
    @Test("the first convolution's step with its BatchNorm: the outputs and gradients of the two layers run apart",
          arguments: [(true, true, 3), (true, false, 3), (false, false, 3), (true, true, 7)])
    func convBatchNormLayer(_ relu: Bool, _ pool: Bool, _ k: Int) {
        let n = 6, input = Shape(n: n, c: 1, h: 12, w: 12)
        let s = fclf_conv2d_make_shape(Int64(n), 1, 12, 12, 4, Int64(k), Int64(k), 0)
        let fused = fclf_conv2d_batchnorm_supported(s, pool ? 1 : 0) != 0
        #expect(fused == (k == 3))
        func layers() -> (Conv2D, BatchNorm) {
            var rng = SplitMix64(seed: 5)
            let conv = Conv2D(inChannels: 1, outChannels: 4, kernelSize: k, computesInputGradient: false, rng: &rng)
            let norm = BatchNorm(channels: 4, relu: relu, pool: pool)
            for (i, v) in randomArray(4, seed: 6).enumerated() { norm.gamma.value[i] = 1 + v * 0.5; norm.beta.value[i] = v }
            return (conv, norm)
        }
        var x = randomArray(input.count, seed: 7)
        let (conv, norm) = layers(), (conv2, norm2) = layers()
        let both = ConvBatchNorm(conv: conv2, norm: norm2)
        x.withUnsafeMutableBufferPointer { xb in
            let t = Tensor(data: xb.baseAddress!, shape: input)
            let apart = norm.forward(conv.forward(t)), together = both.forward(t)
            #expect(apart.shape == together.shape && apart.shape == both.outputShape(input))
            let a = Array(UnsafeBufferPointer(start: apart.data, count: apart.shape.count))
            let b = Array(UnsafeBufferPointer(start: together.data, count: together.shape.count))
            let worst = zip(a, b).map { abs($0 - $1) }.max()!, scale = a.map(abs).max()!
            #expect(fused ? worst <= 1e-5 * scale : a == b, "forward: off by \(worst) of \(scale)")
            var dy = randomArray(apart.shape.count, seed: 8)
            dy.withUnsafeMutableBufferPointer { g in
                _ = conv.backward(norm.backward(Tensor(data: g.baseAddress!, shape: apart.shape)))
                _ = both.backward(Tensor(data: g.baseAddress!, shape: apart.shape))
            }
            // Evaluation and `infer` (running statistics) agree too, the output landing in y.
            let evaluated = both.forward(t, training: false)
            let want = Array(UnsafeBufferPointer(start: evaluated.data, count: evaluated.shape.count))
            var copy = Array(xb), y = [Float](repeating: .nan, count: want.count)
            var work = [Float](repeating: .nan, count: both.inferenceWork(input.withBatch(1), n: n))
            let out = copy.withUnsafeMutableBufferPointer { c in
                y.withUnsafeMutableBufferPointer { yb in
                    work.withUnsafeMutableBufferPointer { w in
                        both.infer(c.baseAddress!, input.withBatch(1), n: n, y: yb.baseAddress!, work: w.baseAddress!) == yb.baseAddress!
                    }
                }
            }
            #expect(out && y == want, "infer: evaluation's values, in y")
        }
        func values(_ p: Parameter) -> [Float] { Array(UnsafeBufferPointer(start: p.grad, count: p.count)) }
        func near(_ a: [Float], _ b: [Float], _ what: String) {
            let scale = a.map(abs).max()!
            #expect(scale > 1e-3 && zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 * scale }, "\(what): \(a) vs \(b)")
        }
        near(values(norm.gamma), values(norm2.gamma), "dgamma")
        near(values(norm.beta), values(norm2.beta), "dbeta")
        near(values(conv.weight), values(conv2.weight), "weight gradient")
        // The separate convolution's bias gradient is the sum of dz, rounding noise around 0 (convBatchNormFused
        // bounds it); the fused step gives none.
        let db = values(conv.bias), db2 = values(conv2.bias)
        #expect(fused ? db2.allSatisfy { $0 == 0 } : db == db2, "bias gradient: \(db) vs \(db2)")
        #expect(both.parameters.map(\.name) == ["weight", "bias", "gamma", "beta"])
        #expect(both.stored.map(\.name) == ["weight", "bias", "gamma", "beta", "running_mean", "running_var"])
    }

    @Test("BatchNorm layer (alone and with its fused ReLU): dx, dgamma, dbeta against finite differences of the Double formula",
          arguments: [(false, 3, 5), (true, 3, 5), (false, 1, 1), (true, 1, 1)])  // 1 x 1: a dense layer's, channels in lanes
    func batchNormGradient(_ relu: Bool, _ h: Int, _ w: Int) {
        let (n, c) = (3, 2)
        let layer = BatchNorm(channels: c, relu: relu)
        for i in 0..<c { layer.gamma.value[i] = 1 + 0.3 * Float(i); layer.beta.value[i] = 0.1 * Float(i) }
        let shape = Shape(n: n, c: c, h: h, w: w)
        var x = randomArray(shape.count, seed: 5)
        let r = randomArray(shape.count, seed: 6)
        let g = layer.gamma.value, b = layer.beta.value
        let gd = (0..<c).map { Double(g[$0]) }, bd = (0..<c).map { Double(b[$0]) }
        func L(_ x: [Double], _ gm: [Double], _ bt: [Double]) -> Double {
            dot(bnRef(x, gm, bt, n: n, c: c, hw: h * w).map { relu ? max($0, 0) : $0 }, r)
        }
        x.withUnsafeMutableBufferPointer { xb in
            _ = layer.forward(Tensor(data: xb.baseAddress!, shape: shape))
            var rr = r
            let dx = rr.withUnsafeMutableBufferPointer { layer.backward(Tensor(data: $0.baseAddress!, shape: shape)) }
            let xd = xb.map(Double.init)
            expectClose(Array(UnsafeBufferPointer(start: dx.data, count: shape.count)), numericGradient(xd) { L($0, gd, bd) }.map(Float.init),
                        atol: 1e-4, rtol: 1e-3, "bn dx")
            expectClose(Array(UnsafeBufferPointer(start: layer.gamma.grad, count: c)), numericGradient(gd) { L(xd, $0, bd) }.map(Float.init),
                        atol: 1e-4, rtol: 1e-3, "bn dgamma")
            expectClose(Array(UnsafeBufferPointer(start: layer.beta.grad, count: c)), numericGradient(bd) { L(xd, gd, $0) }.map(Float.init),
                        atol: 1e-4, rtol: 1e-3, "bn dbeta")
        }
    }

    @Test("dropout: inverted scaling, about the asked fraction dropped, the same mask in backward, identity in evaluation")
    func dropout() {
        let layer = Dropout(rate: 0.3, seed: 9)
        let count = 20_000
        var x = [Float](repeating: 1, count: count)
        x.withUnsafeMutableBufferPointer { xb in
            let t = Tensor(data: xb.baseAddress!, shape: Shape(n: 100, c: 200))
            let y = Array(UnsafeBufferPointer(start: layer.forward(t).data, count: count))
            let dropped = y.filter { $0 == 0 }.count
            #expect(abs(Double(dropped) / Double(count) - 0.3) < 0.02, "dropped \(dropped) of \(count)")
            #expect(y.allSatisfy { $0 == 0 || $0 == 1 / (1 - Float(0.3)) })
            var g = [Float](repeating: 2, count: count)
            let dx = g.withUnsafeMutableBufferPointer { Array(UnsafeBufferPointer(start: layer.backward(Tensor(data: $0.baseAddress!, shape: t.shape)).data, count: count)) }
            #expect(zip(y, dx).allSatisfy { ($0 == 0) == ($1 == 0) }, "backward drops what forward dropped")
            let second = Array(UnsafeBufferPointer(start: layer.forward(t).data, count: count))
            #expect(second != y, "each batch draws a new mask")
            let eval = layer.forward(t, training: false)
            #expect(eval.data == xb.baseAddress!, "evaluation passes its input through")
        }
        // The same seed gives the same masks.
        let a = Dropout(rate: 0.5, seed: 4), b = Dropout(rate: 0.5, seed: 4)
        var ones = [Float](repeating: 1, count: 64)
        ones.withUnsafeMutableBufferPointer { xb in
            let t = Tensor(data: xb.baseAddress!, shape: Shape(n: 1, c: 64))
            let ya = Array(UnsafeBufferPointer(start: a.forward(t).data, count: 64))
            #expect(ya == Array(UnsafeBufferPointer(start: b.forward(t).data, count: 64)))
        }
    }

    @Test("global average pooling: the plane means; the gradient spread evenly")
    func globalAvgPool() {
        let layer = GlobalAvgPool()
        var x = randomArray(2 * 3 * 4 * 5, seed: 7)
        x.withUnsafeMutableBufferPointer { xb in
            let y = layer.forward(Tensor(data: xb.baseAddress!, shape: Shape(n: 2, c: 3, h: 4, w: 5)))
            #expect(y.shape == Shape(n: 2, c: 3))
            for p in 0..<6 {
                let mean = (0..<20).reduce(0.0) { $0 + Double(xb[p * 20 + $1]) } / 20
                expectClose([y.data[p]], [Float(mean)], atol: 1e-7, rtol: 1e-6, "plane \(p)")
            }
            var g = (0..<6).map { Float($0) }
            let dx = g.withUnsafeMutableBufferPointer { layer.backward(Tensor(data: $0.baseAddress!, shape: y.shape)) }
            for i in 0..<120 { #expect(dx.data[i] == Float(i / 20) / 20) }
        }
    }

    static let bnSpecs: [LayerSpec] = [
        .conv2d(inChannels: 1, outChannels: 8, kernelSize: 3, padding: .same, activation: .none), .batchNorm(channels: 8), .relu,
        .maxPool2x2, .conv2d(inChannels: 8, outChannels: 16, kernelSize: 3, padding: .valid, activation: .none),
        .batchNorm(channels: 16), .relu, .maxPool2x2, .flatten, .dense(inputSize: 16 * 6 * 6, outputSize: 32, activation: .none),
        .batchNorm(channels: 32), .relu, .dropout(rate: 0.3), .dense(inputSize: 32, outputSize: 10, activation: .none),
    ]

    @Test("the inference plan folds each BatchNorm into the layer before it and drops dropout")
    func inferencePlan() throws {
        let training = try Plan(specs: Self.bnSpecs, inputShape: ModelKind.imageShape)
        // conv2 (14 -> 12, 6x6 output tiles) by Winograd where the CPU has the unpooled kernel (AVX-512)
        let winograd = fclf_isa_active() == Int32(FCLF_ISA_AVX512F.rawValue)
        #expect(training.steps.map(\.name) == ["conv2d+batchnorm+relu+maxpool (from the input's moments; z never stored)",
                                               winograd ? "conv2d (Winograd F(2x2,3x3))" : "conv2d",
                                               "batchnorm+relu+maxpool (one pass)", "flatten (view)", "dense", "batchnorm+relu",
                                               "dropout", "dense"])
        #expect(training.steps.map(\.winograd) == [false, winograd, false, false, false, false, false, false])
        #expect(training.steps.map(\.layers) == [0..<4, 4..<5, 5..<8, 8..<9, 9..<10, 10..<12, 12..<13, 13..<14])
        #expect(training.steps.map(\.trainedBatchNorm) == [1, nil, nil, nil, nil, nil, nil, nil])
        let inference = try Plan(specs: Self.bnSpecs, inputShape: ModelKind.imageShape, mode: .inference)
        // Pooled per window where the CPU has the window kernel (AVX-512; AVX2 for conv2, whose K is the GEMM's,
        // and conv1, one channel 3x3 with pixels in lanes), else as training pools; conv2 (3x3 'valid', 5x5 pooled
        // tiles) by Winograd where AVX-512 or AVX2 runs.
        let avx512 = fclf_isa_active() == Int32(FCLF_ISA_AVX512F.rawValue), avx2 = fclf_isa_active() == Int32(FCLF_ISA_AVX2.rawValue)
        let conv2 = avx512 || avx2 ? "Winograd F(2x2,3x3), pooled per tile" : "pooled after the product"
        #expect(inference.steps.map(\.name) == ["conv2d+batchnorm (folded)+relu+maxpool (\(avx512 || avx2 ? "pooled per window" : "one pass"))",
                                                "conv2d+batchnorm (folded)+relu+maxpool (\(conv2))",
                                                "flatten (view)", "dense+batchnorm (folded)+relu", "dense"])
        #expect(inference.steps.map(\.layers) == [0..<4, 4..<8, 8..<9, 9..<13, 13..<14])
        #expect(inference.steps.map(\.foldedBatchNorm) == [1, 5, nil, 10, nil])
    }

    @Test("BatchNorm after an activation is not folded: the inference plan keeps it as a step and agrees with evaluation")
    func batchNormAfterActivationIsNotFolded() throws {
        let specs: [LayerSpec] = [
            .conv2d(inChannels: 1, outChannels: 6, kernelSize: 3, padding: .valid, activation: .relu), .batchNorm(channels: 6),
            .maxPool2x2, .flatten, .dense(inputSize: 6 * 13 * 13, outputSize: 24, activation: .relu), .batchNorm(channels: 24),
            .dense(inputSize: 24, outputSize: 10, activation: .none),
        ]
        let inference = try Plan(specs: specs, inputShape: ModelKind.imageShape, mode: .inference)
        #expect(inference.steps.map(\.name) == ["conv2d+relu", "batchnorm", "maxpool", "flatten (view)", "dense+relu", "batchnorm", "dense"])
        #expect(inference.steps.allSatisfy { $0.foldedBatchNorm == nil })
        var rng = SplitMix64(seed: 31)
        let net = try Sequential(name: "act-bn", inputShape: ModelKind.imageShape, specs: specs, rng: &rng)
        let data = synthetic(count: 64, seed: 32)
        let trainer = Trainer(model: net, config: TrainConfig())
        for _ in 0..<3 { _ = trainer.trainEpoch(data) }
        for p in net.stored where p.name == "gamma" || p.name == "beta" {
            for i in 0..<p.count { p.value[i] += Float(i % 3) * 0.3 - 0.2 }  // away from the identity
        }
        try expectInferenceMatchesEvaluation(Classifier(net), trainer.evaluate(data), data)
    }

    @Test("every named architecture, briefly trained: the inference plan (BatchNorm folded, 'same' frames, pooled windows) gives evaluation's classes and probabilities",
          arguments: ModelKind.allCases)
    func namedArchitecturesInferLikeEvaluation(_ kind: ModelKind) throws {
        let net = kind.build(seed: 41)
        let data = synthetic(count: 64, seed: 42)
        let trainer = Trainer(model: net, config: TrainConfig())
        for _ in 0..<2 { _ = trainer.trainEpoch(data) }  // running statistics away from their start
        try expectInferenceMatchesEvaluation(Classifier(net), trainer.evaluate(data), data, kind.rawValue)
    }

    @Test("a BatchNorm network: trained, saved, loaded; folded inference gives evaluation's classes and probabilities")
    func foldedInferenceMatchesEvaluation() throws {
        var rng = SplitMix64(seed: 21)
        let net = try Sequential(name: "bn", inputShape: ModelKind.imageShape, specs: Self.bnSpecs, rng: &rng)
        #expect(net.storedCount == net.parameterCount + 2 * (8 + 16 + 32))
        let data = synthetic(count: 96, seed: 22)
        let trainer = Trainer(model: net, config: TrainConfig())
        for _ in 0..<3 { _ = trainer.trainEpoch(data) }
        let dir = temporaryDirectory()
        try ModelFile.save(net, to: dir + "/bn.fclf")
        let loaded = try ModelFile.load(dir + "/bn.fclf")
        #expect(loaded.specs == Self.bnSpecs)
        for (p, q) in zip(loaded.stored, net.stored) {
            #expect(Array(UnsafeBufferPointer(start: p.value, count: p.count)) == Array(UnsafeBufferPointer(start: q.value, count: q.count)),
                    "\(p.name) round-trips, running statistics included")
        }
        // A file whose running variance is negative (every prediction would be NaN) is refused.
        let bad = try ModelFile.decode(ModelFile.encode(net, classes: 10), path: "bn.fclf")
        bad.stored.first { $0.name == "running_var" }!.value[0] = -1
        #expect(throws: FCLFError.modelFile(path: "bad.fclf", reason: "negative running variance in a batchnorm layer")) {
            try ModelFile.decode(ModelFile.encode(bad, classes: 10), path: "bad.fclf")
        }
        let eval = Trainer(model: loaded, config: TrainConfig()).evaluate(data)
        let reference = trainer.evaluate(data)
        #expect(eval.predictions == reference.predictions && eval.loss == reference.loss, "evaluation of the loaded model")
        let classifier = Classifier(loaded)
        #expect(classifier.plan.steps.count == 5)
        try expectInferenceMatchesEvaluation(classifier, eval, data)
    }
}
