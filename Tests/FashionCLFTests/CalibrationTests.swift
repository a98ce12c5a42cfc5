// Temperature scaling: the fitted temperature undoes a known overconfidence, the calibration error falls,
// the predicted classes stay, and a calibrated model file carries its temperature.
import CKernels
@testable import FashionCLF
import Foundation
import Testing

@Suite("Calibration")
struct CalibrationTests {
    /// Logits z whose labels are drawn from softmax(z): calibrated by construction.
    private func calibratedSample(_ n: Int, k: Int = 10, seed: UInt64) -> (logits: [Float], labels: [Int32]) {
        var rng = SplitMix64(seed: seed)
        var logits: [Float] = [], labels: [Int32] = []
        for _ in 0..<n {
            let z = (0..<k).map { _ in rng.uniform(2.5) }
            let m = z.max()!, e = z.map { Foundation.exp(Double($0 - m)) }, s = e.reduce(0, +)
            var u = Double(rng.nextUnitFloat()) * s, label = k - 1
            for j in 0..<k { u -= e[j]; if u < 0 { label = j; break } }
            logits += z
            labels.append(Int32(label))
        }
        return (logits, labels)
    }

    @Test("an overconfident model (logits x 3) is fitted a temperature near 3; its calibration error falls")
    func temperatureUndoesOverconfidence() {
        let (z, labels) = calibratedSample(20_000, seed: 1)
        let sharp = z.map { $0 * 3 }
        let t = Calibration.fitTemperature(logits: sharp, labels: labels, classes: 10)
        #expect(abs(t - 3) < 0.15, "fitted \(t)")
        let before = Calibration.expectedCalibrationError(logits: sharp, labels: labels, classes: 10)
        let after = Calibration.expectedCalibrationError(logits: sharp, labels: labels, classes: 10, temperature: Double(t))
        #expect(before > 0.1 && after < 0.02, "ECE \(before) -> \(after)")
        // Already calibrated logits keep a temperature near 1.
        let one = Calibration.fitTemperature(logits: z, labels: labels, classes: 10)
        #expect(abs(one - 1) < 0.06, "fitted \(one)")
    }

    @Test("a calibrated network predicts the same classes, is stored with its temperature, and reloads")
    func calibratedNetwork() throws {
        let net = ModelKind.mlp.build(seed: 3)
        let data = synthetic(count: 64, seed: 4)
        let trainer = Trainer(model: net, config: TrainConfig())
        _ = trainer.trainEpoch(data)
        let calibrated = try net.calibrated(temperature: 2.5)
        #expect(calibrated.specs.last == .temperature(2.5) && calibrated.specs.count == net.specs.count + 1)
        let before = Trainer(model: net, config: TrainConfig()).evaluate(data)
        let after = Trainer(model: calibrated, config: TrainConfig()).evaluate(data)
        #expect(before.predictions == after.predictions)
        #expect(after.confidences.max()! < before.confidences.max()!, "a temperature above 1 softens the probabilities")
        let dir = temporaryDirectory()
        try ModelFile.save(calibrated, to: dir + "/c.fclf")
        let loaded = try ModelFile.load(dir + "/c.fclf")
        #expect(loaded.specs == calibrated.specs)
        // Recalibrating replaces the temperature instead of stacking a second one.
        #expect(try loaded.calibrated(temperature: 1.5).specs.last == .temperature(1.5))
        #expect(try loaded.calibrated(temperature: 1.5).specs.count == calibrated.specs.count)
    }

    @Test("unsure below an even chance")
    func unsureRule() {
        #expect([Float](repeating: 0.1, count: 10).withUnsafeBufferPointer { Classifier.isUnsure($0) })
        var p = [Float](repeating: 0.5 / 9, count: 10)
        p[3] = 0.5
        #expect(!p.withUnsafeBufferPointer { Classifier.isUnsure($0) })
        p[3] = 0.49
        #expect(p.withUnsafeBufferPointer { Classifier.isUnsure($0) })
        #expect([Float](repeating: .nan, count: 10).withUnsafeBufferPointer { Classifier.isUnsure($0) }, "NaN is unsure")
        // Rows of NaN logits (a diverged run) are left out of the calibration error instead of trapping.
        let ece = Calibration.expectedCalibrationError(logits: [Float](repeating: .nan, count: 10) + [5, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                                                       labels: [0, 0], classes: 10)
        #expect(ece.isFinite)
    }

    @Test("flip averaging: the mean of the two predictions, unsure when the mirror names another class")
    func flipAveragedUnsure() {
        func probs(_ top: Int, _ p: Float) -> [Float] {
            var v = [Float](repeating: (1 - p) / 9, count: 10)
            v[top] = p
            return v
        }
        let same = Classifier.flipAveraged(probs(7, 0.9), mirrored: probs(7, 0.7))
        #expect(same.mirrorAgrees && !same.unsure)
        #expect(abs(same.probabilities[7] - 0.8) < 1e-6)
        #expect(abs(same.probabilities.reduce(0, +) - 1) < 1e-5)
        // Confident both ways but about different classes: the mean still favours Sneaker at 0.5, yet unsure.
        let differ = Classifier.flipAveraged(probs(7, 0.95), mirrored: probs(9, 0.55))
        #expect(!differ.mirrorAgrees && differ.unsure && differ.label == 7 && same.label == 7)
        #expect(!differ.probabilities.withUnsafeBufferPointer { Classifier.isUnsure($0) }, "the probability alone would not mark it")
        // Agreeing but weak: the probability rule still applies.
        let weak = Classifier.flipAveraged(probs(2, 0.45), mirrored: probs(2, 0.4))
        #expect(weak.mirrorAgrees && weak.unsure)
    }
}
