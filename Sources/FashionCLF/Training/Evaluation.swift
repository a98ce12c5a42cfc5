import CKernels

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

extension Trainer {
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
            let logits = model.forward(x, training: false)
            lossSum += evaluationLoss(logits, labels: labels.pointer, gradient: false).sum
            let probs = evaluationLoss.probabilities
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
