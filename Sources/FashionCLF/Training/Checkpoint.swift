import CKernels
import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A training checkpoint (`fclf-train --checkpoint-dir`): everything needed to continue a run so that it ends
/// with the same bits as a run never stopped. Format version 1, or 2 with a weight average, little-endian (u32
/// unless noted; f64 are IEEE doubles' bit patterns):
///
///     offset  size  field
///     0       8     magic "FCLFCKPT"
///     8       4     format version (1, or 2 with the weight average below); readers reject versions they do not know
///     12      4     identity length L, then L bytes of UTF-8 "key=value" lines: the run it belongs to (model,
///                   recipe, seed, data sizes and checksum: `RunIdentity`)
///             4+4+4 epoch (from 1), batches of it done, batches per epoch; batches == batches per epoch: the
///                   epoch is complete (validated, in the history)
///             8 x 2 f64 training seconds of the completed epochs, f64 seconds of the current epoch so far
///             8 x 6 u64 optimiser steps, images augmented, shuffle generator state; the epoch's images done,
///                   correct predictions, f64 summed loss
///             4     order length N, then N i32: the current shuffle order
///             4     dropout layers D, then D u64: their batch counters
///             ...   the model's stored values (tensors: see below)
///             8     u64 optimiser step count (Adam's t), then its buffers (tensors)
///             4     history length H, then per epoch: u32 epoch, f64 train loss, f64 train accuracy, u8 1 when
///                   validated then f64 validation loss and f64 validation accuracy, f64 seconds, f64 images/s
///             1     1 when a best epoch is kept: u32 epoch, f64 validation accuracy, f64 validation loss, its
///                   stored values (tensors)
///             ...   version 2 only, when the recipe averages weights (`--average-epochs`) and has averaged a step:
///                   u64 steps averaged, then the means (tensors of f64); other checkpoints are version 1 as before
///     end-4   4     CRC-32 (zlib's) of every byte before it
///
/// Tensors: u32 count T, then T times (u64 count C, C float32, or C f64 for the weight average).
public struct Checkpoint: Equatable, Sendable {
    public static let magic: [UInt8] = Array("FCLFCKPT".utf8)
    public static let formatVersion: UInt32 = 1
    /// The version of a checkpoint that carries a weight average (`--average-epochs`, once a step is averaged).
    public static let averagedFormatVersion: UInt32 = 2
    /// File names: ckpt-EEEE-BBBBBB.fclfckpt, epoch E after its batch B.
    public static let fileExtension = "fclfckpt"

    /// The best validation epoch kept so far (`--keep-best`) and its stored values.
    public struct Best: Equatable, Sendable {
        public var epoch: Int
        public var accuracy: Double, loss: Double
        public var stored: [[Float]]
    }

    public var identity: RunIdentity
    /// The epoch (from 1) and how many of its `batchesPerEpoch` batches are done.
    public var epoch: Int, batch: Int, batchesPerEpoch: Int
    public var trainSeconds: Double, epochSeconds: Double
    public var trainer: Trainer.State
    public var history: [EpochRecord]
    public var best: Best?

    public var fileName: String { Checkpoint.fileName(epoch: epoch, batch: batch) }

