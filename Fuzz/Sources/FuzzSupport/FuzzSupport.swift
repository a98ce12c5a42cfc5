// What the harnesses share: the entry points they drive (the same calls the regression tests make in
// Tests/FashionCLFTests/FuzzRegressionTests.swift), scratch files for the readers that take a path, and the
// seed corpora, written by the project's own code when FCLF_FUZZ_SEEDS names a folder (scripts/fuzz.sh).
import CFuzzSupport
import FashionCLF
import FashionCLFPhotos

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Entry points

/// The model loader as fclf-classify and fclf_model_load use it: decode, compile the inference plan and copy
/// the weights (Classifier), then classify one blank image when the network is small enough to run quickly.
public func fuzzModel(_ bytes: [UInt8]) {
    guard let model = try? ModelFile.decode(bytes, path: "fuzz.fclf") else { return }
    let classifier = Classifier(model)
    guard smallEnoughToRun(classifier.plan) else { return }
    let pixels = [UInt8](repeating: 0, count: classifier.inputShape.perSample)
    var probabilities = [Float](repeating: 0, count: classifier.classes)
    var label: Int32 = -1
    // A non-finite output is refused (.numeric), never returned: that refusal is a clean outcome.
    guard (try? classifier.predict(pixels, count: 1, probabilities: &probabilities, labels: &label)) != nil else { return }
    precondition(probabilities.allSatisfy(\.isFinite), "non-finite probabilities returned")
    precondition(label >= 0 && Int(label) < classifier.classes, "predicted label \(label) of \(classifier.classes)")
}

/// At most ~16M multiply-adds and 1M activation values for one image: a fuzzed architecture may be valid and
/// still far too slow to run once per input (a 4096x4096 input is legal).
func smallEnoughToRun(_ plan: Plan) -> Bool {
    var work = 0.0, values = Double(plan.inputShape.perSample)  // Double: the products may exceed Int
    for step in plan.steps {
        values += Double(step.output.perSample)
        switch step.layer {
        case .conv2d(let ic, let oc, let k, _, _): work += Double(step.input.h * step.input.w) * Double(ic * oc * k * k)
        case .dense(let input, let output, _): work += Double(input) * Double(output)
        default: work += Double(step.input.perSample)
        }
    }
    return work <= 0x1p24 && values <= 0x1p20
}

/// The IDX reader through its public entry point, IDX.load(images:labels:), which reads two files. The
/// input is split in two: its first two bytes (little-endian) give the images file's length n, the next n
/// bytes are the images file (gzip or plain), the rest the labels file.
public func fuzzIDX(_ bytes: [UInt8]) {
    let (images, labels) = splitIDXInput(bytes)
    let imagesPath = scratchFile("images"), labelsPath = scratchFile("labels")
    writeFile(images, to: imagesPath)
    writeFile(labels, to: labelsPath)
    guard let data = try? IDX.load(images: imagesPath, labels: labelsPath) else { return }
    let pixels = data.withPixels { $0.count }
    precondition(pixels == data.count * data.rows * data.cols && (0..<data.count).allSatisfy { data.label($0) <= 9 })
}

public func splitIDXInput(_ bytes: [UInt8]) -> (images: [UInt8], labels: [UInt8]) {
    guard bytes.count >= 2 else { return ([], []) }
    let n = min(Int(bytes[0]) | Int(bytes[1]) << 8, bytes.count - 2)
    return (Array(bytes[2..<2 + n]), Array(bytes[(2 + n)...]))
}

/// A photo as fclf-classify and fclf_predict_image_file take it: Photo.load (JPEG or PNG, default pixel
/// limit), then both preprocessings to the 28x28 input.
public func fuzzPhoto(_ bytes: [UInt8]) {
    let path = scratchFile("photo")
    writeFile(bytes, to: path)
    guard let photo = try? Photo.load(path) else { return }
    precondition(photo.rgba.count == photo.width * photo.height * 4)
    for method in Preprocessing.allCases {
        let prepared = Preprocessor.prepare(photo, method)
        precondition(prepared.pixels.count == Preprocessor.side * Preprocessor.side)
    }
}

