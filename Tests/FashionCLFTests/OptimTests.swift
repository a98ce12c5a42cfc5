// The Swift optimisers (AdamW, SGD with Nesterov / weight decay), the label-smoothed loss object and the
// learning-rate schedules.
import CKernels
@testable import FashionCLF
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Parameters of the given shapes with random values; `seed` picks them.
private func makeParameters(_ shapes: [[Int]], seed: UInt64) -> [Parameter] {
    shapes.enumerated().map { i, shape in
        let p = Parameter(name: "p\(i)", shape: shape)
        let values = randomArray(p.count, seed: seed + UInt64(i))
        p.value.update(from: values, count: p.count)
        return p
    }
}

private func setGradients(_ ps: [Parameter], seed: UInt64) {
    for (i, p) in ps.enumerated() { p.grad.update(from: randomArray(p.count, seed: seed + UInt64(i)), count: p.count) }
}

private func values(_ ps: [Parameter]) -> [[Float]] { ps.map { Array(UnsafeBufferPointer(start: $0.value, count: $0.count)) } }

/// Runs `steps` updates of `optimizer` over `ps` with the same gradient sequence for every optimiser.
private func run(_ optimizer: Optimizer, _ ps: [Parameter], steps: Int) -> [[Float]] {
    for s in 0..<steps {
        setGradients(ps, seed: 1000 + 10 * UInt64(s))
        optimizer.step()
    }
    return values(ps)
}

// A dense weight [in, out] large enough for the threaded update, a bias, a conv kernel, and a 1-D gamma.
private let shapes: [[Int]] = [[300, 250], [250], [8, 1, 3, 3], [8]]

@Suite("Optimisers, label smoothing and learning-rate schedules")
struct OptimTests {
    @Test("AdamW with weight decay 0 is Adam bit for bit; with decay it decays only the multi-dimensional parameters")
    func adamw() {
        let a = makeParameters(shapes, seed: 1), w0 = makeParameters(shapes, seed: 1), w = makeParameters(shapes, seed: 1)
        let expected = run(Adam(parameters: a, learningRate: 2e-3), a, steps: 4)
        let zero = run(AdamW(parameters: w0, learningRate: 2e-3, weightDecay: 0), w0, steps: 4)
        #expect(zero.map { $0.map(\.bitPattern) } == expected.map { $0.map(\.bitPattern) })
        let adamw = AdamW(parameters: w, learningRate: 2e-3, weightDecay: 0.5)
        #expect(adamw.decays == [true, false, true, false])
        let decayed = run(adamw, w, steps: 4)
        #expect(decayed[1] == expected[1] && decayed[3] == expected[3], "bias and 1-D parameters must not be decayed")
        #expect(decayed[0] != expected[0] && decayed[2] != expected[2], "weights must be decayed")
        // The decayed weights against the kernel's reference driven the same way.
        let initial = values(makeParameters(shapes, seed: 1))
        for i in [0, 2] {
            var p = initial[i], m = [Float](repeating: 0, count: p.count), v = m
            for s in 0..<4 {
                let g = randomArray(p.count, seed: 1000 + 10 * UInt64(s) + UInt64(i))
                fclf_adamw_update_ref(&p, &m, &v, g, Int64(p.count), 2e-3, 0.9, 0.999, 1e-7, 0.5, Int64(s + 1))
            }
            expectClose(decayed[i], p, atol: 1e-6, rtol: 1e-6, "AdamW parameter \(i) against the reference")
        }
        // A custom rule: decay everything.
        let all = makeParameters(shapes, seed: 1)
        #expect(AdamW(parameters: all, weightDecay: 0.1, decay: { _ in true }).decays == [true, true, true, true])
    }

    @Test("SGD: the default path is the momentum kernel's; Nesterov and weight decay follow PyTorch's formulas")
    func sgd() {
        let plain = makeParameters(shapes, seed: 2)
        let got = run(SGD(parameters: plain, learningRate: 0.05, momentum: 0.9), plain, steps: 3)
        let initial = values(makeParameters(shapes, seed: 2))
        for (i, start) in initial.enumerated() {
            var p = start, buf = [Float](repeating: 0, count: p.count)
            for s in 0..<3 {
                let g = randomArray(p.count, seed: 1000 + 10 * UInt64(s) + UInt64(i))
                fclf_sgd_momentum_update(&p, &buf, g, Int64(p.count), 0.05, 0.9)
            }
            #expect(got[i] == p, "default SGD parameter \(i)")
        }
        for (nesterov, wd) in [(true, Float(0)), (true, 1e-3), (false, 1e-2)] {
            let ps = makeParameters(shapes, seed: 2)
            let out = run(SGD(parameters: ps, learningRate: 0.05, momentum: 0.9, nesterov: nesterov, weightDecay: wd), ps, steps: 3)
            for (i, start) in initial.enumerated() {
                var p = start.map(Double.init), b = [Double](repeating: 0, count: p.count)
                for s in 0..<3 {
                    let g = randomArray(p.count, seed: 1000 + 10 * UInt64(s) + UInt64(i))
                    for j in 0..<p.count {
                        let gj = Double(g[j]) + Double(wd) * p[j]
                        b[j] = 0.9 * b[j] + gj
                        p[j] -= 0.05 * (nesterov ? gj + 0.9 * b[j] : b[j])
                    }
                }
                expectClose(out[i].map(Double.init), p, atol: 1e-6, rtol: 1e-5, "SGD nesterov \(nesterov) wd \(wd) parameter \(i)")
            }
        }
    }