    public static func fileName(epoch: Int, batch: Int) -> String {
        func zeros(_ v: Int, _ width: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, width - s.count)) + s }
        return "ckpt-" + zeros(epoch, 4) + "-" + zeros(batch, 6) + "." + fileExtension
    }

    /// (epoch, batch) of a checkpoint file name, nil for another file.
    public static func position(ofFileName name: String) -> (epoch: Int, batch: Int)? {
        let suffix = "." + fileExtension
        guard name.hasPrefix("ckpt-"), name.hasSuffix(suffix) else { return nil }
        let parts = name.dropFirst(5).dropLast(suffix.count).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let e = Int(parts[0]), let b = Int(parts[1]) else { return nil }
        return (e, b)
    }

    public init(identity: RunIdentity, epoch: Int, batch: Int, batchesPerEpoch: Int, trainSeconds: Double,
                epochSeconds: Double, trainer: Trainer.State, history: [EpochRecord], best: Best?) {
        self.identity = identity; self.epoch = epoch; self.batch = batch; self.batchesPerEpoch = batchesPerEpoch
        self.trainSeconds = trainSeconds; self.epochSeconds = epochSeconds; self.trainer = trainer
        self.history = history; self.best = best
    }

    // MARK: - Encoding

    public func encode() -> [UInt8] {
        var w = ByteWriter()
        w.bytes(Checkpoint.magic)
        let averaged = !trainer.average.isEmpty
        w.u32(Int(averaged ? Checkpoint.averagedFormatVersion : Checkpoint.formatVersion))
        let id = Array(identity.text.utf8)
        w.u32(id.count)
        w.bytes(id)
        w.u32(epoch); w.u32(batch); w.u32(batchesPerEpoch)
        w.f64(trainSeconds); w.f64(epochSeconds)
        let t = trainer
        w.u64(UInt64(t.steps)); w.u64(t.augmented); w.u64(t.shuffleState)
        w.u64(UInt64(t.epochDone)); w.u64(UInt64(t.epochHits)); w.f64(t.epochLossSum)
        w.u32(t.order.count)
        t.order.withUnsafeBufferPointer { w.raw(UnsafeRawBufferPointer($0)) }
        w.u32(t.dropoutBatches.count)
        for b in t.dropoutBatches { w.u64(b) }
        w.tensors(t.stored)
        w.u64(UInt64(t.optimizer.step))
        w.tensors(t.optimizer.buffers)
        w.u32(history.count)
        for r in history {
            w.u32(r.epoch); w.f64(r.trainLoss); w.f64(r.trainAccuracy)
            if let l = r.valLoss, let a = r.valAccuracy { w.bytes([1]); w.f64(l); w.f64(a) } else { w.bytes([0]) }
            w.f64(r.seconds); w.f64(r.imagesPerSecond)
        }
        if let best {
            w.bytes([1]); w.u32(best.epoch); w.f64(best.accuracy); w.f64(best.loss); w.tensors(best.stored)
        } else {
            w.bytes([0])
        }
        if averaged {
            w.u64(UInt64(t.averagedSteps))
            w.tensors(t.average)
        }
        let crc = w.out.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
        w.u32(Int(crc))
        return w.out
    }

    /// Decodes a checkpoint; a damaged file (bad magic, unknown version, checksum mismatch, truncated or
    /// impossible fields) throws `.io(path:reason:)` naming the problem.
    public static func decode(_ b: [UInt8], path: String) throws(FCLFError) -> Checkpoint {
        func fail(_ reason: String) -> FCLFError { .io(path: path, reason: reason) }
        guard b.count >= 16, Array(b[0..<8]) == magic else { throw fail("not an fclf-train checkpoint (bad magic)") }
        let stored = b.count - 4
        var r = ByteReader(bytes: b, end: stored, path: path)
        r.at = 8
        let version = try r.u32()
        guard version == Int(formatVersion) || version == Int(averagedFormatVersion) else {
            throw fail("checkpoint format version \(version), this fclf-train reads versions \(formatVersion) and \(averagedFormatVersion)")
        }
        let crcStored = UInt32(b[stored]) | UInt32(b[stored + 1]) << 8 | UInt32(b[stored + 2]) << 16 | UInt32(b[stored + 3]) << 24
        let crc = b.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32(stored)) }
        guard crc == crcStored else { throw fail("checksum mismatch (the checkpoint is corrupted or truncated)") }

        let idLength = try r.u32()
        let identity = RunIdentity(text: String(decoding: try r.bytes(idLength), as: UTF8.self))
        let epoch = try r.u32(), batch = try r.u32(), perEpoch = try r.u32()
        guard epoch >= 1, perEpoch >= 1, batch >= 0, batch <= perEpoch else {
            throw fail("impossible position: epoch \(epoch), batch \(batch) of \(perEpoch)")
        }
        let trainSeconds = try r.f64(), epochSeconds = try r.f64()
        let steps = try r.u64(), augmented = try r.u64(), shuffle = try r.u64()
        let done = try r.u64(), hits = try r.u64(), lossSum = try r.f64()
        let orderCount = try r.u32()
        try r.check(4 * orderCount)
        var order = [Int32](repeating: 0, count: orderCount)
        order.withUnsafeMutableBytes { r.copy(into: $0) }
        let dropoutCount = try r.u32()
        guard dropoutCount <= 64 else { throw fail("\(dropoutCount) dropout layers") }
        var dropouts: [UInt64] = []
        for _ in 0..<dropoutCount { dropouts.append(try r.u64()) }
        let model = try r.tensors()
        let optimizerStep = try r.u64()
        let buffers = try r.tensors()
        let historyCount = try r.u32()
        guard historyCount <= epoch else { throw fail("\(historyCount) epochs of history at epoch \(epoch)") }
        var history: [EpochRecord] = []
        for _ in 0..<historyCount {
            let e = try r.u32(), loss = try r.f64(), accuracy = try r.f64()
            var valLoss: Double?, valAccuracy: Double?
            if try r.u8() == 1 { valLoss = try r.f64(); valAccuracy = try r.f64() }
            let seconds = try r.f64(), rate = try r.f64()
            history.append(EpochRecord(epoch: e, trainLoss: loss, trainAccuracy: accuracy, valLoss: valLoss,
                                       valAccuracy: valAccuracy, seconds: seconds, imagesPerSecond: rate))
        }
        var best: Best?
        if try r.u8() == 1 {
            let e = try r.u32(), accuracy = try r.f64(), loss = try r.f64()
            best = Best(epoch: e, accuracy: accuracy, loss: loss, stored: try r.tensors())
        }
        var average: [[Double]] = [], averaged: UInt64 = 0
        if version == Int(averagedFormatVersion) {
            averaged = try r.u64()
            average = try r.tensors(of: Double.self)
            guard averaged >= 1, averaged <= steps, !average.isEmpty else {
                throw fail("impossible weight average: \(averaged) steps averaged of \(steps), \(average.count) tensors")
            }
        }
        guard r.at == stored else { throw fail("\(stored - r.at) unexpected bytes after the last field") }
        guard steps <= UInt64(Int.max), done <= UInt64(orderCount), hits <= done, optimizerStep <= UInt64(Int64.max) else {
            throw fail("impossible counters (step \(steps), \(done) images done of \(orderCount), \(hits) correct)")
        }
        let state = Trainer.State(stored: model, optimizer: OptimizerState(step: Int64(optimizerStep), buffers: buffers),
                                  shuffleState: shuffle, order: order, steps: Int(steps), augmented: augmented,
                                  dropoutBatches: dropouts, epochDone: Int(done), epochLossSum: lossSum, epochHits: Int(hits),
                                  average: average, averagedSteps: Int(averaged))
        return Checkpoint(identity: identity, epoch: epoch, batch: batch, batchesPerEpoch: perEpoch, trainSeconds: trainSeconds,
                          epochSeconds: epochSeconds, trainer: state, history: history, best: best)
    }
}

