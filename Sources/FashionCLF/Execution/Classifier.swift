import CKernels
import CModelData

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An immutable, thread-safe classifier for inference: a trained network's layers compiled into an inference
/// plan (BatchNorm folded, dropout dropped) and a copy of its weights. It executes the plan's steps through
/// their `infer` (the same kernels as training, on memory of the call's own), so any number of threads may
/// predict with one Classifier at once.
///
/// The kernels' results do not depend on the batch size or the thread count, so without BatchNorm its
/// predictions equal the training code's evaluation bit for bit (tested); a folded BatchNorm rounds its
/// weights once, differently (tested: the same classes, probabilities within 1e-5).
public final class Classifier: @unchecked Sendable {
    // @unchecked: `network`'s executors hold training buffers, but `predict` only reads their weights
    // (never written after init) and works in scratch memory of its own call.
    private let network: Sequential
    public var name: String { network.name }
    public var plan: Plan { network.plan }
    public var inputShape: Shape { network.inputShape }
    public var classes: Int { network.outputSize }
    public var specs: [LayerSpec] { network.specs }
    public var summary: ModelSummary { network.summary }
    /// What the model file records (fclf-train: when, how, test accuracy); see `metadataJSON`.
    public var metadata: ModelMetadata { network.metadata }
    /// The model described as one JSON object: format_version, architecture, layers, parameters, input,
    /// classes, temperature, unsure_below, test_accuracy and created (null when the file does not say), then
    /// everything else the file records. What `fclf_model_metadata` returns.
    public let metadataJSON: String
    /// Per sample: the largest step output (two such buffers alternate), the largest residual block input
    /// (kept from the block's start to its end), and the largest scratch a step needs.
    private let activationSize: Int
    private let keptSize: Int
    private let workSize: Int

    /// Each inference step with the values it computes with (BatchNorm already folded in), in the model
    /// file's order per layer (weight then bias; gamma, beta, mean, variance): what an exporter writes.
    public var stepValues: [(step: Plan.Step, values: [(shape: [Int], values: [Float])])] {
        zip(plan.steps, network.steps).map { step, layer in
            (step, layer.stored.map { ($0.shape, Array(UnsafeBufferPointer(start: $0.value, count: $0.count))) })
        }
    }

    /// Images per kernel call: bounds the scratch to a few MB however many images are asked for.
    public static let chunk = 32
    /// Largest scratch (floats) kept per thread between calls: a few images' worth.
    static let threadScratchLimit = 1 << 20

    public init(_ model: Sequential) {
        var rng = SplitMix64(seed: 0)  // nothing is drawn: the weights are copied below
        // The specs chained when the model was built, so the inference plan compiles.
        let plan = try! Plan(specs: model.specs, inputShape: model.inputShape, mode: .inference)
        network = Sequential(name: model.name, plan: plan, initializer: .zero, rng: &rng)
        network.load(from: model)
        // The weights are final (BatchNorm folded): products read them packed from here on, not repacked per call.
        for (step, layer) in zip(plan.steps, network.steps) { layer.packForInference(step.input) }
        network.metadata = model.metadata
        var temperature: ModelMetadata.Value?
        if case .temperature(let t) = model.specs.last { temperature = .number(Double(t)) }
        let shape = model.inputShape
        metadataJSON = model.metadata.json(leading: [
            ("format_version", .number(Double(model.formatVersion))),
            ("architecture", .string(model.name)),
            ("layers", .string(model.specs.map(\.summary).joined(separator: "; "))),
            ("parameters", .number(Double(model.parameterCount))),
            ("input", .string("\(shape.c)x\(shape.h)x\(shape.w)")),
            ("classes", .number(Double(model.outputSize))),
            ("temperature", temperature),
            ("unsure_below", .number(Double(Classifier.unsureBelow))),
            ("test_accuracy", model.metadata["test_accuracy"]),
            ("created", model.metadata["created"]),
        ])
        activationSize = plan.steps.reduce(plan.inputShape.perSample) { max($0, $1.output.perSample) }
        keptSize = zip(plan.steps, network.steps).reduce(0) { w, s in s.1.keepsWork ? max(w, s.1.inferenceWork(s.0.input, n: 1)) : w }
        workSize = zip(plan.steps, network.steps).reduce(plan.outputSize) { w, s in
            s.1.keepsWork ? w : max(w, s.1.inferenceWork(s.0.input, n: 1))  // linear in n
        }
    }

    /// The model built into the library (Sources/CModelData/builtin-model.fclf): the `best` preset's (recipe 6)
    /// calibrated network the README's "The default model" section describes. Throws only if the library was
    /// built with a damaged file.
    public static func builtIn() throws(FCLFError) -> Classifier {
        var size = 0
        let base = fclf_data_builtin_model(&size)
        let bytes = Array(UnsafeBufferPointer(start: base, count: size))
        return Classifier(try ModelFile.decode(bytes, path: Classifier.builtInPath))
    }

