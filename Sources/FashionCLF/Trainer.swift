import CKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Monotonic seconds.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

public enum OptimizerKind: String, CaseIterable, Sendable { case adam, sgd }

/// The seed study's recipe by default: Adam 1e-3, batch 32, 15 epochs, the last 20% held out.
public struct TrainConfig: Sendable {
    public var epochs = 15
    public var batchSize = 32
    public var learningRate: Float = 1e-3
    public var optimizer = OptimizerKind.adam
    public var momentum: Float = 0.9
    public var valSplit = 0.2
    public var seed: UInt64 = 42
    public init() {}
}

public struct EpochRecord: Sendable {
    public var epoch: Int
    public var trainLoss: Double, trainAccuracy: Double
    public var valLoss: Double?, valAccuracy: Double?
    public var seconds: Double
    public var imagesPerSecond: Double

    public init(epoch: Int, trainLoss: Double, trainAccuracy: Double, valLoss: Double?, valAccuracy: Double?,
                seconds: Double, imagesPerSecond: Double) {
        self.epoch = epoch; self.trainLoss = trainLoss; self.trainAccuracy = trainAccuracy
        self.valLoss = valLoss; self.valAccuracy = valAccuracy; self.seconds = seconds
        self.imagesPerSecond = imagesPerSecond
    }
}

/// Terminal output that Swift 6's strict concurrency accepts (the C `stdout`/`stderr` globals are mutable).
public enum Console {
    /// One line on standard error.
    public static func error(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            off += n
        }
    }

    /// Flushes `print`'s buffered output, so that a log follows the run as it goes.
    public static func flush() { fflush(nil) }
}

public struct Evaluation: Sendable {
    public var count: Int
    public var loss: Double
    public var accuracy: Double
    /// confusion[actual][predicted]
    public var confusion: [[Int]]
    /// The predicted class of each image, in order.
    public var predictions: [UInt8]
    /// The probability the model gave its predicted class, per image.
    public var confidences: [Float]
}

/// Drives a Sequential model through batches. Owns the batch input buffers and the shuffling order,
/// all allocated once, so a step in steady state allocates nothing.
public final class Trainer {
    public let model: Sequential
    public let optimizer: any Optimizer
    public let config: TrainConfig
    private let loss: SoftmaxCrossEntropy
    private let input = Buffer<Float>(), labels = Buffer<Int32>()
    private var order: [Int32] = []
    private var rng: SplitMix64

    public init(model: Sequential, config: TrainConfig) {
        self.model = model
        self.config = config
        loss = SoftmaxCrossEntropy(classes: model.outputSize)
        switch config.optimizer {
        case .adam: optimizer = Adam(parameters: model.parameters, learningRate: config.learningRate)
        case .sgd: optimizer = SGD(parameters: model.parameters, learningRate: config.learningRate, momentum: config.momentum)
        }
        // A stream separate from the initialisation's, derived from the same seed.
        rng = SplitMix64(seed: config.seed ^ 0x5EED_5EED_5EED_5EED)
    }

    /// Copies images `index(0) ..< index(n)` into the input buffer as x / 255, and their labels.
    private func loadBatch(_ data: LabeledImages, n: Int, index: (Int) -> Int) -> Tensor {
        let p = data.pixelsPerImage
        let x = input.reserve(n * p), y = labels.reserve(n)
        data.withPixels { px in
            for i in 0..<n {
                let src = index(i)
                let s = px.baseAddress! + src * p, d = x + i * p
                for j in 0..<p { d[j] = Float(s[j]) * (1 / 255) }
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
        var lossSum = 0.0, hits = 0, done = 0
        while done < data.count {
            let n = min(config.batchSize, data.count - done)
            let base = done
            let x = order.withUnsafeBufferPointer { o in loadBatch(data, n: n) { Int(o[base + $0]) } }
            let r = step(x, labels: labels.pointer)
            lossSum += r.loss
            hits += r.correct
            done += n
            progress?(done, data.count, lossSum / Double(done))
        }
        return (lossSum / Double(max(data.count, 1)), Double(hits) / Double(max(data.count, 1)))
    }

    /// Loss, accuracy, confusion matrix and predictions over `data`, in batches of `batchSize`.
    public func evaluate(_ data: LabeledImages, batchSize: Int = 128) -> Evaluation {
        let k = model.outputSize
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: k), count: k)
        var predictions = [UInt8](repeating: 0, count: data.count)
        var confidences = [Float](repeating: 0, count: data.count)
        var lossSum = 0.0, hits = 0, done = 0
        while done < data.count {
            let n = min(batchSize, data.count - done)
            let base = done
            let x = loadBatch(data, n: n) { base + $0 }
            let logits = model.forward(x)
            lossSum += loss(logits, labels: labels.pointer, gradient: false).sum
            let probs = loss.probabilities
            for i in 0..<n {
                let pred = argmax(probs + i * k, k), actual = Int(labels.pointer[i])
                confusion[actual][pred] += 1
                predictions[base + i] = UInt8(pred)
                confidences[base + i] = probs[i * k + pred]
                if pred == actual { hits += 1 }
            }
            done += n
        }
        let total = Double(max(data.count, 1))
        return Evaluation(count: data.count, loss: lossSum / total, accuracy: Double(hits) / total,
                          confusion: confusion, predictions: predictions, confidences: confidences)
    }
}

/// Index of the largest of `k` values (the first one on ties).
@inline(__always)
func argmax(_ p: UnsafePointer<Float>, _ k: Int) -> Int {
    var best = 0
    for j in 1..<k where p[j] > p[best] { best = j }
    return best
}