extension EpochRecord: Equatable {
    public static func == (a: EpochRecord, b: EpochRecord) -> Bool {
        a.epoch == b.epoch && a.trainLoss.bitPattern == b.trainLoss.bitPattern
            && a.trainAccuracy.bitPattern == b.trainAccuracy.bitPattern && a.valLoss?.bitPattern == b.valLoss?.bitPattern
            && a.valAccuracy?.bitPattern == b.valAccuracy?.bitPattern && a.seconds.bitPattern == b.seconds.bitPattern
            && a.imagesPerSecond.bitPattern == b.imagesPerSecond.bitPattern
    }
}

/// What a checkpoint belongs to: the model, every part of the recipe that changes the run's arithmetic, the
/// seed, and the data (image counts and a CRC-32 of the training and validation images and labels). A run
/// resumes only from a checkpoint with an equal identity. Kept as ordered "key=value" lines; the keys are
/// fclf-train's flag names where there is one, so a difference reads as the flag to change.
public struct RunIdentity: Equatable, Sendable {
    public var entries: [(key: String, value: String)]

    public static func == (a: RunIdentity, b: RunIdentity) -> Bool { a.text == b.text }

    public init(entries: [(key: String, value: String)]) { self.entries = entries }

    public init(text: String) {
        entries = text.split(separator: "\n").map { line in
            guard let eq = line.firstIndex(of: "=") else { return (String(line), "") }
            return (String(line[..<eq]), String(line[line.index(after: eq)...]))
        }
    }