    /// A prediction whose top probability is below this is marked unsure (fclf-classify, and the C API's
    /// FCLF_UNSURE_BELOW): the model then gives its answer less than an even chance of being right. The rule is
    /// meaningful for calibrated models (`fclf-train --calibrate`, which fits a temperature, and the fast and best
    /// presets, which store one their recipes fitted), whose probabilities match how often such answers are right
    /// on held-out images; photos unlike the training images lower the confidence of most answers, which is what
    /// this mark is for.
    public static let unsureBelow: Float = 0.5

    /// Whether a prediction with these class probabilities should be reported as unsure.
    public static func isUnsure(_ probabilities: UnsafeBufferPointer<Float>) -> Bool {
        !(probabilities.max().map { $0 >= unsureBelow } ?? false)
    }

    /// Test-time flip averaging of one image's prediction (`probabilities`) and its mirror image's
    /// (`mirrored`): the mean of the two, and whether to report it as unsure. It is unsure when the mean is
    /// (`isUnsure`) and also when the image and its mirror name different classes: a garment's class does not
    /// depend on which way it faces, and the networks are trained on mirrored images, so an answer that
    /// changes with the mirror comes from the picture's accidents rather than from the garment.
    /// `label` is the mean's class (the first on ties).
    public static func flipAveraged(_ probabilities: [Float], mirrored: [Float])
        -> (probabilities: [Float], label: Int, mirrorAgrees: Bool, unsure: Bool) {
        precondition(!probabilities.isEmpty && probabilities.count == mirrored.count,
                     "flipAveraged: \(probabilities.count) and \(mirrored.count) classes")
        let mean = zip(probabilities, mirrored).map { ($0 + $1) / 2 }
        let agrees = argmax(probabilities, probabilities.count) == argmax(mirrored, mirrored.count)
        return (mean, argmax(mean, mean.count), agrees, mean.withUnsafeBufferPointer { isUnsure($0, mirrorAgrees: agrees) })
    }

    /// An image (rows of `width` pixels) mirrored left to right: flip averaging's second input.
    public static func mirrored(_ pixels: UnsafeBufferPointer<UInt8>, width: Int) -> [UInt8] {
        precondition(width > 0 && pixels.count % width == 0, "mirrored: \(pixels.count) pixels are not rows of \(width)")
        return (0..<pixels.count).map { pixels[($0 / width) * width + width - 1 - $0 % width] }
    }

    /// The flip-averaged rule on already averaged probabilities: unsure when they are, or when the mirror
    /// image named another class.
    public static func isUnsure(_ probabilities: UnsafeBufferPointer<Float>, mirrorAgrees: Bool) -> Bool {
        !mirrorAgrees || isUnsure(probabilities)
    }

    /// The name errors give the built-in model in place of a path.
    public static let builtInPath = "<built-in model>"

    /// One image's class probabilities: `pixels` holds `inputShape.perSample` bytes (0...255).
    public func probabilities(_ pixels: [UInt8]) throws(FCLFError) -> [Float] {
        guard pixels.count == inputShape.perSample else {
            throw .invalidArgument("an image for model \(name) has \(inputShape.perSample) pixels, got \(pixels.count)")
        }
        var probs = [Float](repeating: 0, count: classes)
        try pixels.withUnsafeBufferPointer { (px) throws(FCLFError) in
            try probs.withUnsafeMutableBufferPointer { (p) throws(FCLFError) in
                try predict(px.baseAddress!, count: 1, probabilities: p.baseAddress, labels: nil)
            }
        }
        return probs
    }