    @Test("label smoothing through the loss object: gradient against finite differences; 0 keeps the old bits", arguments: [1, 3])
    func smoothedLoss(_ n: Int) {
        let k = 10
        var z = randomArray(n * k, seed: 410, scale: 3)
        let labels: [Int32] = (0..<n).map { Int32(($0 * 7 + 3) % k) }
        func evaluate(_ loss: SoftmaxCrossEntropy) -> (Double, [Float]) {
            z.withUnsafeMutableBufferPointer { zb in
                labels.withUnsafeBufferPointer { lb in
                    let r = loss(Tensor(data: zb.baseAddress!, shape: Shape(n: n, c: k)), labels: lb.baseAddress!, gradient: true)
                    return (r.sum, Array(UnsafeBufferPointer(start: r.dlogits.data, count: n * k)))
                }
            }
        }
        let eps: Float = 0.1
        let (sum, grad) = evaluate(SoftmaxCrossEntropy(classes: k, labelSmoothing: eps))
        let zd = z.map(Double.init)
        let numeric = numericGradient(zd) { smoothXentRef($0, labels: labels, k: k, smoothing: Double(eps)) }
        expectClose(grad, numeric.map(Float.init), atol: 1e-6, rtol: 1e-4, "smoothed dlogits n\(n)")
        #expect(abs(sum / Double(n) - smoothXentRef(zd, labels: labels, k: k, smoothing: Double(eps))) < 1e-12)
        let (sum0, grad0) = evaluate(SoftmaxCrossEntropy(classes: k))
        var d = [Float](repeating: 0, count: n * k), p = d
        let direct = fclf_softmax_xent(&d, &p, z, labels, Int64(n), Int64(k))
        #expect(sum0.bitPattern == direct.bitPattern && grad0 == d)
        #expect(SoftmaxCrossEntropy(classes: k).labelSmoothing == 0)
    }

    // MARK: - Schedules

    private func close(_ a: Float, _ b: Float, _ rtol: Float = 1e-6) -> Bool { abs(a - b) <= rtol * max(abs(b), 1e-30) }

    private func rates(_ s: LearningRateSchedule, _ total: Int) -> [Float] { (0..<total).map { s.rate(step: $0, totalSteps: total) } }

    @Test("constant and cosine: endpoints, monotonic, clamped past the end")
    func cosine() {
        #expect(rates(.constant(3e-3), 10).allSatisfy { $0 == 3e-3 })
        let total = 101
        for fraction: Float in [0, 0.1] {
            let s = LearningRateSchedule.cosine(1e-2, finalFraction: fraction), r = rates(s, total)
            #expect(r[0] == 1e-2)
            #expect(close(r[total - 1], 1e-2 * fraction) || (fraction == 0 && abs(r[total - 1]) < 1e-12))
            #expect(close(r[50], 1e-2 * (1 + fraction) / 2), "half way: the mean of the endpoints")
            #expect(zip(r, r.dropFirst()).allSatisfy { $0 >= $1 }, "cosine must not rise")
            #expect(s.rate(step: total + 5, totalSteps: total) == r[total - 1])
            #expect(s.rate(step: -3, totalSteps: total) == r[0])
        }
        #expect(LearningRateSchedule.cosine(1e-2).rate(step: 0, totalSteps: 1) == 1e-2)
    }

