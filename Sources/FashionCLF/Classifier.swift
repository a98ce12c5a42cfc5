import CKernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An immutable, thread-safe classifier for inference: the architecture and weights of a trained
/// `Sequential`, copied once. Unlike the training layers, which keep their activations for backward,
/// `predict` keeps all its state in scratch memory of its own call, so any number of threads may
/// predict with one Classifier at once.
///
/// It runs the same kernels on the same weights as `Sequential.forward`, and those kernels' results do
/// not depend on the batch size or the thread count, so its predictions equal the training code's bit
/// for bit (tested).
public final class Classifier: Sendable {
    public let name: String
    public let inputShape: Shape
    public let classes: Int
    public let specs: [LayerSpec]
    /// Per layer: weight and bias as stored in the model file (empty for layers without parameters).
    private let weights: [[Float]]
    private let biases: [[Float]]
    /// Per-sample shape after each layer.
    private let shapes: [Shape]
    /// Per sample: the largest activation, and the largest work area a layer needs (the im2col matrix of
    /// a convolution with few taps; the probabilities when none are asked for).
    private let activationSize: Int
    private let workSize: Int
    /// Layers whose convolution also does the 2x2 max pooling after it in one pass (fclf_conv2d_pool_forward,
    /// few taps per output); the pooling layer is then skipped.
    private let poolsOutput: [Bool]

    /// Images per kernel call: bounds the scratch to a few MB however many images are asked for.
    public static let chunk = 32
    /// Largest scratch (floats) kept per thread between calls: a few images' worth.
    static let threadScratchLimit = 1 << 20

    public init(_ model: Sequential) {
        name = model.name
        inputShape = model.inputShape
        classes = model.outputSize
        specs = model.specs
        var weights: [[Float]] = [], biases: [[Float]] = [], shapes: [Shape] = []
        var shape = model.inputShape
        var activation = shape.perSample, work = model.outputSize
        var poolsOutput: [Bool] = []
        for layer in model.layers {
            let params = layer.parameters
            weights.append(params.count > 0 ? Array(UnsafeBufferPointer(start: params[0].value, count: params[0].count)) : [])
            biases.append(params.count > 1 ? Array(UnsafeBufferPointer(start: params[1].value, count: params[1].count)) : [])
            let out = layer.outputShape(shape)
            if let conv = layer as? Conv2D {
                let s = Classifier.convShape(conv.outChannels, conv.kernelSize, conv.padding, shape)
                poolsOutput.append(conv.poolsOutput && fclf_conv2d_pool_supported(s) != 0)
                if fclf_conv2d_uses_col(s) != 0 { work = max(work, Int(fclf_conv2d_col_size(s))) }
            } else {
                poolsOutput.append(false)
            }
            activation = max(activation, out.perSample)
            shapes.append(out)
            shape = out
        }
        self.weights = weights
        self.biases = biases
        self.shapes = shapes
        self.poolsOutput = poolsOutput
        activationSize = activation
        workSize = work
    }

    private static func convShape(_ oc: Int, _ k: Int, _ padding: Padding, _ x: Shape) -> fclf_conv2d_shape {
        fclf_conv2d_make_shape(Int64(x.n), Int64(x.c), Int64(x.h), Int64(x.w), Int64(oc), Int64(k), Int64(k),
                               padding == .same ? 1 : 0)
    }

    /// Class probabilities for `count` images of `inputShape.perSample` bytes each (0...255, scaled by
    /// 1/255, as in training). Writes `probabilities[count * classes]` and/or `labels[count]` (either may
    /// be nil). Returns false only when scratch memory cannot be had (nothing is written then).
    @discardableResult
    public func predict(_ pixels: UnsafePointer<UInt8>, count: Int, probabilities: UnsafeMutablePointer<Float>?,
                        labels: UnsafeMutablePointer<Int32>?) -> Bool {
        guard count > 0 else { return true }
        let perImage = inputShape.perSample
        let chunk = min(count, Classifier.chunk)
        let floats = chunk * (2 * activationSize + workSize)
        // Small requests (single images) reuse this thread's buffer: no allocation, no page faults.
        let reuse = floats <= Classifier.threadScratchLimit
        let memory = reuse ? UnsafeMutableRawPointer(fclf_thread_scratch(Int64(floats))) : malloc(floats * 4)
        guard let memory else { return false }
        defer { if !reuse { free(memory) } }
        // A few images stay on the calling thread. On 2 cores one image took 56 us instead of 73 while the
        // second core was free, but 110 us whenever the VM's other core was busy, and its p99 was 160 us
        // against 107 (predict_bench): a till wants the steady figure. A call made while another runs also
        // stays on its thread: concurrent callers would otherwise each start an OpenMP team on all cores.
        let serial = fclf_shared_enter() > 0 || count <= 4
        if serial { fclf_serial_begin() }
        defer {
            if serial { fclf_serial_end() }
            fclf_shared_exit()
        }
        let scratch = memory.assumingMemoryBound(to: Float.self)
        var done = 0
        while done < count {
            let n = min(chunk, count - done)
            var a = scratch, b = scratch + n * activationSize
            let work = scratch + 2 * n * activationSize
            let src = pixels + done * perImage
            for j in 0..<n * perImage { a[j] = Float(src[j]) * (1 / 255) }
            var shape = inputShape.withBatch(n)
            for (i, spec) in specs.enumerated() {
                var out = shapes[i].withBatch(n)
                switch spec {
                case .conv2d(_, let oc, let k, let padding, let act):
                    let s = Classifier.convShape(oc, k, padding, shape)
                    let fused = poolsOutput[i]
                    weights[i].withUnsafeBufferPointer { w in
                        biases[i].withUnsafeBufferPointer { bias in
                            if fused { // inference needs no winner indices
                                fclf_conv2d_pool_forward(b, nil, work, a, w.baseAddress, bias.baseAddress,
                                                         act == .relu ? 1 : 0, s)
                            } else {
                                fclf_conv2d_forward(b, work, a, w.baseAddress, bias.baseAddress, act == .relu ? 1 : 0, s)
                            }
                        }
                    }
                    if fused { out = shapes[i + 1].withBatch(n) }
                    swap(&a, &b)
                case .dense(let input, let output, let act):
                    weights[i].withUnsafeBufferPointer { w in
                        biases[i].withUnsafeBufferPointer { bias in
                            fclf_dense_forward(b, a, w.baseAddress, bias.baseAddress, Int64(n), Int64(input),
                                               Int64(output), act == .relu ? 1 : 0)
                        }
                    }
                    swap(&a, &b)
                case .relu:
                    fclf_relu_forward(a, a, Int64(shape.count))
                case .maxPool2x2 where i > 0 && poolsOutput[i - 1]:
                    break // done by the convolution before
                case .maxPool2x2: // inference needs no winner indices
                    fclf_maxpool2x2_forward(b, nil, a, Int64(shape.n * shape.c), Int64(shape.h), Int64(shape.w))
                    swap(&a, &b)
                case .flatten:
                    break
                }
                shape = out
            }
            let probs = probabilities.map { $0 + done * classes } ?? work
            fclf_softmax_forward(probs, a, Int64(n), Int64(classes))
            if let labels {
                for j in 0..<n { labels[done + j] = Int32(argmax(probs + j * classes, classes)) }
            }
            done += n
        }
        return true
    }
}
