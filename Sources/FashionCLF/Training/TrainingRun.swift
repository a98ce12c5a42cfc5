#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One training run of a recipe: the epoch loop (batches, validation, keeping the best epoch), checkpoints
/// and resuming, stopping on request after a batch, and refusing to go on with a loss that is no longer a
/// number. `fclf-train` is this plus argument handling and printing.
///
/// With a checkpoint folder, a checkpoint (`Checkpoint`) is written atomically at the end of every epoch and,
/// with `checkpointEvery` N > 0, after every N-th optimiser step inside an epoch; the newest two are kept. A
/// run resumed from any of them (`resume()`) ends with the same bits as a run never stopped (same seed; any
/// thread count, as every run).
public final class TrainingRun {
    /// What the run reports as it goes, for printing. `.batch` comes after every batch and must not allocate
    /// (a training step allocates nothing in steady state).
    public enum Event {
        /// `done` of `total` images of epoch `epoch` trained, their mean loss, and the epoch's seconds so far.
        case batch(epoch: Int, done: Int, total: Int, meanLoss: Double, seconds: Double)
        /// An epoch ended: its record, whether it is the best so far (kept), and the checkpoint written.
        case epoch(EpochRecord, best: Bool, checkpoint: String?)
        /// A checkpoint written inside an epoch (`checkpointEvery`).
        case checkpoint(String)
        /// Something the user should know that does not stop the run (a damaged checkpoint skipped, ...).
        case warning(String)
    }

    public enum Outcome: Equatable, Sendable {
        case finished
        /// Stopped on request after batch `batch` of epoch `epoch` (batch = batches per epoch: after the epoch),
        /// with the checkpoint written there, if the run has a checkpoint folder.
        case interrupted(epoch: Int, batch: Int, checkpoint: String?)
    }

    /// The trained model, after keeping the best epoch and calibrating as the recipe asks.
    public struct Result {
        public var model: Sequential
        public var history: [EpochRecord]
        public var trainSeconds: Double
        public var imagesPerSecond: Double
        /// The best validation epoch, when the recipe keeps it.
        public var kept: Checkpoint.Best?
        /// The weight average, when the recipe averages.
        public var averaged: Averaged?
        public var calibration: Calibration.Result?
    }

    /// A run's weight average (`--average-epochs`): over how many epochs and steps, the seconds its BatchNorm
    /// pass took (in `trainSeconds`), and its validation figures, beside the last epoch's in the history.
    public struct Averaged: Sendable {
        public var epochs: Int, steps: Int
        public var batchNormSeconds: Double
        public var valLoss: Double?, valAccuracy: Double?

        public init(epochs: Int, steps: Int, batchNormSeconds: Double, valLoss: Double?, valAccuracy: Double?) {
            self.epochs = epochs; self.steps = steps; self.batchNormSeconds = batchNormSeconds
            self.valLoss = valLoss; self.valAccuracy = valAccuracy
        }
    }

    public let recipe: Recipe
    public let fit: LabeledImages, validation: LabeledImages?
    public let trainer: Trainer
    public var model: Sequential { trainer.model }
    /// The model, recipe, seed and data, as checkpoints record them.
    public let identity: RunIdentity
    public let checkpointDirectory: String?
    /// A checkpoint after every this many optimiser steps (0: at the ends of epochs only).
    public let checkpointEvery: Int
    public let batchesPerEpoch: Int

    public var onEvent: ((Event) -> Void)?
    /// Asked after every batch; true stops the run there (after a checkpoint, with a checkpoint folder).
    public var interrupted: () -> Bool = { false }

    /// Where the run is: epoch (from 1) and batches of it done (`batchesPerEpoch`: the epoch is complete).
    public private(set) var epoch = 1, batch = 0
    public private(set) var history: [EpochRecord] = []
    /// Training seconds of the completed epochs, and of the current one so far.
    public private(set) var trainSeconds = 0.0, epochSeconds = 0.0
    public private(set) var best: Checkpoint.Best?
    /// The newest checkpoint written or resumed from.
    public private(set) var lastCheckpoint: String?
    private var resumed = false