/// The training checkpoint decoder as TrainingRun.resume uses it (Checkpoint.decode). A damaged file must be
/// refused with .io naming the file on one line; an accepted one must write back (encode) to bytes that read
/// again to the same values: what the decoder lets through is a checkpoint the project can handle.
public func fuzzCheckpoint(_ bytes: [UInt8]) {
    let path = "fuzz.fclfckpt"
    let checkpoint: Checkpoint
    do {
        checkpoint = try Checkpoint.decode(bytes, path: path)
    } catch {
        guard case .io(let named, let reason) = error, named == path, !reason.contains("\n") else {
            preconditionFailure("unclear refusal: \(error)")
        }
        return
    }
    let encoded = checkpoint.encode()
    guard var again = try? Checkpoint.decode(encoded, path: path) else {
        preconditionFailure("an accepted checkpoint does not read back once written")
    }
    // The identity is kept as parsed "key=value" lines, so its text may differ from the input's (lines without
    // '=', a trailing CR); every other field must come back bit for bit.
    again.identity = checkpoint.identity
    precondition(again.encode() == encoded, "an accepted checkpoint reads back with other values")
}

// MARK: - Driver

/// Runs libFuzzer on the command line's arguments with `testOneInput` as the target. Each harness's main.swift
/// calls it: SwiftPM links an executable target's own main() (it renames the entry point and defines main to
/// it), so libFuzzer's main() is never used and LLVMFuzzerTestOneInput would not be called.
public func runFuzzer(_ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32 {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    return LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
}

// MARK: - Files

/// A file of this process's own, in /dev/shm when there is one (the readers under test take a path).
public func scratchFile(_ name: String) -> String {
    let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
    return "\(dir)/fclf-fuzz-\(getpid())-\(name)"
}

public func writeFile(_ bytes: [UInt8], to path: String) {
    guard let f = fopen(path, "wb") else { fatalError("cannot write \(path)") }
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    fclose(f)
}

public func readFile(_ path: String) -> [UInt8]? { try? FileIO.read(path, limit: 1 << 26) }

/// A CRC-fixing view: the bytes with their last four replaced by the CRC-32 of the rest (the model file's and
/// the checkpoint's trailer).
public func fixCRC(_ bytes: UnsafeMutablePointer<UInt8>, _ size: Int) {
    guard size >= 4 else { return }
    let crc = fclf_fuzz_crc32(bytes, size - 4)
    for k in 0..<4 { bytes[size - 4 + k] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(k))) }
}

// MARK: - Seeds

/// The folder FCLF_FUZZ_SEEDS names: the harness then writes its seed corpus there and exits.
public func seedDirectory() -> String? {
    guard let dir = getenv("FCLF_FUZZ_SEEDS") else { return nil }
    let path = String(cString: dir)
    mkdir(path, 0o755)
    return path
}

/// Small valid model files written by ModelFile.encode: every layer kind, 'same' and 'valid' convolutions,
/// BatchNorm on planes and on features, a convolution followed by pooling (fused at inference).
public func writeModelSeeds(to dir: String) {
    func model(_ name: String, _ input: Shape, _ specs: [LayerSpec], classes: Int) {
        var rng = SplitMix64(seed: 1)
        let network = try! Sequential(name: name, inputShape: input, specs: specs, rng: &rng)
        writeFile(try! ModelFile.encode(network, classes: classes), to: "\(dir)/\(name).fclf")
    }
    model("mlp", Shape(n: 1, c: 1, h: 4, w: 4),
          [.flatten, .dense(inputSize: 16, outputSize: 8, activation: .relu), .dropout(rate: 0.25),
           .dense(inputSize: 8, outputSize: 3, activation: .none), .temperature(1.5)], classes: 3)
    model("cnn", Shape(n: 1, c: 1, h: 6, w: 6),
          [.conv2d(inChannels: 1, outChannels: 2, kernelSize: 3, padding: .valid, activation: .relu), .maxPool2x2,
           .flatten, .dense(inputSize: 8, outputSize: 2, activation: .none)], classes: 2)
    model("cnn-bn", Shape(n: 1, c: 2, h: 5, w: 5),
          [.conv2d(inChannels: 2, outChannels: 3, kernelSize: 3, padding: .same, activation: .none), .batchNorm(channels: 3),
           .relu, .maxPool2x2, .globalAvgPool, .dense(inputSize: 3, outputSize: 2, activation: .none)], classes: 2)
    model("mlp-bn", Shape(n: 1, c: 1, h: 3, w: 3),
          [.flatten, .dense(inputSize: 9, outputSize: 4, activation: .none), .batchNorm(channels: 4), .relu,
           .dropout(rate: 0.5), .dense(inputSize: 4, outputSize: 2, activation: .none)], classes: 2)
    model("conv-chain", Shape(n: 1, c: 1, h: 8, w: 8),
          [.conv2d(inChannels: 1, outChannels: 2, kernelSize: 1, padding: .valid, activation: .none), .relu,
           .conv2d(inChannels: 2, outChannels: 2, kernelSize: 5, padding: .same, activation: .relu), .maxPool2x2, .maxPool2x2,
           .batchNorm(channels: 2), .flatten, .dense(inputSize: 8, outputSize: 2, activation: .relu)], classes: 2)
    model("res", Shape(n: 1, c: 1, h: 4, w: 4),
          [.conv2d(inChannels: 1, outChannels: 2, kernelSize: 3, padding: .same, activation: .relu), .shortcut,
           .conv2d(inChannels: 2, outChannels: 2, kernelSize: 3, padding: .same, activation: .none), .batchNorm(channels: 2),
           .addShortcut, .relu, .globalAvgPool, .dense(inputSize: 2, outputSize: 2, activation: .none)], classes: 2)
}