    public var text: String { entries.map { "\($0.key)=\($0.value)\n" }.joined() }

    public init(recipe: Recipe, fit: LabeledImages, validation: LabeledImages?) {
        let c = recipe.config
        var augment = "none", eraseP: Float = 0
        if var a = c.augment {
            // Erasing as --erase-p sets it is an entry of its own (below), so a difference names that flag.
            var flagged = a
            flagged.setRandomErasing(p: a.erase_p)
            if a.erase_p > 0 && Self.sameBytes(&a, &flagged) {
                eraseP = a.erase_p
                let identity = fclf_augment_identity()
                (a.erase_p, a.erase_area_min, a.erase_area_max, a.erase_aspect_min) =
                    (identity.erase_p, identity.erase_area_min, identity.erase_area_max, identity.erase_aspect_min)
            }
            var photo = Preset.photoAugmentation
            photo.photometric_p = a.photometric_p
            let same = Self.sameBytes(&a, &photo)
            augment = same ? "photo" : "custom(" + Mirror(reflecting: a).children.map { "\($0.label ?? "?") \($0.value)" }.joined(separator: ", ") + ")"
        }
        entries = [
            ("--model", recipe.model.rawValue), ("--epochs", "\(c.epochs)"), ("--batch-size", "\(c.batchSize)"),
            ("--lr", "\(c.learningRate)"), ("--optimizer", c.optimizer.rawValue), ("--momentum", "\(c.momentum)"),
            ("--nesterov", "\(c.nesterov)"), ("--weight-decay", "\(c.weightDecay)"), ("--schedule", c.schedule.rawValue),
            ("--warmup-epochs", "\(c.warmupEpochs)"), ("--label-smoothing", "\(c.labelSmoothing)"), ("--augment", augment),
            ("--photometric-p", "\(c.augment?.photometric_p ?? 1)"),
            ("--val-split", "\(c.valSplit)"), ("--keep-best", "\(recipe.keepBest)"), ("--calibrate", "\(recipe.calibrate)"),
            ("--seed", "\(c.seed)"), ("training images", "\(fit.count)"), ("validation images", "\(validation?.count ?? 0)"),
            ("data checksum", RunIdentity.checksum([fit] + (validation.map { [$0] } ?? []))),
        ]
        // Only when it acts, so checkpoints written before the option existed still match their recipe.
        if c.augment != nil && c.cleanEpochs > 0, let at = entries.firstIndex(where: { $0.key == "--photometric-p" }) {
            entries.insert(("--clean-epochs", "\(c.cleanEpochs)"), at: at + 1)
        }
        if c.averageEpochs > 0, let at = entries.firstIndex(where: { $0.key == "--val-split" }) {
            entries.insert(("--average-epochs", "\(c.averageEpochs)"), at: at)
            if let rate = c.averageRate { entries.insert(("--average-rate", "\(rate)"), at: at + 1) }
        }
        if eraseP > 0, let at = entries.firstIndex(where: { $0.key == "--val-split" }) {
            entries.insert(("--erase-p", "\(eraseP)"), at: at)
        }
        if let t = recipe.temperature, let at = entries.firstIndex(where: { $0.key == "--calibrate" }) {
            entries.insert(("--temperature", "\(t)"), at: at + 1)
        }
    }