    /// A run of `recipe` on `fit` (validated on `validation` after each epoch), from the recipe's seed.
    public init(recipe: Recipe, fit: LabeledImages, validation: LabeledImages?, checkpointDirectory: String? = nil,
                checkpointEvery: Int = 0) throws(FCLFError) {
        precondition(fit.count > 0 && checkpointEvery >= 0)
        if let t = recipe.temperature {
            guard Calibration.fittedRange.contains(Double(t)) else { throw .invalidArgument("Recipe.temperature \(t) is outside \(Calibration.fittedRangeText), the range calibration fits in") }
            guard !recipe.calibrate else { throw .invalidArgument("the recipe both fits a temperature (calibrate) and gives one (temperature); keep one of them") }
        }
        let averaging = recipe.config.averageEpochs
        guard averaging >= 0 && averaging <= recipe.config.epochs else {
            throw .invalidArgument("TrainConfig.averageEpochs \(averaging) is outside 0...\(recipe.config.epochs), the run's epochs")
        }
        if let rate = recipe.config.averageRate {
            guard rate > 0 && rate <= 1, averaging > 0 && averaging < recipe.config.epochs else {
                throw .invalidArgument("TrainConfig.averageRate \(rate) needs a rate in (0, 1] and 1...\(recipe.config.epochs - 1) averaged epochs (got \(averaging))")
            }
            guard recipe.config.warmupEpochs < Double(recipe.config.epochs - averaging) else {
                throw .invalidArgument("TrainConfig.warmupEpochs \(recipe.config.warmupEpochs) reaches into the \(averaging) averaged epochs held at a constant rate; warm up over fewer than \(recipe.config.epochs - averaging) epochs")
            }
        }
        guard averaging == 0 || !recipe.keepBest else {
            throw .invalidArgument("the recipe both keeps its best epoch and averages the last \(averaging) epochs' weights; keep one of them")
        }
        self.recipe = recipe
        self.fit = fit
        self.validation = validation
        trainer = Trainer(model: recipe.model.build(seed: recipe.config.seed), config: recipe.config)
        identity = RunIdentity(recipe: recipe, fit: fit, validation: validation)
        self.checkpointDirectory = checkpointDirectory.map { $0.count > 1 && $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.checkpointEvery = checkpointEvery
        batchesPerEpoch = trainer.stepsPerEpoch(fit.count)
    }

    // MARK: - Training

    /// Trains from where the run is (the start, or the checkpoint `resume` loaded) to the last epoch, or until
    /// `interrupted` says stop. Throws when the loss becomes NaN or infinite (writing no checkpoint of that
    /// state), and when a fresh run's checkpoint folder already holds checkpoints.
    public func train() throws(FCLFError) -> Outcome {
        let epochs = recipe.config.epochs
        if let dir = checkpointDirectory, !resumed {
            try prepareDirectory(dir)
            if let newest = try checkpointFiles(dir).last {
                throw .invalidArgument("\(dir) already holds checkpoints (\(newest.name)); continue that run with --resume, or remove them or give another --checkpoint-dir")
            }
        }
        while true {
            if batch == batchesPerEpoch {
                guard epoch < epochs else { break }
                epoch += 1
                batch = 0
            }
            if batch == 0 {
                trainer.beginEpoch(fit)
                epochSeconds = 0
            }
            var start = monotonicSeconds()
            while batch < batchesPerEpoch {
                let loss = trainer.trainNextBatch(fit).loss
                batch += 1
                let now = monotonicSeconds()
                epochSeconds += now - start
                start = now
                guard loss.isFinite else { throw diverged("loss became \(loss.isNaN ? "nan" : "infinite")") }
                onEvent?(.batch(epoch: epoch, done: trainer.epochDone, total: fit.count,
                                meanLoss: trainer.epochLossSum / Double(trainer.epochDone), seconds: epochSeconds))
                guard batch < batchesPerEpoch else { break }  // the epoch's end follows, with its checkpoint
                if interrupted() {
                    return .interrupted(epoch: epoch, batch: batch, checkpoint: try writeCheckpoint())
                }
                if checkpointEvery > 0 && trainer.steps % checkpointEvery == 0, let path = try writeCheckpoint() {
                    onEvent?(.checkpoint(path))
                    start = monotonicSeconds()
                }
            }
            try endEpoch()
            if interrupted() { return .interrupted(epoch: epoch, batch: batch, checkpoint: lastCheckpoint) }
        }
        return .finished
    }

    /// Validation, the epoch's record, the best epoch, and the epoch's checkpoint.
    private func endEpoch() throws(FCLFError) {
        trainSeconds += epochSeconds
        let (loss, accuracy) = trainer.epochResult
        let v = validation.map { trainer.evaluate($0) }
        let record = EpochRecord(epoch: epoch, trainLoss: loss, trainAccuracy: accuracy, valLoss: v?.loss,
                                 valAccuracy: v?.accuracy, seconds: epochSeconds,
                                 imagesPerSecond: Double(fit.count) / max(epochSeconds, 1e-9))
        history.append(record)
        var isBest = false
        if recipe.keepBest, let v, best.map({ v.accuracy > $0.accuracy || (v.accuracy == $0.accuracy && v.loss < $0.loss) }) ?? true {
            best = Checkpoint.Best(epoch: epoch, accuracy: v.accuracy, loss: v.loss, stored: model.snapshot())
            isBest = true
        }
        epochSeconds = 0
        let path = try writeCheckpoint()
        onEvent?(.epoch(record, best: isBest, checkpoint: path))
    }

    /// The error for a diverged run, naming where it happened and the last good checkpoint.
    private func diverged(_ what: String) -> FCLFError {
        let kept: String
        if let lastCheckpoint {
            kept = "the last good checkpoint is \(lastCheckpoint)"
        } else if checkpointDirectory != nil {
            kept = "no checkpoint was written before it"
        } else {
            kept = "no checkpoint was kept (give --checkpoint-dir DIR to keep them)"
        }
        return .invalidArgument("\(what) at epoch \(epoch), batch \(batch); \(kept); lower --lr")
    }

    /// Finishes the run: the best epoch's values put back when the recipe keeps it, or the weight average with
    /// its BatchNorm statistics recomputed (and validated) when it averages; then a temperature fitted on the
    /// validation split when it calibrates, or the recipe's given one (`test` only for the calibration error
    /// reported before and after). Call it once: it leaves the run's model as the result's.
    public func finish(test: LabeledImages) throws(FCLFError) -> Result {
        var net = model
        if let best { net.restore(best.stored) }
        var averaged: Averaged?
        if let average = trainer.average {
            guard trainer.steps == recipe.config.epochs * batchesPerEpoch, average.count > 0 else {
                throw .invalidArgument("the run stopped at epoch \(epoch), batch \(batch), before the end of its averaged epochs; resume it to the end first")
            }
            let start = monotonicSeconds()
            average.apply()
            trainer.recomputeBatchNormStatistics(fit)
            let seconds = monotonicSeconds() - start
            let v = validation.map { trainer.evaluate($0) }
            averaged = Averaged(epochs: recipe.config.averageEpochs, steps: average.count, batchNormSeconds: seconds,
                                valLoss: v?.loss, valAccuracy: v?.accuracy)
        }
        var calibration: Calibration.Result?
        var given: (temperature: Float, fitted: Bool)?
        if recipe.calibrate, let validation {
            let v = trainer.logits(validation)
            given = (Calibration.fitTemperature(logits: v.logits, labels: v.labels, classes: net.outputSize), true)
        } else if let temperature = recipe.temperature {
            given = (temperature, false)
        }
        if let (temperature, fitted) = given {
            let t = trainer.logits(test)
            let before = Calibration.expectedCalibrationError(logits: t.logits, labels: t.labels, classes: net.outputSize)
            let after = Calibration.expectedCalibrationError(logits: t.logits, labels: t.labels, classes: net.outputSize,
                                                             temperature: Double(temperature))
            calibration = Calibration.Result(temperature: temperature, testECEBefore: before, testECEAfter: after, fitted: fitted)
            net = try net.calibrated(temperature: temperature)
        }
        let images = Double(fit.count * history.count)
        let seconds = trainSeconds + (averaged?.batchNormSeconds ?? 0)
        return Result(model: net, history: history, trainSeconds: seconds, imagesPerSecond: images / max(seconds, 1e-9),
                      kept: best, averaged: averaged, calibration: calibration)
    }

    // MARK: - Checkpoints

    /// The run's state now.
    public var checkpoint: Checkpoint {
        Checkpoint(identity: identity, epoch: epoch, batch: batch, batchesPerEpoch: batchesPerEpoch, trainSeconds: trainSeconds,
                   epochSeconds: epochSeconds, trainer: trainer.state, history: history, best: best)
    }

    /// Writes the run's state to the checkpoint folder (if any) and keeps the newest two; returns the path.
    /// Refuses a state holding a value that is not a number: the last good checkpoint stays the newest.
    @discardableResult
    public func writeCheckpoint() throws(FCLFError) -> String? {
        guard let dir = checkpointDirectory else { return nil }
        for p in model.stored {
            for i in 0..<p.count where !p.value[i].isFinite { throw diverged("a weight became \(p.value[i].isNaN ? "nan" : "infinite")") }
        }
        let c = checkpoint
        let path = dir + "/" + c.fileName
        try FileIO.writeAtomically(c.encode(), to: path)
        lastCheckpoint = path
        let files = try checkpointFiles(dir)
        for old in files.dropLast(2) where dir + "/" + old.name != path { unlink(dir + "/" + old.name) }
        return path
    }

    /// Continues from the newest valid checkpoint in the checkpoint folder; returns its path. A damaged one
    /// (checksum, truncation) is skipped with a warning and removed, and the one before it is used. Throws when
    /// there is none, or when the newest valid one belongs to another run (model, recipe, seed or data).
    @discardableResult
    public func resume() throws(FCLFError) -> String {
        guard let dir = checkpointDirectory else { throw .invalidArgument("--resume needs --checkpoint-dir DIR") }
        try prepareDirectory(dir)
        let files = try checkpointFiles(dir)
        guard !files.isEmpty else {
            throw .invalidArgument("--resume: \(dir) holds no checkpoint (ckpt-*.\(Checkpoint.fileExtension)); run without --resume to start")
        }
        var damaged: [(path: String, reason: String)] = []
        for file in files.reversed() {
            let path = dir + "/" + file.name
            let c: Checkpoint
            do {
                c = try Checkpoint.decode(FileIO.read(path, limit: 1 << 31), path: path)
            } catch {
                if case let .io(_, reason) = error { damaged.append((path, reason)) } else { damaged.append((path, "\(error)")) }
                continue
            }
            let differences = c.identity.differences(from: identity)
            guard differences.isEmpty else {
                throw .invalidArgument("\(path) belongs to another run: \(differences.joined(separator: "; ")); resume with that run's settings, or give another --checkpoint-dir")
            }
            guard c.batchesPerEpoch == batchesPerEpoch, c.epoch <= recipe.config.epochs,
                  c.history.count == c.epoch - (c.batch == c.batchesPerEpoch ? 0 : 1) else {
                throw .invalidArgument("\(path): position epoch \(c.epoch), batch \(c.batch) of \(c.batchesPerEpoch) does not fit this run's \(recipe.config.epochs) epochs of \(batchesPerEpoch) batches")
            }
            do {
                try trainer.restore(c.trainer)
                if let b = c.best, b.stored.count != model.stored.count || zip(b.stored, model.stored).contains(where: { $0.count != $1.count }) {
                    throw FCLFError.invalidArgument("the kept best epoch's values do not fit this model")
                }
            } catch {
                throw .invalidArgument("\(path): \(error); resume with that run's settings, or give another --checkpoint-dir")
            }
            epoch = c.epoch
            batch = c.batch
            trainSeconds = c.trainSeconds
            epochSeconds = c.epochSeconds
            history = c.history
            best = c.best
            lastCheckpoint = path
            resumed = true
            for d in damaged {
                onEvent?(.warning("\(d.path) skipped and removed: \(d.reason); resuming from the one before it, \(path)"))
                unlink(d.path)
            }
            return path
        }
        throw .invalidArgument("--resume: no valid checkpoint in \(dir): " + damaged.map { "\($0.path): \($0.reason)" }.joined(separator: "; "))
    }

    /// The checkpoint files in `dir`, oldest first (by epoch, then batch).
    func checkpointFiles(_ dir: String) throws(FCLFError) -> [(name: String, epoch: Int, batch: Int)] {
        try TrainingRun.directoryEntries(dir).compactMap { name in
            Checkpoint.position(ofFileName: name).map { (name, $0.epoch, $0.batch) }
        }.sorted { ($0.epoch, $0.batch) < ($1.epoch, $1.batch) }
    }

    /// Creates `dir` (and its parents) if needed, and removes the temporary files of checkpoint writes that a
    /// killed process (SIGKILL, power loss) left behind: `ckpt-*.fclfckpt.tmp.PID` of a PID no longer running.
    func prepareDirectory(_ dir: String) throws(FCLFError) {
        try TrainingRun.makeDirectories(dir)
        for name in try TrainingRun.directoryEntries(dir) {
            guard let range = name.firstRange(of: "." + Checkpoint.fileExtension + ".tmp."),
                  Checkpoint.position(ofFileName: String(name[..<range.lowerBound]) + "." + Checkpoint.fileExtension) != nil,
                  let pid = Int32(name[range.upperBound...]), pid > 0, pid != getpid(),
                  kill(pid, 0) != 0 && errno == ESRCH else { continue }
            if unlink(dir + "/" + name) == 0 {
                onEvent?(.warning("removed \(dir)/\(name), left by process \(pid) that was killed while writing a checkpoint"))
            }
        }
    }

    static func directoryEntries(_ dir: String) throws(FCLFError) -> [String] {
        guard let d = opendir(dir) else {
            throw .io(path: dir, reason: "cannot read the checkpoint folder: \(String(cString: strerror(errno)))")
        }
        defer { closedir(d) }
        var names: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func makeDirectories(_ dir: String) throws(FCLFError) {
        var path = dir.hasPrefix("/") ? "/" : ""
        for part in dir.split(separator: "/") {
            path += part
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw .io(path: dir, reason: "cannot create the checkpoint folder: \(String(cString: strerror(errno)))")
            }
            path += "/"
        }
        var st = stat()
        guard stat(dir, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw .io(path: dir, reason: "not a folder; give --checkpoint-dir a folder")
        }
    }
}