    /// Class probabilities for `count` images of `inputShape.perSample` bytes each (0...255, scaled by
    /// 1/255, as in training). Writes `probabilities[count * classes]` and/or `labels[count]` (either may
    /// be nil).
    ///
    /// Throws `.resourceLimit` when scratch memory cannot be had (nothing is written then), and `.numeric`
    /// when an image's probabilities are not finite, which finite but huge weights can cause (the outputs
    /// then hold unspecified values). Every probability returned is finite, each row summing to 1.
    public func predict(_ pixels: UnsafePointer<UInt8>, count: Int, probabilities: UnsafeMutablePointer<Float>?,
                        labels: UnsafeMutablePointer<Int32>?) throws(FCLFError) {
        guard count > 0 else { return }
        // As many images per kernel call as fit this thread's kept scratch (a large model takes fewer than
        // `Classifier.chunk`), so that a batch allocates nothing either; results do not depend on the chunk.
        let perImageFloats = 2 * activationSize + keptSize + workSize
        let chunk = min(count, max(1, min(Classifier.chunk, Classifier.threadScratchLimit / perImageFloats)))
        let floats = chunk * perImageFloats
        // Small requests (single images) reuse this thread's buffer: no allocation, no page faults.
        let reuse = floats <= Classifier.threadScratchLimit
        let memory = reuse ? UnsafeMutableRawPointer(fclf_thread_scratch(Int64(floats))) : malloc(floats * 4)
        guard let memory else {
            throw .resourceLimit("no memory for \(chunk) images' scratch (\(floats * 4) bytes); free memory or predict fewer images per call")
        }
        defer { if !reuse { free(memory) } }
        // A few images start no OpenMP team: its workers, once asleep, take longer to wake than one image
        // takes (74 us p50 on 2 cores), and a static split waits for a busy or slow second core (110 us per
        // image whenever the VM's other core was busy, against 73 alone). They run on the calling thread, and
        // the per-window convolutions and the products with packed weights hand part of each image to a helper
        // thread when that one is awake, never waiting for it (CKernels/assist.c). A call made while another
        // runs stays on its thread alone: concurrent callers would otherwise compete for cores.
        let shared = fclf_shared_enter() > 0
        let serial = shared || count <= 4
        let assist = !shared && count <= 4
        if serial { fclf_serial_begin() }
        if assist { fclf_assist_begin() }
        defer {
            if assist { fclf_assist_end() }
            if serial { fclf_serial_end() }
            fclf_shared_exit()
        }
        let chunks = (count + chunk - 1) / chunk
        var done = 0
        // Two or more chunks on a team: each thread takes whole chunks through every step with its kernels
        // serial, so no barrier follows each step and a chunk's activations stay in its core's L2. Each
        // thread works in its own kept scratch, and the results are those of one thread. From the first
        // chunk that failed (if any) the loop below runs again in order, so the error thrown is the first
        // in image order, as on one thread, and a worker that could not get scratch memory costs nothing.
        if !serial && reuse && chunks >= 2 && fclf_get_max_threads() >= 2 {
            var job = ChunkJob(classifier: Unmanaged.passUnretained(self), pixels: pixels, count: count, chunk: chunk,
                               floats: floats, probabilities: probabilities, labels: labels)
            let failed = withUnsafeMutablePointer(to: &job) { job in
                fclf_parallel_tasks(Int64(chunks), { context, task in
                    context!.assumingMemoryBound(to: ChunkJob.self).pointee.run(Int(task)) ? 0 : 1
                }, job)
            }
            if failed < 0 { return }
            done = Int(failed) * chunk
        }
        while done < count {
            let n = min(chunk, count - done)
            try predictChunk(pixels, from: done, n: n, scratch: memory.assumingMemoryBound(to: Float.self),
                             probabilities: probabilities, labels: labels)
            done += n
        }
    }

    /// Images [from, from + n) through every step in `scratch` (`n * (2 * activationSize + keptSize + workSize)`
    /// floats).
    fileprivate func predictChunk(_ pixels: UnsafePointer<UInt8>, from done: Int, n: Int, scratch: UnsafeMutablePointer<Float>,
                                  probabilities: UnsafeMutablePointer<Float>?, labels: UnsafeMutablePointer<Int32>?) throws(FCLFError) {
        let perImage = inputShape.perSample
        var a = scratch, b = scratch + n * activationSize
        let kept = scratch + 2 * n * activationSize, work = kept + n * keptSize
        scalePixels(pixels + done * perImage, a, count: n * perImage)
        for (step, layer) in zip(network.plan.steps, network.steps) {
            let out = layer.infer(a, step.input, n: n, y: b, work: layer.keepsWork ? kept : work)
            if out == b { swap(&a, &b) }
        }
        let probs = probabilities.map { $0 + done * classes } ?? work
        fclf_softmax_forward(probs, a, Int64(n), Int64(classes))
        // Softmax of finite logits is finite; an infinite logit (weights overflowing float) gives NaN.
        for j in 0..<n * classes where !probs[j].isFinite {
            throw .numeric("image \(done + j / classes): the model's output is not finite (\(a[j])); its weights overflow float32, retrain it (a lower --lr) or use another model")
        }
        if let labels {
            for j in 0..<n { labels[done + j] = Int32(argmax(probs + j * classes, classes)) }
        }
    }
}

/// One chunk of a batch per task of `fclf_parallel_tasks`, on the stack of the `predict` call it serves.
private struct ChunkJob {
    let classifier: Unmanaged<Classifier>
    let pixels: UnsafePointer<UInt8>
    let count, chunk, floats: Int
    let probabilities: UnsafeMutablePointer<Float>?
    let labels: UnsafeMutablePointer<Int32>?

    /// Chunk `task` in the calling worker's own kept scratch (at most `Classifier.threadScratchLimit` floats,
    /// allocated on its first call only); false when it failed.
    func run(_ task: Int) -> Bool {
        guard let scratch = fclf_thread_scratch(Int64(floats)) else { return false }
        let from = task * chunk
        do throws(FCLFError) {
            try classifier.takeUnretainedValue().predictChunk(pixels, from: from, n: min(chunk, count - from), scratch: scratch,
                                                             probabilities: probabilities, labels: labels)
            return true
        } catch {
            return false
        }
    }
}
