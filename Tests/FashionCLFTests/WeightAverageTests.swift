// Stochastic weight averaging (`--average-epochs`): the kernel's running mean against the mean in Double, a run
// that averages trains the same steps as one that does not and ends with their weights' mean, and the BatchNorm
// pass recomputes the running statistics as the mean of its batches' statistics, whatever they were before.
import CKernels
@testable import FashionCLF
import Testing

@Suite("Stochastic weight averaging")
struct WeightAverageTests {
    @Test("fclf_average_update: the mean of k samples as in Double, k = 1 copies, 1 and 2 threads the same bits",
          arguments: [1, 37, 70_001])
    func kernel(_ count: Int) {
        var one = [Double](repeating: 9, count: count), two = one
        var sum = [Double](repeating: 0, count: count)
        for k in 1...7 {
            let x = randomArray(count, seed: 300 + UInt64(k))
            withThreads(1) { fclf_average_update(&one, x, Int64(count), Int64(k)) }
            withThreads(2) { fclf_average_update(&two, x, Int64(count), Int64(k)) }
            for i in 0..<count { sum[i] += Double(x[i]) }
            if k == 1 { #expect(one == x.map(Double.init), "k = 1 must copy the sample") }
        }
        #expect(one.map(\.bitPattern) == two.map(\.bitPattern), "\(count): 1 and 2 threads differ")
        for i in 0..<count where abs(one[i] - sum[i] / 7) > 1e-12 {
            Issue.record("\(count): element \(i) is \(one[i]), the mean is \(sum[i] / 7)")
            break
        }
    }

    @Test("fclf_average_update over 6,000 steps of a slowly settling weight: late steps still count (a float mean would round them away)")
    func longWindow() {
        // w_k = 0.5 + 1e-4 (1 - k / K) + tiny noise: each late step moves the mean by ~1e-8 / k, under half a float ulp of 0.5.
        let steps = 6000
        var mean = [Double](repeating: 0, count: 3), sum = [Double](repeating: 0, count: 3)
        var rng = SplitMix64(seed: 12)
        for k in 1...steps {
            let x = (0..<3).map { _ in Float(0.5 + 1e-4 * (1 - Double(k) / Double(steps))) + rng.uniform(1e-6) }
            fclf_average_update(&mean, x, 3, Int64(k))
            for i in 0..<3 { sum[i] += Double(x[i]) }
        }
        for i in 0..<3 { #expect(abs(mean[i] - sum[i] / Double(steps)) < 1e-12, "element \(i): \(mean[i]) against \(sum[i] / Double(steps))") }
    }

    /// The MLP on synthetic images, 2 epochs of 10 steps; `average` epochs averaged.
    private func recipe(average: Int) -> Recipe {
        var c = TrainConfig()
        c.epochs = 2
        c.batchSize = 32
        c.optimizer = .adamw
        c.weightDecay = 0.01
        c.schedule = .onecycle
        c.learningRate = 3e-3
        c.averageEpochs = average
        c.seed = 8
        return Recipe(model: .mlp, config: c, keepBest: false, calibrate: false)
    }

    @Test("a run that averages the last epoch trains the same steps as one that does not, and ends with the mean of that epoch's 10 weights")
    func averagedRun() throws {
        let fit = synthetic(count: 320, seed: 31), validation = synthetic(count: 64, seed: 32)
        try withThreads(2) {
            let plain = try TrainingRun(recipe: recipe(average: 0), fit: fit, validation: validation)
            var sums: [[Double]] = plain.model.parameters.map { [Double](repeating: 0, count: $0.count) }
            var seen = 0
            plain.onEvent = { [unowned plain] event in
                guard case let .batch(epoch, _, _, _, _) = event, epoch == 2 else { return }
                seen += 1
                for (j, p) in plain.model.parameters.enumerated() {
                    for i in 0..<p.count { sums[j][i] += Double(p.value[i]) }
                }
            }
            #expect(try plain.train() == .finished)
            plain.onEvent = nil
            #expect(seen == 10)

            let averaged = try TrainingRun(recipe: recipe(average: 1), fit: fit, validation: validation)
            #expect(try averaged.train() == .finished)
            #expect(zip(plain.history, averaged.history).allSatisfy { $0.trainLoss == $1.trainLoss && $0.valLoss == $1.valLoss },
                    "averaging changed the trajectory")
            #expect(averaged.trainer.average?.count == 10)
            let result = try averaged.finish(test: validation)
            #expect(result.averaged?.steps == 10 && result.averaged?.epochs == 1 && result.averaged?.valAccuracy != nil)
            for (p, sum) in zip(result.model.parameters, sums) {
                expectClose(Array(UnsafeBufferPointer(start: p.value, count: p.count)), sum.map { Float($0 / 10) }, atol: 1e-7,
                            rtol: 1e-6, "\(p.name): the model is not the mean of the last epoch's weights")
            }
        }
    }

    @Test("refused: keeping the best epoch with averaging, averaging more epochs than the run has, and an --average-rate outside (0, 1], without averaged epochs, with all of them, or under a warm-up reaching into them")
    func refusals() {
        var both = recipe(average: 1)
        both.keepBest = true
        #expect(throws: FCLFError.self) { try TrainingRun(recipe: both, fit: synthetic(count: 40, seed: 1), validation: nil) }
        #expect(throws: FCLFError.self) { try TrainingRun(recipe: recipe(average: 3), fit: synthetic(count: 40, seed: 1), validation: nil) }
        // --average-rate: a rate in (0, 1], some epochs averaged and some not, no warm-up reaching into the held ones.
        for (average, rate, warmup) in [(0, 0.2, 0.0), (2, 0.2, 0), (1, 0, 0), (1, 1.5, 0), (1, .nan, 0), (1, 0.2, 1)] as [(Int, Float, Double)] {
            var r = recipe(average: average)
            (r.config.averageRate, r.config.warmupEpochs, r.config.schedule) = (rate, warmup, .cosine)
            #expect(throws: FCLFError.self, "average \(average), rate \(rate), warm-up \(warmup)") {
                try TrainingRun(recipe: r, fit: synthetic(count: 40, seed: 1), validation: nil)
            }
        }
        var held = recipe(average: 1)
        (held.config.averageRate, held.config.warmupEpochs, held.config.schedule) = (0.2, 0.5, .cosine)
        #expect(throws: Never.self) { try TrainingRun(recipe: held, fit: synthetic(count: 40, seed: 1), validation: nil) }
    }