    private static func sameBytes(_ a: inout fclf_augment_config, _ b: inout fclf_augment_config) -> Bool {
        withUnsafeBytes(of: &a) { x in withUnsafeBytes(of: &b) { y in x.elementsEqual(y) } }
    }

    /// CRC-32 of the splits' pixels and labels, in hex.
    static func checksum(_ splits: [LabeledImages]) -> String {
        var crc: UInt = 0
        for split in splits {
            crc = split.withPixels { crc32(crc, $0.baseAddress, UInt32($0.count)) }
            let labels = (0..<split.count).map { split.label($0) }
            crc = labels.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, UInt32($0.count)) }
        }
        let hex = String(crc, radix: 16)
        return String(repeating: "0", count: max(0, 8 - hex.count)) + hex
    }

    /// "key A there, B here" for each entry that differs (`self` the checkpoint's, `other` this run's).
    public func differences(from other: RunIdentity) -> [String] {
        var out: [String] = []
        let mine = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        let theirs = Dictionary(other.entries.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
        for (key, value) in other.entries where mine[key] != value {
            out.append("\(key) \(mine[key] ?? "(absent)") there, \(value) here")
        }
        for (key, value) in entries where theirs[key] == nil { out.append("\(key) \(value) there, (absent) here") }
        return out
    }
}

// MARK: - Little-endian bytes

struct ByteWriter {
    var out: [UInt8] = []

    mutating func bytes(_ b: [UInt8]) { out.append(contentsOf: b) }
    mutating func raw(_ b: UnsafeRawBufferPointer) {
        #if _endian(big)
        #error("checkpoints are written little-endian; add byte swapping for a big-endian host")
        #endif
        out.append(contentsOf: b)
    }
    mutating func u32(_ v: Int) { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian) { out.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    mutating func tensors<T: BinaryFloatingPoint>(_ ts: [[T]]) {
        u32(ts.count)
        for t in ts {
            u64(UInt64(t.count))
            t.withUnsafeBufferPointer { raw(UnsafeRawBufferPointer($0)) }
        }
    }
}

struct ByteReader {
    let bytes: [UInt8]
    /// Where the fields end (the checksum follows).
    let end: Int
    let path: String
    var at = 0

    init(bytes: [UInt8], end: Int, path: String) {
        self.bytes = bytes; self.end = end; self.path = path
    }

    func check(_ n: Int) throws(FCLFError) {
        guard n >= 0, n <= end - at else { throw .io(path: path, reason: "truncated at byte \(at) (the checkpoint is damaged)") }
    }

    mutating func bytes(_ n: Int) throws(FCLFError) -> ArraySlice<UInt8> {
        try check(n)
        defer { at += n }
        return bytes[at..<at + n]
    }

    /// Copies `into.count` bytes (checked before with `check`).
    mutating func copy(into dst: UnsafeMutableRawBufferPointer) {
        bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[at..<at + dst.count])) }
        at += dst.count
    }

    mutating func u8() throws(FCLFError) -> UInt8 { try bytes(1).first! }

    mutating func u32() throws(FCLFError) -> Int {
        let b = try bytes(4)
        return b.reversed().reduce(0) { $0 << 8 | Int($1) }
    }

    mutating func u64() throws(FCLFError) -> UInt64 {
        let b = try bytes(8)
        return b.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    mutating func f64() throws(FCLFError) -> Double { Double(bitPattern: try u64()) }

    mutating func tensors<T: BinaryFloatingPoint>(of _: T.Type = Float.self) throws(FCLFError) -> [[T]] {
        let count = try u32()
        guard count <= 4096 else { throw .io(path: path, reason: "\(count) tensors (the checkpoint is damaged)") }
        var out: [[T]] = []
        for _ in 0..<count {
            let n = try u64()
            guard n <= UInt64((end - at) / MemoryLayout<T>.size) else { throw .io(path: path, reason: "truncated tensor of \(n) values (the checkpoint is damaged)") }
            var t = [T](repeating: 0, count: Int(n))
            t.withUnsafeMutableBytes { copy(into: $0) }
            out.append(t)
        }
        return out
    }
}
