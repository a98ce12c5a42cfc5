// Shared test helpers: random data, naive Double references, and a tolerance check that names the worst element.
import CKernels
@testable import FashionCLF
import Testing

#if canImport(Glibc)
import Glibc
#endif

func randomArray(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
    var rng = SplitMix64(seed: seed)
    return (0..<count).map { _ in rng.uniform(scale) }
}

/// Checks |a - e| <= atol + rtol |e| for every element and reports the worst one.
func expectClose(_ actual: [Float], _ expected: [Float], atol: Double, rtol: Double, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(what): sizes differ", sourceLocation: sourceLocation)
    var worst = -1, worstExcess = 0.0
    for i in 0..<min(actual.count, expected.count) {
        let a = Double(actual[i]), e = Double(expected[i])
        let excess = abs(a - e) - (atol + rtol * abs(e))
        if !(excess <= 0) && (worst < 0 || excess > worstExcess || excess.isNaN) { worst = i; worstExcess = excess }
    }
    #expect(worst < 0, "\(what): element \(worst) is \(worst >= 0 ? actual[worst] : 0), expected \(worst >= 0 ? expected[worst] : 0) (atol \(atol), rtol \(rtol))", sourceLocation: sourceLocation)
}

func expectClose(_ actual: [Double], _ expected: [Double], atol: Double, rtol: Double, _ what: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    expectClose(actual.map { Float($0) }, expected.map { Float($0) }, atol: atol, rtol: rtol, what,
                sourceLocation: sourceLocation)
}

/// A fresh, empty temporary folder.
func temporaryDirectory() -> String {
    var template = Array("/tmp/fclf-test-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

func writeBytes(_ bytes: [UInt8], to path: String) {
    let f = fopen(path, "wb")!
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}

/// Runs `body` with OpenMP set to `threads` on this thread, then restores the previous count.
func withThreads<T>(_ threads: Int, _ body: () throws -> T) rethrows -> T {
    let previous = fclf_get_max_threads()
    fclf_set_num_threads(Int32(threads))
    defer { fclf_set_num_threads(previous) }
    return try body()
}

// MARK: - Naive Double references of each layer's forward pass, for finite differences

func convRef(_ x: [Double], _ w: [Double], _ b: [Double], n: Int, c: Int, h: Int, wd: Int, oc: Int, k: Int,
             same: Bool) -> [Double] {
    let pad = same ? (k - 1) / 2 : 0, oh = same ? h : h - k + 1, ow = same ? wd : wd - k + 1
    var y = [Double](repeating: 0, count: n * oc * oh * ow)
    for i in 0..<n { for o in 0..<oc { for oy in 0..<oh { for ox in 0..<ow {
        var acc = b[o]
        for ci in 0..<c { for u in 0..<k { for v in 0..<k {
            let iy = oy + u - pad, ix = ox + v - pad
            if iy >= 0 && iy < h && ix >= 0 && ix < wd {
                acc += x[((i * c + ci) * h + iy) * wd + ix] * w[((o * c + ci) * k + u) * k + v]
            }
        } } }
        y[((i * oc + o) * oh + oy) * ow + ox] = acc
    } } } }
    return y
}

func denseRef(_ x: [Double], _ w: [Double], _ b: [Double], n: Int, input: Int, output: Int) -> [Double] {
    var y = [Double](repeating: 0, count: n * output)
    for i in 0..<n { for j in 0..<output {
        var acc = b[j]
        for p in 0..<input { acc += x[i * input + p] * w[p * output + j] }
        y[i * output + j] = acc
    } }
    return y
}

func maxPoolRef(_ x: [Double], planes: Int, h: Int, w: Int) -> [Double] {
    var y: [Double] = []
    for p in 0..<planes { for oy in 0..<h / 2 { for ox in 0..<w / 2 {
        var m = -Double.infinity
        for dy in 0..<2 { for dx in 0..<2 { m = max(m, x[(p * h + 2 * oy + dy) * w + 2 * ox + dx]) } }
        y.append(m)
    } } }
    return y
}

/// Mean cross-entropy of softmax(logits) in Double.
func xentRef(_ z: [Double], labels: [Int32], k: Int) -> Double {
    var total = 0.0
    for i in 0..<labels.count {
        let row = z[i * k..<(i + 1) * k], m = row.max()!
        let lse = m + log(row.reduce(0) { $0 + exp($1 - m) })
        total += lse - row[row.startIndex + Int(labels[i])]
    }
    return total / Double(labels.count)
}

/// Central differences of f at x, in Double.
func numericGradient(_ x: [Double], h: Double = 1e-5, _ f: ([Double]) -> Double) -> [Double] {
    var g = [Double](repeating: 0, count: x.count), xp = x
    for i in 0..<x.count {
        xp[i] = x[i] + h; let up = f(xp)
        xp[i] = x[i] - h; let down = f(xp)
        xp[i] = x[i]
        g[i] = (up - down) / (2 * h)
    }
    return g
}

func dot(_ a: [Double], _ b: [Float]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * Double($1.1) } }

/// A synthetic, learnable split: the class is drawn as a bright horizontal band at a class-dependent row.
func synthetic(count: Int, seed: UInt64) -> LabeledImages {
    var rng = SplitMix64(seed: seed)
    var pixels = [UInt8](repeating: 0, count: count * 784), labels = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        let label = Int(rng.next() % 10)
        labels[i] = UInt8(label)
        for j in 0..<784 { pixels[i * 784 + j] = UInt8(rng.next() % 60) }
        for col in 0..<28 { pixels[i * 784 + (2 + 2 * label) * 28 + col] = 255 }
    }
    return LabeledImages(count: count, rows: 28, cols: 28, pixels: pixels, labels: labels)
}

/// The inference plan (`Classifier.predict`: BatchNorm folded, weights packed) gives the training path's
/// evaluation of the same images: the same classes, and each top probability to rounding. Returns the plan's
/// probabilities, [images, 10].
@discardableResult
func expectInferenceMatchesEvaluation(_ classifier: Classifier, _ eval: Evaluation, _ data: LabeledImages,
                                      _ what: String = "") throws -> [Float] {
    let n = data.count
    var probs = [Float](repeating: 0, count: n * 10), labels = [Int32](repeating: -1, count: n)
    try data.withPixels { px in try classifier.predict(px.baseAddress!, count: n, probabilities: &probs, labels: &labels) }
    #expect(labels.map { UInt8($0) } == eval.predictions, "\(what) classes")
    for i in 0..<n {
        expectClose([probs[i * 10 + Int(labels[i])]], [eval.confidences[i]], atol: 1e-5, rtol: 1e-4, "\(what) image \(i) confidence")
    }
    return probs
}
