import CKernels

/// A trainable tensor and its gradient, allocated once. `backward` passes ACCUMULATE into `grad`;
/// the trainer zeroes it before each batch.
public final class Parameter {
    public let name: String
    public let shape: [Int]
    public let count: Int
    public let value: UnsafeMutablePointer<Float>
    public let grad: UnsafeMutablePointer<Float>
    private let storage: Buffer<Float>

    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
        count = shape.reduce(1, *)
        storage = Buffer(capacity: 2 * count)
        value = storage.pointer
        grad = storage.pointer + count
    }

    public func zeroGrad() { grad.update(repeating: 0, count: count) }
}