/// IDX inputs in fuzzIDX's format: gzip and plain files, 28x28 images with their labels.
public func writeIDXSeeds(to dir: String) {
    func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
    func gzip(_ bytes: [UInt8]) -> [UInt8] {
        let path = scratchFile("seed.gz")
        precondition(fclf_fuzz_write_gzip(path, bytes, bytes.count) == 0)
        defer { unlink(path) }
        return readFile(path)!
    }
    func seed(_ name: String, _ images: [UInt8], _ labels: [UInt8]) {
        writeFile([UInt8(images.count & 255), UInt8(images.count >> 8)] + images + labels, to: "\(dir)/\(name)")
    }
    let images = { (count: Int) in [0, 0, 8, 3] + be32(count) + be32(28) + be32(28) + (0..<count * 784).map { UInt8($0 * 7 % 256) } }
    let labels = { (values: [UInt8]) in [0, 0, 8, 1] + be32(values.count) + values }
    seed("gzip-2", gzip(images(2)), gzip(labels([3, 9])))
    seed("plain-1", images(1), labels([0]))
    seed("gzip-images-plain-labels", gzip(images(1)), labels([7]))
    seed("empty-sets", gzip(images(0)), gzip(labels([])))
}

/// Photos from examples/photos (FCLF_FUZZ_PHOTOS names the folder) made small and written in each encoding
/// the decoder handles: baseline and progressive JPEG with an EXIF orientation, PNG of every colour type,
/// 8 and 16 bits, interlaced or not.
public func writePhotoSeeds(to dir: String) {
    let folder = getenv("FCLF_FUZZ_PHOTOS").map { String(cString: $0) } ?? "examples/photos"
    var sources: [Photo] = []
    for name in ["0-tshirt-5.jpg", "1-trouser-1.jpg"] {
        if let photo = try? Photo.load("\(folder)/\(name)") { sources.append(photo) }
    }
    if sources.isEmpty {  // a drawn garment when the examples are not there
        var rgba = [UInt8](repeating: 255, count: 32 * 24 * 4)
        for y in 4..<20 { for x in 10..<22 { for c in 0..<3 { rgba[4 * (y * 32 + x) + c] = 40 } } }
        sources.append(Photo(width: 32, height: 24, rgba: rgba))
    }
    for (i, photo) in sources.enumerated() {
        // Nearest-neighbour to at most 24 pixels on the longer side.
        let f = max(1, (max(photo.width, photo.height) + 23) / 24)
        let w = photo.width / f, h = photo.height / f
        var rgba = [UInt8](repeating: 0, count: w * h * 4)
        for y in 0..<h { for x in 0..<w { for c in 0..<4 { rgba[4 * (y * w + x) + c] = photo.rgba[4 * (y * f * photo.width + x * f) + c] } } }
        if i == 1 { for p in stride(from: 3, to: rgba.count, by: 4) { rgba[p] = UInt8(p % 256) } }  // some transparency
        let rgb = (0..<w * h * 3).map { rgba[4 * ($0 / 3) + $0 % 3] }
        _ = fclf_fuzz_write_jpeg("\(dir)/\(i)-baseline-exif6.jpg", rgb, Int32(w), Int32(h), 75, 6, 0)
        _ = fclf_fuzz_write_jpeg("\(dir)/\(i)-progressive.jpg", rgb, Int32(w), Int32(h), 50, 0, 1)
        for (depth, type, interlace) in [(8, 6, 0), (8, 2, 1), (16, 0, 0), (16, 4, 1), (8, 3, 0), (16, 6, 1)] {
            _ = fclf_fuzz_write_png("\(dir)/\(i)-png-\(depth)-\(type)-\(interlace).png", rgba, Int32(w), Int32(h),
                                    Int32(depth), Int32(type), Int32(interlace))
        }
    }
}

