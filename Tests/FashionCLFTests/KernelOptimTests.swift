// The AdamW, SGD (Nesterov, weight decay) and label-smoothing kernels against Double transcriptions of their
// formulas and their naive references; 1 and 2 threads give the same bits; the zero settings give the older
// kernels' bits (Adam; the unsmoothed loss).
import CKernels
@testable import FashionCLF
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Mean cross-entropy of softmax(logits) against (1-eps) onehot + eps/k, in Double.
func smoothXentRef(_ z: [Double], labels: [Int32], k: Int, smoothing eps: Double) -> Double {
    var total = 0.0
    for i in 0..<labels.count {
        let row = Array(z[i * k..<(i + 1) * k]), m = row.max()!
        let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
        for j in 0..<k {
            let q = (j == Int(labels[i]) ? 1 - eps : 0) + eps / Double(k)
            total -= q * (row[j] - lse)
        }
    }
    return total / Double(labels.count)
}

@Suite("Optimiser and label-smoothing kernels match their formulas and references")
struct KernelOptimTests {
    // Sizes below and above the 65536-element threshold of the parallel update.
    static let counts = [1, 37, 70_001]

    @Test("AdamW against a Double transcription of PyTorch's formula, its reference, and 1 vs 2 threads", arguments: counts)
    func adamw(_ count: Int) {
        let lr: Float = 1e-2, wd: Float = 0.1
        var p1 = randomArray(count, seed: 200), m1 = randomArray(count, seed: 201, scale: 0.1)
        var v1 = randomArray(count, seed: 202, scale: 0.1).map { $0 * $0 }
        var (p2, m2, v2) = (p1, m1, v1), (pR, mR, vR) = (p1, m1, v1)
        var pd = p1.map(Double.init), md = m1.map(Double.init), vd = v1.map(Double.init)
        for t in 1...4 {
            let g = randomArray(count, seed: 210 + UInt64(t))
            withThreads(1) { fclf_adamw_update(&p1, &m1, &v1, g, Int64(count), lr, 0.9, 0.999, 1e-7, wd, Int64(t)) }
            withThreads(2) { fclf_adamw_update(&p2, &m2, &v2, g, Int64(count), lr, 0.9, 0.999, 1e-7, wd, Int64(t)) }
            fclf_adamw_update_ref(&pR, &mR, &vR, g, Int64(count), lr, 0.9, 0.999, 1e-7, wd, Int64(t))
            for i in 0..<count {
                let gi = Double(g[i])
                pd[i] *= 1 - Double(lr) * Double(wd)  // decoupled decay first
                md[i] = 0.9 * md[i] + 0.1 * gi
                vd[i] = 0.999 * vd[i] + 0.001 * gi * gi
                let mh = md[i] / (1 - pow(0.9, Double(t))), vh = vd[i] / (1 - pow(0.999, Double(t)))
                pd[i] -= Double(lr) * mh / (vh.squareRoot() + 1e-7)
            }
        }
        #expect(p1 == p2 && m1 == m2 && v1 == v2, "adamw \(count): 1 and 2 threads differ")
        expectClose(p1.map(Double.init), pd, atol: 1e-6, rtol: 1e-5, "adamw \(count): p against the formula")
        expectClose(m1, mR, atol: 1e-7, rtol: 1e-5, "adamw \(count): m against the reference")
        expectClose(v1, vR, atol: 1e-9, rtol: 1e-5, "adamw \(count): v against the reference")
        expectClose(p1, pR, atol: 1e-6, rtol: 1e-6, "adamw \(count): p against the reference")
    }

    @Test("AdamW with weight decay 0 gives Adam's bits (1 and 2 threads)", arguments: counts)
    func adamwZeroDecayIsAdam(_ count: Int) {
        for threads in [1, 2] {
            var p = randomArray(count, seed: 220), m = [Float](repeating: 0, count: count), v = m
            if count > 3 { p[0] = -0.0; p[1] = 0; p[2] = 1e-30 }
            var (q, mq, vq) = (p, m, v)
            withThreads(threads) {
                for t in 1...5 {
                    let g = randomArray(count, seed: 230 + UInt64(t))
                    fclf_adam_update(&p, &m, &v, g, Int64(count), 3e-3, 0.9, 0.999, 1e-7, Int64(t))
                    fclf_adamw_update(&q, &mq, &vq, g, Int64(count), 3e-3, 0.9, 0.999, 1e-7, 0, Int64(t))
                }
            }
            #expect(p.map(\.bitPattern) == q.map(\.bitPattern), "p, \(count) on \(threads) threads")
            #expect(m == mq && v == vq, "moments, \(count) on \(threads) threads")
        }
    }

