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
    /// The running mean of the last `config.averageEpochs` epochs' weights, when the recipe averages.
    public let average: WeightAverage?
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
        average = config.averageEpochs > 0 ? WeightAverage(parameters: model.parameters) : nil
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

    /// Copies images `order[base ..< base + n]` into the input buffer, augmented as configured (training only;
    /// not in the last `cleanEpochs` epochs).
    private func loadTrainingBatch(_ data: LabeledImages, order: UnsafeBufferPointer<Int32>, base: Int, n: Int) -> Tensor {
        // The epoch (from 0) follows from the step counter, which a checkpoint restores (as the schedule's
        // clock does, it assumes every epoch runs over the same number of images).
        let clean = config.cleanEpochs > 0 && steps / stepsPerEpoch(data.count) >= config.epochs - config.cleanEpochs
        guard var augment = config.augment, !clean else {
            return loadBatch(data, n: n) { Int(order[base + $0]) }
        }
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

    /// The first step (counted from 1) whose weights the average takes: the first of the last
    /// `config.averageEpochs` epochs.
    func firstAveragedStep(_ stepsPerEpoch: Int) -> Int { (config.epochs - config.averageEpochs) * stepsPerEpoch + 1 }

    /// Optimiser steps of one epoch over `count` images.
    public func stepsPerEpoch(_ count: Int) -> Int { (count + config.batchSize - 1) / config.batchSize }

    /// Starts an epoch over `data`: a fresh random order (a Fisher-Yates shuffle of the previous epoch's) and
    /// the epoch's sums at 0. `trainNextBatch` then walks it.
    public func beginEpoch(_ data: LabeledImages) {
        if order.count != data.count { order = (0..<Int32(data.count)).map { $0 } }
        // Fisher-Yates with our seeded generator (Swift's shuffle(using:) algorithm is not specified).
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(i, Int(rng.next() % UInt64(i + 1)))
        }
        epochDone = 0
        epochLossSum = 0
        epochHits = 0
    }

    /// Images of the current epoch trained so far, and their summed loss and correct predictions.
    public private(set) var epochDone = 0
    public private(set) var epochLossSum = 0.0
    public private(set) var epochHits = 0

    /// The current epoch's mean loss and accuracy so far.
    public var epochResult: (loss: Double, accuracy: Double) {
        (epochLossSum / Double(max(epochDone, 1)), Double(epochHits) / Double(max(epochDone, 1)))
    }

    /// One optimiser step on the next batch of the epoch begun with `beginEpoch` (`data` the same images);
    /// returns the batch's summed loss and its size.
    @discardableResult
    public func trainNextBatch(_ data: LabeledImages) -> (loss: Double, count: Int) {
        precondition(order.count == data.count && epochDone < data.count, "trainNextBatch: no batch left; call beginEpoch first")
        let stepsPerEpoch = self.stepsPerEpoch(data.count)
        let schedule = config.learningRateSchedule(stepsPerEpoch: stepsPerEpoch)
        let n = min(config.batchSize, data.count - epochDone)
        let base = epochDone
        let x = order.withUnsafeBufferPointer { loadTrainingBatch(data, order: $0, base: base, n: n) }
        optimizer.learningRate = schedule.rate(step: steps, totalSteps: config.epochs * stepsPerEpoch)
        let r = step(x, labels: labels.pointer)
        steps += 1
        if let average, steps >= firstAveragedStep(stepsPerEpoch) { average.add() }
        epochLossSum += r.loss
        epochHits += r.correct
        epochDone += n
        return (r.loss, n)
    }

    /// Trains one epoch over `data` in a fresh random order. `progress(done, total, meanLoss)` is called
    /// after each batch.
    public func trainEpoch(_ data: LabeledImages, progress: ((Int, Int, Double) -> Void)? = nil) -> (loss: Double, accuracy: Double) {
        beginEpoch(data)
        while epochDone < data.count {
            trainNextBatch(data)
            progress?(epochDone, data.count, epochLossSum / Double(epochDone))
        }
        return (epochLossSum / Double(max(data.count, 1)), Double(epochHits) / Double(max(data.count, 1)))
    }

    /// Recomputes every BatchNorm's running statistics for the weights the model has now (a weight average's):
    /// one pass over `data` in its stored order, in batches of the recipe's size, each image prepared as the
    /// last epoch prepared it (augmented unless the run ends on clean epochs), every batch's statistics
    /// weighted alike (a cumulative mean, as PyTorch's `torch.optim.swa_utils.update_bn`). Dropout is active,
    /// as in `update_bn`'s training mode. Changes nothing else but the augmentation and dropout counters.
    public func recomputeBatchNormStatistics(_ data: LabeledImages) {
        let norms = model.steps.compactMap { $0 as? BatchNorm ?? ($0 as? ConvBatchNorm)?.norm }
        guard !norms.isEmpty, data.count > 0 else { return }
        let identity = [Int32](0..<Int32(data.count))
        var base = 0, batches = 0
        identity.withUnsafeBufferPointer { order in
            while base < data.count {
                let n = min(config.batchSize, data.count - base)
                for norm in norms { norm.momentum = 1 / Float(batches + 1) }  // the first batch's statistics replace
                _ = model.forward(loadTrainingBatch(data, order: order, base: base, n: n), training: true)
                base += n
                batches += 1
            }
        }
        for norm in norms { norm.momentum = LayerSpec.batchNormMomentum }
    }

    // MARK: - Checkpoints

    /// Everything a run's later steps depend on besides the data and the recipe: every stored value of the
    /// model (BatchNorm's running statistics included), the optimiser's state, the shuffle generator and the
    /// current order (each epoch shuffles the previous one), the step and augmentation counters, dropout's
    /// batch counters and the current epoch's position and sums.
    public struct State: Equatable, Sendable {
        public var stored: [[Float]]
        public var optimizer: OptimizerState
        public var shuffleState: UInt64
        public var order: [Int32]
        public var steps: Int
        public var augmented: UInt64
        public var dropoutBatches: [UInt64]
        public var epochDone: Int
        public var epochLossSum: Double
        public var epochHits: Int
        /// The weight average's means and steps (empty and 0 when the recipe does not average, and before its
        /// first averaged step).
        public var average: [[Double]] = []
        public var averagedSteps = 0
    }

    private var dropouts: [Dropout] { model.steps.compactMap { $0 as? Dropout } }

    public var state: State {
        State(stored: model.snapshot(), optimizer: optimizer.state, shuffleState: rng.state, order: order, steps: steps,
              augmented: augmented, dropoutBatches: dropouts.map(\.batches), epochDone: epochDone,
              epochLossSum: epochLossSum, epochHits: epochHits, average: average?.state.means ?? [],
              averagedSteps: average?.count ?? 0)
    }

    /// Puts back a state taken from a trainer of the same model and recipe; throws, changing nothing, when
    /// the sizes do not fit.
    public func restore(_ s: State) throws(FCLFError) {
        let dropouts = self.dropouts
        guard s.stored.count == model.stored.count, zip(s.stored, model.stored).allSatisfy({ $0.count == $1.count }) else {
            throw .invalidArgument("the saved model values (\(s.stored.map(\.count))) do not fit this model (\(model.stored.map(\.count)))")
        }
        guard s.dropoutBatches.count == dropouts.count else {
            throw .invalidArgument("\(s.dropoutBatches.count) saved dropout counters for \(dropouts.count) dropout layers")
        }
        guard s.steps >= 0, s.epochDone >= 0, s.epochDone <= s.order.count, s.epochHits >= 0, s.epochHits <= s.epochDone else {
            throw .invalidArgument("saved position \(s.epochDone) of \(s.order.count) images (\(s.epochHits) correct, step \(s.steps)) is impossible")
        }
        if let average {
            // Every step of the last averageEpochs epochs is averaged, so the count follows from the step.
            let expected = max(0, s.steps - firstAveragedStep(stepsPerEpoch(s.order.count)) + 1)
            guard average.fits(means: s.average, count: s.averagedSteps), s.averagedSteps == expected else {
                throw .invalidArgument("the saved weight average (\(s.average.map(\.count)), \(s.averagedSteps) steps) does not fit this model's parameters (\(average.parameters.map(\.count))) at step \(s.steps), which averages \(expected)")
            }
        } else if !s.average.isEmpty || s.averagedSteps != 0 {
            throw .invalidArgument("the saved state holds a weight average and this recipe averages no weights")
        }
        var seen = [Bool](repeating: false, count: s.order.count)
        for i in s.order {
            guard i >= 0 && Int(i) < seen.count && !seen[Int(i)] else { throw .invalidArgument("the saved shuffle order is not a permutation") }
            seen[Int(i)] = true
        }
        try optimizer.restore(s.optimizer)
        try average?.restore(means: s.average, count: s.averagedSteps)
        model.restore(s.stored)
        rng = SplitMix64(seed: s.shuffleState)
        order = s.order
        steps = s.steps
        augmented = s.augmented
        for (d, b) in zip(dropouts, s.dropoutBatches) { d.batches = b }
        epochDone = s.epochDone
        epochLossSum = s.epochLossSum
        epochHits = s.epochHits
    }
}
