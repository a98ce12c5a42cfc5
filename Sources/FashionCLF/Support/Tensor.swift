/// The shape of an NCHW tensor. Dense activations use `[n, features, 1, 1]`.
public struct Shape: Equatable, Sendable, CustomStringConvertible {
    public var n, c, h, w: Int

    public init(n: Int, c: Int, h: Int = 1, w: Int = 1) {
        self.n = n; self.c = c; self.h = h; self.w = w
    }

    /// Elements of one sample.
    public var perSample: Int { c * h * w }
    public var count: Int { n * c * h * w }
    public func withBatch(_ n: Int) -> Shape { Shape(n: n, c: c, h: h, w: w) }
    public var description: String { "[\(n), \(c), \(h), \(w)]" }
}

/// A view of contiguous Float storage owned by someone else (a layer's `Buffer`), with its shape.
/// Passing a Tensor never copies the data, so the C kernels work on the layers' own buffers.
public struct Tensor {
    public let data: UnsafeMutablePointer<Float>
    public var shape: Shape

    public init(data: UnsafeMutablePointer<Float>, shape: Shape) {
        self.data = data; self.shape = shape
    }
}

/// Grow-only, 64-byte aligned storage. Layers size their activation and gradient buffers on the first
/// batch and reuse them afterwards, so a training step in steady state allocates nothing.
public final class Buffer<Element> {
    public private(set) var pointer: UnsafeMutablePointer<Element>
    public private(set) var capacity: Int

    public init(capacity: Int = 0) {
        self.capacity = max(capacity, 1)
        pointer = Buffer.allocate(self.capacity)
    }

    private static func allocate(_ count: Int) -> UnsafeMutablePointer<Element> {
        let raw = UnsafeMutableRawPointer.allocate(
            byteCount: count * MemoryLayout<Element>.stride, alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: count * MemoryLayout<Element>.stride)
        return raw.bindMemory(to: Element.self, capacity: count)
    }

    /// At least `count` elements; the contents are unspecified after a growth.
    @discardableResult
    public func reserve(_ count: Int) -> UnsafeMutablePointer<Element> {
        if count > capacity {
            UnsafeMutableRawPointer(pointer).deallocate()
            capacity = count
            pointer = Buffer.allocate(count)
        }
        return pointer
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}