    @Test("SGD with Nesterov momentum and weight decay: PyTorch's formula in Double, the reference, 1 vs 2 threads",
          arguments: counts)
    func nesterov(_ count: Int) {
        let lr: Float = 0.05, mu: Float = 0.9
        for wd: Float in [0, 5e-4, 0.1] {
            var p1 = randomArray(count, seed: 240), b1 = [Float](repeating: 0, count: count)
            var (p2, b2) = (p1, b1), (pR, bR) = (p1, b1)
            var pd = p1.map(Double.init), bd = b1.map(Double.init)
            for t in 1...4 {
                let g = randomArray(count, seed: 250 + UInt64(t))
                withThreads(1) { fclf_sgd_nesterov_update(&p1, &b1, g, Int64(count), lr, mu, wd) }
                withThreads(2) { fclf_sgd_nesterov_update(&p2, &b2, g, Int64(count), lr, mu, wd) }
                fclf_sgd_nesterov_update_ref(&pR, &bR, g, Int64(count), lr, mu, wd)
                for i in 0..<count {
                    let gi = Double(g[i]) + Double(wd) * pd[i]
                    bd[i] = Double(mu) * bd[i] + gi
                    pd[i] -= Double(lr) * (gi + Double(mu) * bd[i])
                }
            }
            let tag = "nesterov \(count) wd \(wd)"
            #expect(p1 == p2 && b1 == b2, "\(tag): 1 and 2 threads differ")
            expectClose(p1.map(Double.init), pd, atol: 1e-6, rtol: 1e-5, "\(tag): p against the formula")
            expectClose(b1.map(Double.init), bd, atol: 1e-6, rtol: 1e-5, "\(tag): buf against the formula")
            expectClose(p1, pR, atol: 1e-6, rtol: 1e-5, "\(tag): p against the reference")
            expectClose(b1, bR, atol: 1e-6, rtol: 1e-5, "\(tag): buf against the reference")
        }
    }

    @Test("SGD momentum with weight decay: formula in Double, the reference, 1 vs 2 threads; wd 0 is plain momentum",
          arguments: counts)
    func momentumDecay(_ count: Int) {
        let lr: Float = 0.05, mu: Float = 0.9, wd: Float = 0.01
        var p1 = randomArray(count, seed: 260), b1 = randomArray(count, seed: 261, scale: 0.1)
        var (p2, b2) = (p1, b1), (pR, bR) = (p1, b1)
        var pd = p1.map(Double.init), bd = b1.map(Double.init)
        for t in 1...3 {
            let g = randomArray(count, seed: 270 + UInt64(t))
            withThreads(1) { fclf_sgd_momentum_decay_update(&p1, &b1, g, Int64(count), lr, mu, wd) }
            withThreads(2) { fclf_sgd_momentum_decay_update(&p2, &b2, g, Int64(count), lr, mu, wd) }
            fclf_sgd_momentum_decay_update_ref(&pR, &bR, g, Int64(count), lr, mu, wd)
            for i in 0..<count {
                bd[i] = Double(mu) * bd[i] + Double(g[i]) + Double(wd) * pd[i]
                pd[i] -= Double(lr) * bd[i]
            }
        }
        #expect(p1 == p2 && b1 == b2, "\(count): 1 and 2 threads differ")
        expectClose(p1.map(Double.init), pd, atol: 1e-6, rtol: 1e-5, "\(count): p against the formula")
        expectClose(p1, pR, atol: 1e-6, rtol: 1e-5, "\(count): p against the reference")
        expectClose(b1, bR, atol: 1e-6, rtol: 1e-5, "\(count): buf against the reference")
        // Weight decay 0 (with gradients that are not -0) is the plain momentum kernel.
        var q = randomArray(count, seed: 280), c = randomArray(count, seed: 281), (q0, c0) = (q, c)
        let g = randomArray(count, seed: 282).map { $0 == 0 ? 1 : $0 }
        fclf_sgd_momentum_decay_update(&q, &c, g, Int64(count), lr, mu, 0)
        fclf_sgd_momentum_update(&q0, &c0, g, Int64(count), lr, mu)
        #expect(q == q0 && c == c0, "\(count): wd 0 differs from fclf_sgd_momentum_update")
    }