/// Checkpoints of real runs (TrainingRun on 64 synthetic 28x28 images, the MLP, 2 epochs of 4 batches, stopped
/// by its `interrupted` hook): Adam inside epoch 1 (no history), SGD with the best epoch kept inside epoch 2
/// (a validated epoch in the history), and a weight-averaging run inside epoch 2 (version 2, an unvalidated
/// epoch). Each is also written with every tensor cut to its first two values: the same fields in ~1 KB
/// instead of 1-2 MB, which the decoder accepts (it checks tensor sizes against no model) and libFuzzer
/// mutates far faster.
public func writeCheckpointSeeds(to dir: String) {
    func images(_ count: Int, seed: UInt64) -> LabeledImages {
        var rng = SplitMix64(seed: seed)
        var pixels = [UInt8](repeating: 0, count: count * 784), labels = [UInt8](repeating: 0, count: count)
        for i in 0..<count {
            let label = Int(rng.next() % 10)
            labels[i] = UInt8(label)
            for j in 0..<784 { pixels[i * 784 + j] = UInt8(rng.next() % 60) }
            for col in 0..<28 { pixels[i * 784 + (2 + 2 * label) * 28 + col] = 255 }  // a band at a class's row
        }
        return LabeledImages(count: count, rows: 28, cols: 28, pixels: pixels, labels: labels)
    }
    let fit = images(64, seed: 1), validation = images(32, seed: 2)
    func seed(_ name: String, optimizer: OptimizerKind, keepBest: Bool, averageEpochs: Int, validated: Bool,
              stopAt stop: (epoch: Int, batch: Int), version: UInt8) {
        var c = TrainConfig()
        (c.epochs, c.batchSize, c.optimizer, c.averageEpochs, c.seed) = (2, 16, optimizer, averageEpochs, 7)
        let recipe = Recipe(model: .mlp, config: c, keepBest: keepBest, calibrate: false)
        let run = try! TrainingRun(recipe: recipe, fit: fit, validation: validated ? validation : nil)
        run.interrupted = { [unowned run] in run.epoch == stop.epoch && run.batch == stop.batch }
        let outcome = try! run.train()
        run.interrupted = { false }
        precondition(outcome == .interrupted(epoch: stop.epoch, batch: stop.batch, checkpoint: nil), "\(name): \(outcome)")
        let checkpoint = run.checkpoint
        var small = checkpoint
        func cut<T>(_ tensors: [[T]]) -> [[T]] { tensors.map { Array($0.prefix(2)) } }
        small.trainer.stored = cut(small.trainer.stored)
        small.trainer.optimizer.buffers = cut(small.trainer.optimizer.buffers)
        small.trainer.average = cut(small.trainer.average)
        if let best = checkpoint.best { small.best?.stored = cut(best.stored) }
        for (file, written) in [(name, checkpoint), (name + "-small", small)] {
            let bytes = written.encode()
            precondition(bytes[8] == version && (try? Checkpoint.decode(bytes, path: file)) != nil, "\(file): version \(bytes[8])")
            writeFile(bytes, to: "\(dir)/\(file).\(Checkpoint.fileExtension)")
        }
    }
    seed("adam-e1-b2", optimizer: .adam, keepBest: false, averageEpochs: 0, validated: true, stopAt: (1, 2), version: 1)
    seed("sgd-keep-best-e2-b1", optimizer: .sgd, keepBest: true, averageEpochs: 0, validated: true, stopAt: (2, 1), version: 1)
    seed("adam-average-e2-b2", optimizer: .adam, keepBest: false, averageEpochs: 1, validated: false, stopAt: (2, 2), version: 2)
}