    @Test("the BatchNorm pass: the running mean and variance become the mean of its 3 batches' means and unbiased variances, whatever they were")
    func batchNormPass() throws {
        var rng = SplitMix64(seed: 3)
        let outputs = 6
        let net = try Sequential(name: "bn", inputShape: ModelKind.imageShape,
                                 specs: [.flatten, .dense(inputSize: 784, outputSize: outputs, activation: .none),
                                         .batchNorm(channels: outputs), .dense(inputSize: outputs, outputSize: 10, activation: .none)],
                                 rng: &rng)
        var c = TrainConfig()
        c.batchSize = 40
        let data = synthetic(count: 120, seed: 5)
        let norm = try #require(net.steps.compactMap { $0 as? BatchNorm }.first)
        norm.runningMean.value.update(repeating: 5, count: outputs)
        norm.runningVariance.value.update(repeating: 7, count: outputs)
        Trainer(model: net, config: c).recomputeBatchNormStatistics(data)

        // The dense layer's outputs in Double (weight [in, out]), then each batch's statistics.
        let w = net.parameters[0], b = net.parameters[1]
        var mean = [Double](repeating: 0, count: outputs), variance = mean
        data.withPixels { px in
            for batch in 0..<3 {
                var z = [[Double]](repeating: [Double](repeating: 0, count: outputs), count: 40)
                for n in 0..<40 {
                    let image = px.baseAddress! + (batch * 40 + n) * 784
                    for o in 0..<outputs {
                        var s = Double(b.value[o])
                        for i in 0..<784 { s += Double(Float(image[i]) / 255) * Double(w.value[i * outputs + o]) }
                        z[n][o] = s
                    }
                }
                for o in 0..<outputs {
                    let m = z.reduce(0) { $0 + $1[o] } / 40
                    mean[o] += m / 3
                    variance[o] += z.reduce(0) { $0 + ($1[o] - m) * ($1[o] - m) } / 39 / 3
                }
            }
        }
        expectClose(Array(UnsafeBufferPointer(start: norm.runningMean.value, count: outputs)), mean.map { Float($0) },
                    atol: 1e-5, rtol: 1e-4, "running mean")
        expectClose(Array(UnsafeBufferPointer(start: norm.runningVariance.value, count: outputs)), variance.map { Float($0) },
                    atol: 1e-5, rtol: 1e-4, "running variance")
        #expect(norm.momentum == LayerSpec.batchNormMomentum, "the training momentum must be back after the pass")
    }

    @Test("the BatchNorm pass on cnn3-bn (a fused first convolution, pooled and plain BatchNorms): whatever the statistics were, the same bits")
    func batchNormPassForgetsEveryPath() throws {
        let net = ModelKind.cnn3BN.build(seed: 4)
        var c = TrainConfig()
        c.batchSize = 32
        let data = synthetic(count: 96, seed: 6)
        let norms = net.steps.compactMap { $0 as? BatchNorm ?? ($0 as? ConvBatchNorm)?.norm }
        #expect(net.steps.contains { $0 is ConvBatchNorm } && norms.contains { $0.pool } && norms.count >= 3)
        func statistics(afterSetting mean: Float, _ variance: Float) -> [[Float]] {
            for n in norms {
                n.runningMean.value.update(repeating: mean, count: n.channels)
                n.runningVariance.value.update(repeating: variance, count: n.channels)
            }
            Trainer(model: net, config: c).recomputeBatchNormStatistics(data)
            return norms.flatMap { [Array(UnsafeBufferPointer(start: $0.runningMean.value, count: $0.channels)),
                                    Array(UnsafeBufferPointer(start: $0.runningVariance.value, count: $0.channels))] }
        }
        let first = statistics(afterSetting: 5, 7), second = statistics(afterSetting: -3, 11)
        #expect(first.map { $0.map(\.bitPattern) } == second.map { $0.map(\.bitPattern) }, "a BatchNorm kept part of its earlier statistics")
        #expect(first.allSatisfy { $0.allSatisfy { $0.isFinite && $0 != 5 && $0 != 7 } })
    }
}
