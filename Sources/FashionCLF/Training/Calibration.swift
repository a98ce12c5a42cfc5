import CKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", 2017): one scalar T that
/// divides the logits, fitted by minimising the negative log-likelihood on held-out data, so that a predicted
/// class's probability matches how often such predictions are right. The arg max, and so every predicted
/// class, does not change.
public enum Calibration {
    /// A temperature (fitted on the validation split, or given) and the test set's expected calibration error
    /// before and after it.
    public struct Result: Sendable {
        public var temperature: Float
        public var testECEBefore: Double, testECEAfter: Double
        /// false when the temperature was given (`Recipe.temperature`), not fitted by this run.
        public var fitted: Bool
        public init(temperature: Float, testECEBefore: Double, testECEAfter: Double, fitted: Bool = true) {
            self.temperature = temperature; self.testECEBefore = testECEBefore; self.testECEAfter = testECEAfter
            self.fitted = fitted
        }
    }

    /// logits / t, rounded to float once: what the loss kernels take.
    private static func scaled(_ logits: [Float], by t: Double) -> [Float] { logits.map { Float(Double($0) / t) } }

    /// Mean negative log-likelihood of `labels` (each in 0..<classes) under softmax(logits / t): the training
    /// loss's kernel (log-sum-exp, summed in double).
    public static func nll(logits: [Float], labels: [Int32], classes k: Int, temperature t: Double) -> Double {
        fclf_softmax_xent(nil, nil, scaled(logits, by: t), labels, Int64(labels.count), Int64(k)) / Double(max(labels.count, 1))
    }

    /// The temperatures `fitTemperature` searches, and so the range a given one (`Recipe.temperature`) must lie in.
    public static let fittedRange: ClosedRange<Double> = 0.05...20
    /// `fittedRange` as messages write it: 0.05...20.
    public static var fittedRangeText: String {
        [fittedRange.lowerBound, fittedRange.upperBound].map { $0 == $0.rounded() ? String(Int($0)) : String($0) }.joined(separator: "...")
    }

    /// The temperature in `fittedRange` that minimises the NLL: golden-section search on log T (the NLL is
    /// unimodal in T for a fixed set of logits), to a relative precision of about 1e-4.
    public static func fitTemperature(logits: [Float], labels: [Int32], classes k: Int) -> Float {
        let phi = (5.0.squareRoot() - 1) / 2
        var a = log(fittedRange.lowerBound), b = log(fittedRange.upperBound)
        func f(_ u: Double) -> Double { nll(logits: logits, labels: labels, classes: k, temperature: exp(u)) }
        var c = b - phi * (b - a), d = a + phi * (b - a)
        var fc = f(c), fd = f(d)
        while b - a > 1e-4 {
            if fc < fd { b = d; d = c; fd = fc; c = b - phi * (b - a); fc = f(c) }
            else { a = c; c = d; fc = fd; d = a + phi * (b - a); fd = f(d) }
        }
        return Float(exp((a + b) / 2))
    }

    /// Expected calibration error (Naeini et al. 2015, as Guo et al. report it): the top-class confidences
    /// split into `bins` equal-width bins; the mean over images of |accuracy - confidence| of each bin.
    public static func expectedCalibrationError(logits: [Float], labels: [Int32], classes k: Int, temperature t: Double = 1,
                                                bins: Int = 15) -> Double {
        var count = [Int](repeating: 0, count: bins), hits = count
        var confidence = [Double](repeating: 0, count: bins)
        var probs = [Float](repeating: 0, count: labels.count * k)
        fclf_softmax_forward(&probs, scaled(logits, by: t), Int64(labels.count), Int64(k))
        probs.withUnsafeBufferPointer { pb in
            for i in 0..<labels.count {
                let top = argmax(pb.baseAddress! + i * k, k), p = Double(pb[i * k + top])
                guard p.isFinite else { continue }  // a row with NaN logits has no confidence
                let bin = min(bins - 1, Int(p * Double(bins)))
                count[bin] += 1
                confidence[bin] += p
                if top == Int(labels[i]) { hits[bin] += 1 }
            }
        }
        var ece = 0.0
        for b in 0..<bins where count[b] > 0 { ece += abs(Double(hits[b]) - confidence[b]) }
        return ece / Double(max(labels.count, 1))
    }
}

extension Trainer {
    /// The logits of every image of `data` in evaluation mode, and their labels.
    public func logits(_ data: LabeledImages, batchSize: Int = 128) -> (logits: [Float], labels: [Int32]) {
        let k = model.outputSize
        var out = [Float](repeating: 0, count: data.count * k), truth = [Int32](repeating: 0, count: data.count)
        var done = 0
        while done < data.count {
            let n = min(batchSize, data.count - done)
            let base = done
            let y = model.forward(loadBatch(data, n: n) { base + $0 }, training: false)
            for j in 0..<n * k { out[base * k + j] = y.data[j] }
            for i in 0..<n { truth[base + i] = labels.pointer[i] }
            done += n
        }
        return (out, truth)
    }
}

extension Sequential {
    /// This network followed by a temperature layer (logits / t), with the same weights.
    public func calibrated(temperature t: Float) throws(FCLFError) -> Sequential {
        var specs = self.specs
        if case .temperature = specs.last { specs.removeLast() }
        var rng = SplitMix64(seed: 0)  // nothing is drawn: the weights are copied below
        let net = Sequential(name: name, plan: try Plan(specs: specs + [.temperature(t)], inputShape: inputShape),
                             initializer: .zero, rng: &rng)
        net.restore(snapshot())
        net.metadata = metadata
        return net
    }
}