    @Test("linear warm-up in front of cosine and constant: rises from base/(W+1), never 0, then the inner schedule")
    func warmup() {
        let total = 60, w = 9
        let s = LearningRateSchedule.cosine(1e-2, finalFraction: 0.01).warmup(steps: w), r = rates(s, total)
        #expect(close(r[0], 1e-2 / Float(w + 1)))
        for i in 0..<w { #expect(close(r[i], 1e-2 * Float(i + 1) / Float(w + 1)), "warm-up step \(i)") }
        #expect(zip(r[..<(w + 1)], r[1...w]).allSatisfy { $0 < $1 }, "warm-up must rise strictly")
        #expect(r[w] == 1e-2, "the cosine starts at the base rate after the warm-up")
        #expect(close(r[total - 1], 1e-4))
        #expect(zip(r[w...], r[(w + 1)...]).allSatisfy { $0 >= $1 })
        let inner = LearningRateSchedule.cosine(1e-2, finalFraction: 0.01)
        for i in w..<total { #expect(r[i] == inner.rate(step: i - w, totalSteps: total - w)) }
        let c = rates(LearningRateSchedule.constant(5e-3).warmup(steps: 4), 10)
        #expect(close(c[0], 1e-3) && close(c[3], 4e-3) && c[4...].allSatisfy { $0 == 5e-3 })
    }

    @Test("one-cycle (PyTorch OneCycleLR): starts at max/div, peaks at max at the warm-up fraction, ends at max/div/finalDiv")
    func oneCycle() {
        let total = 100, top: Float = 0.1
        // pct 0.25: the peak step 0.25·100 − 1 = 24 is a whole number.
        for up in [LearningRateSchedule.Annealing.cosine, .linear] {
            let r = rates(.oneCycle(maxRate: top, warmupFraction: 0.25, warmup: up), total)
            #expect(close(r[0], top / 25))
            #expect(r[24] == top)
            #expect(r.max() == top)
            #expect(close(r[total - 1], top / 25 / 1e4))
            #expect(zip(r[...24], r[1...24]).allSatisfy { $0 < $1 }, "\(up) rise")
            #expect(zip(r[24...], r[25...]).allSatisfy { $0 > $1 }, "fall")
            #expect(close(r[12], (top / 25 + top) / 2), "half way up: the mean of the endpoints (both rises)")
            // Half way down the cosine: (24 + 99) / 2 = 61.5, between steps 61 and 62.
            #expect(r[61] > (top + top / 2.5e5) / 2 && r[62] < (top + top / 2.5e5) / 2)
        }
        // The linear rise is a straight line; the cosine rise is below it in its first half.
        let lin = rates(.oneCycle(maxRate: top, warmupFraction: 0.25, warmup: .linear), total)
        let cos = rates(.oneCycle(maxRate: top, warmupFraction: 0.25), total)
        #expect(close(lin[6], top / 25 + (top - top / 25) * 6 / 24))
        #expect(cos[6] < lin[6] && cos[18] > lin[18])
        // PyTorch's defaults (pct_start 0.3, div 25, final div 1e4, cosine): peak at step 0.3·T − 1 = 29.
        let d = rates(.oneCycle(maxRate: top), total)
        #expect(close(d[0], 4e-3) && close(d[29], top) && close(d[total - 1], 4e-7))
        #expect(d.firstIndex(of: d.max()!) == 29)
        // Warm-up steps in front: the one-cycle runs over the rest.
        let warm = LearningRateSchedule.oneCycle(maxRate: top).warmup(steps: 5)
        #expect(close(warm.rate(step: 0, totalSteps: 105), top / 25 / 6))
        #expect(warm.rate(step: 5 + 29, totalSteps: 105) == d[29] && warm.rate(step: 104, totalSteps: 105) == d[99])
        // Too few steps for a rise: no NaN.
        #expect(rates(.oneCycle(maxRate: top), 2).allSatisfy { $0.isFinite })
        #expect(rates(.oneCycle(maxRate: top), 1).allSatisfy { $0.isFinite })
    }

    @Test("averaging's constant phase: the last H steps at f·r, the one-cycle or cosine before them ending there, the rest as the shape over T − H steps")
    func averagingHold() {
        let total = 100, held = 25, top: Float = 0.1, f: Float = 0.2
        let r = rates(LearningRateSchedule.oneCycle(maxRate: top).averaging(steps: held, fraction: f), total)
        #expect(r[(total - held)...].allSatisfy { $0 == top * f }, "the held steps")
        #expect(close(r[total - held - 1], top * f, 1e-5), "the one-cycle ends at the held rate")
        let before = LearningRateSchedule.oneCycle(maxRate: top, finalDivFactor: 1 / (f * 25))
        for i in 0..<(total - held) { #expect(r[i] == before.rate(step: i, totalSteps: total - held), "step \(i)") }
        #expect(close(r[0], top / 25) && r.max()! <= top && r.max()! > 0.99 * top)
        let c = rates(LearningRateSchedule.cosine(1e-2).averaging(steps: 10, fraction: 0.5), 40)
        #expect(c[0] == 1e-2 && close(c[29], 5e-3) && c[30...].allSatisfy { $0 == 5e-3 })
        let k = rates(LearningRateSchedule.constant(1e-2).averaging(steps: 3, fraction: 0.5), 10)
        #expect(k[..<7].allSatisfy { $0 == 1e-2 } && k[7...].allSatisfy { $0 == 5e-3 })
        // A warm-up in front: it rises, the cosine after it ends at the held rate, then the hold.
        let w = rates(LearningRateSchedule.cosine(1e-2).warmup(steps: 5).averaging(steps: 10, fraction: 0.5), 40)
        #expect(close(w[0], 1e-2 / 6) && w[5] == 1e-2 && close(w[29], 5e-3) && w[30...].allSatisfy { $0 == 5e-3 })
        #expect(zip(w[..<5], w[1...5]).allSatisfy { $0 < $1 } && zip(w[5..<30], w[6..<30]).allSatisfy { $0 >= $1 })
        // A hold as long as the run leaves its first step to the shape.
        #expect(LearningRateSchedule.cosine(1e-2).averaging(steps: 10, fraction: 0.5).rate(step: 0, totalSteps: 10) == 1e-2)
    }
}
