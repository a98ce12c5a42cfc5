import CKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Drives a Sequential model through batches. Owns the batch input buffers and the shuffling order,
/// all allocated once, so a step in steady state allocates nothing.
public final class Trainer {
    public let model: Sequential
    public let optimizer: any Optimizer
    public let config: TrainConfig
    /// The training loss (label smoothing as configured) and evaluation's plain cross-entropy.
    let loss: SoftmaxCrossEntropy, evaluationLoss: SoftmaxCrossEntropy
    let input = Buffer<Float>(), labels = Buffer<Int32>()
    private var order: [Int32] = []
    private var rng: SplitMix64
    /// Optimiser steps taken, the schedule's clock, and the images augmented so far (each image's draws are
    /// a function of the seed and its position in the run).
    public private(set) var steps = 0
    private var augmented: UInt64 = 0
    private let batchIndex = Buffer<Int32>()

    public init(model: Sequential, config: TrainConfig) {
        self.model = model
        self.config = config
        loss = SoftmaxCrossEntropy(classes: model.outputSize, labelSmoothing: config.labelSmoothing)
        evaluationLoss = SoftmaxCrossEntropy(classes: model.outputSize)
        switch config.optimizer {
        case .adam: optimizer = Adam(parameters: model.parameters, learningRate: config.learningRate)
        case .adamw:
            optimizer = AdamW(parameters: model.parameters, learningRate: config.learningRate, weightDecay: config.weightDecay)
        case .sgd:
            optimizer = SGD(parameters: model.parameters, learningRate: config.learningRate, momentum: config.momentum,
                            nesterov: config.nesterov, weightDecay: config.weightDecay)
        }
        // A stream separate from the initialisation's, derived from the same seed.
        rng = SplitMix64(seed: config.seed ^ 0x5EED_5EED_5EED_5EED)
    }

    /// Copies images `index(0) ..< index(n)` into the input buffer as x / 255, and their labels.
    func loadBatch(_ data: LabeledImages, n: Int, index: (Int) -> Int) -> Tensor {
        let p = data.pixelsPerImage
        let x = input.reserve(n * p), y = labels.reserve(n)
        data.withPixels { px in
            for i in 0..<n {
                let src = index(i)
                scalePixels(px.baseAddress! + src * p, x + i * p, count: p)
                y[i] = Int32(data.label(src))
            }
        }
        return Tensor(data: x, shape: model.inputShape.withBatch(n))
    }

    private func correct(_ n: Int, _ labels: UnsafePointer<Int32>) -> Int {
        let probs = loss.probabilities, k = model.outputSize
        var hits = 0
        for i in 0..<n where argmax(probs + i * k, k) == Int(labels[i]) { hits += 1 }
        return hits
    }

    /// Copies images `order[base ..< base + n]` into the input buffer, augmented as configured (training only).
    private func loadTrainingBatch(_ data: LabeledImages, order: UnsafeBufferPointer<Int32>, base: Int, n: Int) -> Tensor {
        guard var augment = config.augment else { return loadBatch(data, n: n) { Int(order[base + $0]) } }
        let p = data.pixelsPerImage
        let x = input.reserve(n * p), y = labels.reserve(n)
        for i in 0..<n { y[i] = Int32(data.label(Int(order[base + i]))) }
        data.withPixels { px in
            fclf_augment_batch(x, px.baseAddress!, order.baseAddress! + base, Int64(n), Int64(data.rows), Int64(data.cols),
                               &augment, config.seed ^ 0xA116_A116_A116_A116, augmented)
        }
        augmented += UInt64(n)
        return Tensor(data: x, shape: model.inputShape.withBatch(n))
    }

    /// One optimiser step on a batch `x` with its `labels` (x.shape.n of them, each in 0..<classes);
    /// returns (summed loss, correct predictions).
    @discardableResult
    public func step(_ x: Tensor, labels: UnsafePointer<Int32>) -> (loss: Double, correct: Int) {
        model.zeroGradients()
        let logits = model.forward(x)
        let (sum, dlogits) = loss(logits, labels: labels, gradient: true)
        model.backward(dlogits)
        optimizer.step()
        return (sum, correct(x.shape.n, labels))
    }

    /// Trains one epoch over `data` in a fresh random order. `progress(done, total, meanLoss)` is called
    /// after each batch.
    public func trainEpoch(_ data: LabeledImages, progress: ((Int, Int, Double) -> Void)? = nil) -> (loss: Double, accuracy: Double) {
        if order.count != data.count { order = (0..<Int32(data.count)).map { $0 } }
        // Fisher-Yates with our seeded generator (Swift's shuffle(using:) algorithm is not specified).
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        let stepsPerEpoch = (data.count + config.batchSize - 1) / config.batchSize
        let schedule = config.learningRateSchedule(stepsPerEpoch: stepsPerEpoch)
        var lossSum = 0.0, hits = 0, done = 0
        while done < data.count {
            let n = min(config.batchSize, data.count - done)
            let base = done
            let x = order.withUnsafeBufferPointer { loadTrainingBatch(data, order: $0, base: base, n: n) }
            optimizer.learningRate = schedule.rate(step: steps, totalSteps: config.epochs * stepsPerEpoch)
            let r = step(x, labels: labels.pointer)
            steps += 1
            lossSum += r.loss
            hits += r.correct
            done += n
            progress?(done, data.count, lossSum / Double(done))
        }
        return (lossSum / Double(max(data.count, 1)), Double(hits) / Double(max(data.count, 1)))
    }
}
