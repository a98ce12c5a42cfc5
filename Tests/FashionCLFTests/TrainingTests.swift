// Training as a whole: reproducible from a seed, independent of the thread count, and learning on real data.
import CKernels
@testable import FashionCLF
import Testing
#if canImport(Glibc)
import Glibc
#endif

private func parameters(_ net: Sequential) -> [Float] {
    net.parameters.flatMap { Array(UnsafeBufferPointer(start: $0.value, count: $0.count)) }
}

private func trainedCNN(seed: UInt64, threads: Int, data: LabeledImages) -> [Float] {
    withThreads(threads) {
        var config = TrainConfig()
        config.seed = seed
        config.batchSize = 16
        let trainer = Trainer(model: ModelKind.cnn.build(seed: seed), config: config)
        _ = trainer.trainEpoch(data)
        return parameters(trainer.model)
    }
}

@Suite("Training")
struct TrainingTests {
    @Test("the same seed gives the same weights; 1 and 2 threads agree")
    func reproducibleAndThreadIndependent() {
        let data = synthetic(count: 100, seed: 3)
        let a = trainedCNN(seed: 7, threads: 2, data: data)
        let b = trainedCNN(seed: 7, threads: 2, data: data)
        let c = trainedCNN(seed: 7, threads: 1, data: data)
        let d = trainedCNN(seed: 8, threads: 2, data: data)
        #expect(a == b, "same seed, same run")
        expectClose(c, a, atol: 0, rtol: 1e-5, "1 thread vs 2 threads")
        #expect(a != d, "a different seed gives a different run")
    }

    @Test("the MLP learns the synthetic task (loss falls, accuracy rises)")
    func learnsSynthetic() {
        let data = synthetic(count: 2000, seed: 4), held = synthetic(count: 500, seed: 5)
        var config = TrainConfig()
        config.seed = 1
        let trainer = Trainer(model: ModelKind.mlp.build(seed: 1), config: config)
        let before = trainer.evaluate(held)
        _ = trainer.trainEpoch(data)
        let after = trainer.evaluate(held)
        #expect(after.loss < before.loss * 0.5)
        #expect(after.accuracy > 0.95, "accuracy \(after.accuracy)")
    }

    @Test("initialisers: seeded, and within their limits (Glorot: sqrt(6/(in+out)), He: sqrt(6/in))")
    func initialisers() {
        for (initializer, limit) in [(Initializer.glorotUniform, (6.0 / 300).squareRoot()), (.heUniform, (6.0 / 100).squareRoot())] {
            var a = [Float](repeating: 0, count: 5000), b = a
            var r1 = SplitMix64(seed: 3), r2 = SplitMix64(seed: 3)
            initializer.fill(&a, count: a.count, fanIn: 100, fanOut: 200, rng: &r1)
            initializer.fill(&b, count: b.count, fanIn: 100, fanOut: 200, rng: &r2)
            #expect(a == b, "same seed, same weights")
            let m = a.map { Double(abs($0)) }.max() ?? 0
            #expect(m <= limit && m > 0.95 * limit, "\(initializer): max |w| \(m), limit \(limit)")
        }
    }

    @Test("classification report on a hand-checked confusion matrix")
    func report() {
        // actual 0: 8 right, 2 called 1; actual 1: 1 called 0, 4 right.
        let r = ClassificationReport(confusion: [[8, 2], [1, 4]], names: ["a", "b"])
        #expect(abs(r.rows[0].precision - 8.0 / 9) < 1e-12 && abs(r.rows[0].recall - 0.8) < 1e-12)
        #expect(abs(r.rows[1].precision - 4.0 / 6) < 1e-12 && abs(r.rows[1].recall - 0.8) < 1e-12)
        #expect(abs(r.accuracy - 12.0 / 15) < 1e-12 && r.macro.support == 15)
        let f0 = 2 * (8.0 / 9) * 0.8 / (8.0 / 9 + 0.8), f1 = 2 * (4.0 / 6) * 0.8 / (4.0 / 6 + 0.8)
        #expect(abs(r.macro.f1 - (f0 + f1) / 2) < 1e-12)
        #expect(abs(r.weighted.f1 - (10 * f0 + 5 * f1) / 15) < 1e-12)
        #expect(Text.fixed(0.91234, 4) == "0.9123" && Text.fixed(-1.5, 0) == "-2" && Text.fixed(2.05, 1) == "2.1")
    }

    @Test("real data: one epoch on 6,000 training images exceeds 75% test accuracy",
          .enabled(if: access(FashionMNIST.resolveDirectory(nil) + "/train-images-idx3-ubyte.gz", R_OK) == 0,
                   "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)"))
    func smokeRealData() throws {
        let data = try FashionMNIST(directory: FashionMNIST.resolveDirectory(nil))
        #expect(data.train.count == 60000 && data.test.count == 10000)
        var config = TrainConfig()
        config.seed = 42
        let trainer = Trainer(model: ModelKind.cnn.build(seed: 42), config: config)
        _ = trainer.trainEpoch(data.train.slice(0..<6000))
        let result = trainer.evaluate(data.test)
        print("smoke test: 1 epoch on 6,000 images, test accuracy \(Text.fixed(result.accuracy * 100, 2))%")
        #expect(result.accuracy > 0.75)
        #expect(result.confusion.map { $0.reduce(0, +) } == [Int](repeating: 1000, count: 10))
    }
}
