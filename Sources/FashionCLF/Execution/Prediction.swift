/// One image's answer: the most probable class, its name, and every class's probability.
public struct Prediction: Sendable, Equatable {
    /// The most probable class, 0 ..< `probabilities.count`.
    public let label: Int
    /// The class's name (Fashion-MNIST's, such as "Ankle boot", for a 10-class model).
    public let className: String
    /// Each class's probability: finite, summing to 1.
    public let probabilities: [Float]

    /// The probability of `label`.
    public var confidence: Float { probabilities[label] }
    /// Whether the answer should be shown as unsure (`Classifier.unsureBelow`).
    public var isUnsure: Bool { confidence < Classifier.unsureBelow }

    public init(probabilities: [Float]) {
        self.probabilities = probabilities
        label = probabilities.withUnsafeBufferPointer { argmax($0.baseAddress!, $0.count) }
        className = probabilities.count == FashionMNIST.classNames.count ? FashionMNIST.classNames[label] : "class \(label)"
    }
}

extension Classifier {
    /// Loads a model file written by `fclf-train --out`.
    ///
    /// Throws ``FCLFError/modelFile(path:reason:)`` for a damaged or foreign file and ``FCLFError/io(path:reason:)``
    /// for one that cannot be read.
    public convenience init(contentsOf path: String) throws(FCLFError) {
        self.init(try ModelFile.load(path))
    }

    /// Classifies one image: `pixels` holds `inputShape.perSample` bytes (784 for a 28x28 model), row-major,
    /// Fashion-MNIST's convention (0 = background, 255 = the brightest garment pixel).
    ///
    /// Throws ``FCLFError/invalidArgument(_:)`` for a wrong pixel count and ``FCLFError/numeric(_:)`` when the
    /// model's output is not finite.
    public func predict(pixels: [UInt8]) throws(FCLFError) -> Prediction {
        Prediction(probabilities: try probabilities(pixels))
    }

    /// Classifies images stored back to back (`batch.count` a multiple of `inputShape.perSample`), in one
    /// call: faster than one `predict(pixels:)` per image.
    public func predict(batch: [UInt8]) throws(FCLFError) -> [Prediction] {
        let per = inputShape.perSample
        guard !batch.isEmpty, batch.count % per == 0 else {
            throw .invalidArgument("a batch holds whole images of \(per) bytes; got \(batch.count) bytes")
        }
        let n = batch.count / per
        var probs = [Float](repeating: 0, count: n * classes)
        try batch.withUnsafeBufferPointer { (px) throws(FCLFError) in
            try probs.withUnsafeMutableBufferPointer { (p) throws(FCLFError) in
                try predict(px.baseAddress!, count: n, probabilities: p.baseAddress, labels: nil)
            }
        }
        return (0..<n).map { Prediction(probabilities: Array(probs[$0 * classes ..< ($0 + 1) * classes])) }
    }
}