    @Test("label-smoothed softmax cross-entropy: value and gradient against Double and finite differences, the reference",
          arguments: [Float(0.1), 0.3, 1])
    func smoothedXent(_ eps: Float) {
        let n = 5, k = 10
        let z = randomArray(n * k, seed: 290, scale: 4)
        let labels: [Int32] = [3, 2, 0, 9, 5]
        var d = [Float](repeating: .nan, count: n * k), p = d
        let sum = fclf_softmax_xent_smooth(&d, &p, z, labels, Int64(n), Int64(k), eps)
        let zd = z.map(Double.init), e = Double(eps)
        let expected = smoothXentRef(zd, labels: labels, k: k, smoothing: e)
        #expect(abs(sum / Double(n) - expected) < 1e-12 * max(1, abs(expected)), "loss \(sum / Double(n)) against \(expected)")
        // The gradient, transcribed: (softmax - q) / n.
        var dd = [Double](repeating: 0, count: n * k)
        for i in 0..<n {
            let row = zd[i * k..<(i + 1) * k], m = row.max()!, s = row.reduce(0) { $0 + exp($1 - m) }
            for j in 0..<k {
                let q = (j == Int(labels[i]) ? 1 - e : 0) + e / Double(k)
                dd[i * k + j] = (exp(zd[i * k + j] - m) / s - q) / Double(n)
            }
        }
        expectClose(d.map(Double.init), dd, atol: 1e-8, rtol: 1e-6, "dlogits against the formula, eps \(eps)")
        let numeric = numericGradient(zd, h: 1e-4) { smoothXentRef($0, labels: labels, k: k, smoothing: e) }
        expectClose(d, numeric.map(Float.init), atol: 1e-6, rtol: 1e-4, "dlogits against finite differences, eps \(eps)")
        var dR = [Float](repeating: .nan, count: n * k), pR = dR
        let sumR = fclf_softmax_xent_smooth_ref(&dR, &pR, z, labels, Int64(n), Int64(k), eps)
        #expect(abs(sum - sumR) < 1e-9 * max(1, abs(sumR)), "loss \(sum) against the reference \(sumR)")
        expectClose(d, dR, atol: 1e-7, rtol: 1e-5, "dlogits against the reference")
        expectClose(p, pR, atol: 1e-7, rtol: 1e-5, "probs against the reference")
        // The probabilities are inference's, bit for bit; the optional outputs change nothing.
        var probs = [Float](repeating: .nan, count: n * k)
        fclf_softmax_forward(&probs, z, Int64(n), Int64(k))
        #expect(probs == p)
        #expect(fclf_softmax_xent_smooth(nil, nil, z, labels, Int64(n), Int64(k), eps) == sum)
        #expect(sum.isFinite && sum > 0)
    }

    @Test("label smoothing stays finite for huge logits; smoothing 0 gives fclf_softmax_xent's bits")
    func smoothedXentEdges() {
        let n = 4, k = 10
        var z = randomArray(n * k, seed: 300, scale: 4)
        z[3] = 1e4; z[k + 2] = -1e4; z[2 * k] = 3e4
        let labels: [Int32] = [3, 2, 1, 7]
        var d = [Float](repeating: 0, count: n * k), p = d
        let sum = fclf_softmax_xent_smooth(&d, &p, z, labels, Int64(n), Int64(k), 0.1)
        #expect(sum.isFinite && d.allSatisfy { $0.isFinite } && p.allSatisfy { $0.isFinite })
        let expected = smoothXentRef(z.map(Double.init), labels: labels, k: k, smoothing: 0.1)
        #expect(abs(sum / Double(n) - expected) < 1e-9 * max(1, abs(expected)))
        for logits in [z, randomArray(n * k, seed: 301, scale: 3)] {
            var d0 = [Float](repeating: .nan, count: n * k), p0 = d0, d1 = d0, p1 = d0
            let s0 = fclf_softmax_xent_smooth(&d0, &p0, logits, labels, Int64(n), Int64(k), 0)
            let s1 = fclf_softmax_xent(&d1, &p1, logits, labels, Int64(n), Int64(k))
            #expect(s0.bitPattern == s1.bitPattern, "loss \(s0) vs \(s1)")
            #expect(d0.map(\.bitPattern) == d1.map(\.bitPattern) && p0.map(\.bitPattern) == p1.map(\.bitPattern))
        }
    }
}
