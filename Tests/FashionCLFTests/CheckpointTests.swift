// Checkpoints and resume (TrainingRun): a run stopped after an epoch or inside one and resumed ends with the
// model bytes of a run never stopped, for every kind of state (BatchNorm statistics, dropout, photo
// augmentation, AdamW moments, SGD velocity, the kept best epoch, calibration); damaged checkpoints fall back
// with a warning; another run's checkpoint is refused; a diverged loss stops the run and keeps the last good
// checkpoint.
import CKernels
@testable import FashionCLF
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The fast preset's recipe on cnn3-bn (BatchNorm, dropout), photo augmentation, AdamW one-cycle with weight decay, the
/// best epoch kept and a temperature fitted, the last epoch unaugmented: every kind of state a checkpoint holds.
private func fastRecipe(epochs: Int = 3) -> Recipe {
    var r = Preset.fast.recipe
    r.model = .cnn3BN  // recipe 6's network: the fast recipe's own has no dropout
    // recipe 7's split, kept epoch and fitted temperature (recipe 8 trains on everything and stores one)
    (r.config.valSplit, r.keepBest, r.calibrate, r.temperature) = (0.2, true, true, nil)
    r.config.epochs = epochs
    r.config.cleanEpochs = epochs > 1 ? 1 : 0
    r.config.batchSize = 32
    r.config.seed = 11
    return r
}

/// SGD with Nesterov momentum and weight decay, a warm-up and cosine schedule, on the MLP.
private func sgdRecipe() -> Recipe {
    var c = TrainConfig()
    c.epochs = 3
    c.batchSize = 25
    c.optimizer = .sgd
    c.learningRate = 0.05
    c.nesterov = true
    c.weightDecay = 1e-3
    c.schedule = .cosine
    c.warmupEpochs = 0.5
    c.labelSmoothing = 0.05
    c.seed = 5
    return Recipe(model: .mlp, config: c, keepBest: true, calibrate: false)
}

private let fitData = synthetic(count: 320, seed: 21), valData = synthetic(count: 64, seed: 22)

/// Collects a run's warnings.
private final class Warnings {
    var lines: [String] = []
}

private func makeRun(_ recipe: Recipe, dir: String?, every: Int = 0, fit: LabeledImages = fitData,
                     warnings: Warnings? = nil) throws(FCLFError) -> TrainingRun {
    let run = try TrainingRun(recipe: recipe, fit: fit, validation: valData, checkpointDirectory: dir, checkpointEvery: every)
    run.onEvent = { event in if case let .warning(line) = event { warnings?.lines.append(line) } }
    return run
}

/// Model file bytes, history and kept epoch of a finished run.
private func finished(_ run: TrainingRun) throws(FCLFError) -> (bytes: [UInt8], history: [EpochRecord], kept: Int?) {
    let r = try run.finish(test: valData)
    return (try ModelFile.encode(r.model, classes: 10), r.history, r.kept?.epoch)
}

/// Stops `run` when `stop(epoch, batch)` says so (the TrainingRun's `interrupted` hook, as Ctrl-C).
private func train(_ run: TrainingRun, stoppingAt stop: @escaping (Int, Int) -> Bool = { _, _ in false }) throws(FCLFError) -> TrainingRun.Outcome {
    run.interrupted = { [unowned run] in stop(run.epoch, run.batch) }
    // `stop` may hold the run (the tests' closures read its batch count): the hook is dropped when training
    // returns, so the run is not kept alive by a cycle (LeakSanitizer reported it).
    defer { run.interrupted = { false } }
    return try run.train()
}

private func files(_ dir: String) -> [String] { ((try? TrainingRun.directoryEntries(dir)) ?? []).sorted() }

/// Equality of two model files as one Bool: a failed #expect(a == b) on arrays this large makes Swift Testing
/// compute a collection difference that takes minutes.
private func same(_ a: [UInt8], _ b: [UInt8]) -> Bool { a == b }

/// Timings differ between runs; every other field of the history must be equal, bit for bit.
private func sameHistory(_ a: [EpochRecord], _ b: [EpochRecord]) -> Bool {
    a.count == b.count && zip(a, b).allSatisfy { x, y in
        x.epoch == y.epoch && x.trainLoss == y.trainLoss && x.trainAccuracy == y.trainAccuracy
            && x.valLoss == y.valLoss && x.valAccuracy == y.valAccuracy
    }
}

@Suite("Checkpoints and resume")
struct CheckpointTests {
    @Test("the fast recipe (cnn3-bn, photo augmentation then a clean epoch, dropout, AdamW, keep-best, calibration): stopped after epoch 1, inside epoch 2 and resumed twice, the model bytes equal an uninterrupted run's")
    func resumeFastRecipe() throws {
        try withThreads(2) {
            let reference = try makeRun(fastRecipe(), dir: nil)
            #expect(try train(reference) == .finished)
            let expected = try finished(reference)

            let dir = temporaryDirectory()
            let first = try makeRun(fastRecipe(), dir: dir, every: 4)
            let stop1 = try train(first) { e, b in e == 1 && b == first.batchesPerEpoch }
            #expect(stop1 == .interrupted(epoch: 1, batch: 10, checkpoint: dir + "/ckpt-0001-000010.fclfckpt"))

            let second = try makeRun(fastRecipe(), dir: dir, every: 4)
            #expect(try second.resume() == dir + "/ckpt-0001-000010.fclfckpt")
            let stop2 = try train(second) { e, b in e == 2 && b == 7 }
            #expect(stop2 == .interrupted(epoch: 2, batch: 7, checkpoint: dir + "/ckpt-0002-000007.fclfckpt"))
            // Checkpoints at steps 12 and 16 (epoch 2, batches 2 and 6) and the stop's: the newest two are kept.
            #expect(files(dir) == ["ckpt-0002-000006.fclfckpt", "ckpt-0002-000007.fclfckpt"])

            let third = try makeRun(fastRecipe(), dir: dir, every: 4)
            try third.resume()
            #expect(third.epoch == 2 && third.batch == 7 && third.history.count == 1)
            #expect(try train(third) == .finished)
            let resumed = try finished(third)
            #expect(same(resumed.bytes, expected.bytes), "resumed model differs from the uninterrupted run's")
            #expect(sameHistory(resumed.history, expected.history))
            #expect(resumed.kept == expected.kept && expected.kept != nil)
            #expect(files(dir) == ["ckpt-0003-000008.fclfckpt", "ckpt-0003-000010.fclfckpt"])
            #expect(!files(dir).contains { $0.contains(".tmp.") })

            // Resuming the finished run's last checkpoint trains nothing and gives the same model again.
            let fourth = try makeRun(fastRecipe(), dir: dir, every: 4)
            try fourth.resume()
            #expect(try train(fourth) == .finished)
            #expect(same(try finished(fourth).bytes, expected.bytes))
        }
    }

    @Test("SGD (Nesterov, weight decay, warm-up and cosine) on the MLP: resumed from an older checkpoint than the newest, 1 thread, the same bytes")
    func resumeSGD() throws {
        try withThreads(1) {
            let reference = try makeRun(sgdRecipe(), dir: nil)
            _ = try train(reference)
            let expected = try finished(reference)

            let dir = temporaryDirectory()
            let first = try makeRun(sgdRecipe(), dir: dir, every: 5)
            #expect(try train(first) { e, b in e == 2 && b == 8 } == .interrupted(epoch: 2, batch: 8, checkpoint: dir + "/ckpt-0002-000008.fclfckpt"))
            // As if the process had been killed before that checkpoint: the one at step 20 (epoch 2, batch 7) is the newest.
            unlink(dir + "/ckpt-0002-000008.fclfckpt")
            let second = try makeRun(sgdRecipe(), dir: dir, every: 5)
            #expect(try second.resume() == dir + "/ckpt-0002-000007.fclfckpt")
            _ = try train(second)
            let resumed = try finished(second)
            #expect(same(resumed.bytes, expected.bytes), "resumed model differs")
            #expect(sameHistory(resumed.history, expected.history))
        }
    }

    @Test("weight averaging (the last 2 of 3 epochs): stopped inside the averaged steps and resumed, the same bytes; the recipe without averaging refuses its checkpoint")
    func resumeAveraging() throws {
        var recipe = fastRecipe()
        (recipe.keepBest, recipe.config.averageEpochs) = (false, 2)
        try withThreads(2) {
            let reference = try makeRun(recipe, dir: nil)
            #expect(try train(reference) == .finished)
            let expected = try finished(reference)

            let dir = temporaryDirectory()
            let first = try makeRun(recipe, dir: dir, every: 3)
            #expect(try train(first) { e, b in e == 2 && b == 5 } == .interrupted(epoch: 2, batch: 5, checkpoint: dir + "/ckpt-0002-000005.fclfckpt"))
            let second = try makeRun(recipe, dir: dir, every: 3)
            try second.resume()
            #expect(second.trainer.average?.count == 5)
            #expect(try train(second) == .finished)
            #expect(same(try finished(second).bytes, expected.bytes), "resumed averaged model differs from the uninterrupted run's")

            var plain = recipe
            plain.config.averageEpochs = 0
            #expect(throws: FCLFError.invalidArgument("\(dir)/ckpt-0003-000010.fclfckpt belongs to another run: --average-epochs 2 there, (absent) here; resume with that run's settings, or give another --checkpoint-dir")) {
                try makeRun(plain, dir: dir).resume()
            }
        }
    }

    @Test("a damaged newest checkpoint (flipped byte, truncated) is skipped with a warning and the one before it is used; none valid is an error")
    func damagedFallsBack() throws {
        var recipe = sgdRecipe()
        recipe.config.epochs = 2
        let reference = try makeRun(recipe, dir: nil)
        _ = try train(reference)
        let expected = try finished(reference)

        for damage in ["flip", "truncate"] {
            let dir = temporaryDirectory()
            _ = try train(makeRun(recipe, dir: dir)) { e, b in e == 2 && b == 5 }
            #expect(files(dir) == ["ckpt-0001-000013.fclfckpt", "ckpt-0002-000005.fclfckpt"])
            let newest = dir + "/ckpt-0002-000005.fclfckpt"
            var bytes = try FileIO.read(newest, limit: 1 << 30)
            if damage == "flip" { bytes[bytes.count / 2] ^= 0x40 } else { bytes.removeLast(bytes.count / 3) }
            writeBytes(bytes, to: newest)

            let warnings = Warnings()
            let run = try makeRun(recipe, dir: dir, warnings: warnings)
            #expect(try run.resume() == dir + "/ckpt-0001-000013.fclfckpt")
            #expect(warnings.lines.count == 1)
            #expect(warnings.lines.first?.contains("\(newest) skipped and removed: ") == true, "\(warnings.lines)")
            #expect(warnings.lines.first?.contains("resuming from the one before it, \(dir)/ckpt-0001-000013.fclfckpt") == true)
            #expect(warnings.lines.first?.hasPrefix("\(newest) skipped and removed: checksum mismatch (the checkpoint is corrupted or truncated)") == true, "\(warnings.lines)")
            #expect(access(newest, F_OK) != 0, "the damaged checkpoint was not removed")
            _ = try train(run)
            #expect(same(try finished(run).bytes, expected.bytes), "\(damage): resumed from the older checkpoint")
        }

        // Every checkpoint damaged: an error naming the problem.
        let dir = temporaryDirectory()
        writeBytes(Array("not a checkpoint".utf8), to: dir + "/ckpt-0001-000013.fclfckpt")
        #expect(throws: FCLFError.invalidArgument("--resume: no valid checkpoint in \(dir): \(dir)/ckpt-0001-000013.fclfckpt: not an fclf-train checkpoint (bad magic)")) {
            try makeRun(recipe, dir: dir).resume()
        }
    }

    @Test("another run's checkpoint is refused, naming what differs; a fresh run refuses a folder with checkpoints; --resume needs one")
    func mismatchRefused() throws {
        var recipe = sgdRecipe()
        recipe.config.epochs = 1
        let dir = temporaryDirectory()
        #expect(throws: FCLFError.invalidArgument("--resume: \(dir) holds no checkpoint (ckpt-*.fclfckpt); run without --resume to start")) {
            try makeRun(recipe, dir: dir).resume()
        }
        _ = try train(makeRun(recipe, dir: dir))
        let path = dir + "/ckpt-0001-000013.fclfckpt"

        var other = recipe
        other.config.learningRate = 0.02
        other.config.seed = 6
        #expect(throws: FCLFError.invalidArgument("\(path) belongs to another run: --lr 0.05 there, 0.02 here; --seed 5 there, 6 here; resume with that run's settings, or give another --checkpoint-dir")) {
            try makeRun(other, dir: dir).resume()
        }
        var model = recipe
        model.model = .cnn
        #expect(throws: FCLFError.invalidArgument("\(path) belongs to another run: --model mlp there, cnn here; resume with that run's settings, or give another --checkpoint-dir")) {
            try makeRun(model, dir: dir).resume()
        }
        do {
            try makeRun(recipe, dir: dir, fit: synthetic(count: 300, seed: 21)).resume()
            Issue.record("a checkpoint of other data was accepted")
        } catch {
            #expect(error.description.contains("training images 320 there, 300 here; data checksum "), "\(error)")
        }
        #expect(throws: FCLFError.invalidArgument("\(dir) already holds checkpoints (ckpt-0001-000013.fclfckpt); continue that run with --resume, or remove them or give another --checkpoint-dir")) {
            try makeRun(recipe, dir: dir).train()
        }
        // The same run resumes (and, finished, trains nothing).
        let same = try makeRun(recipe, dir: dir)
        #expect(try same.resume() == path)
        #expect(try same.train() == .finished)
    }

    @Test("a loss that becomes NaN stops the run with epoch, batch and the last good checkpoint, and writes no checkpoint of that state")
    func nanStops() throws {
        var recipe = sgdRecipe()
        recipe.config.optimizer = .adam
        recipe.config.nesterov = false
        recipe.config.weightDecay = 0
        let dir = temporaryDirectory()
        let run = try makeRun(recipe, dir: dir, every: 100)
        // A weight made NaN after batch 3 of epoch 2: batch 4's loss is NaN.
        #expect(throws: FCLFError.invalidArgument("loss became nan at epoch 2, batch 4; the last good checkpoint is \(dir)/ckpt-0001-000013.fclfckpt; lower --lr")) {
            try train(run) { e, b in
                if e == 2 && b == 3 { run.model.parameters.last!.value[0] = .nan }
                return false
            }
        }
        #expect(files(dir) == ["ckpt-0001-000013.fclfckpt"])

        // A weight made NaN just before a checkpoint (every 5 steps): that checkpoint is refused.
        let dir2 = temporaryDirectory()
        let run2 = try makeRun(recipe, dir: dir2, every: 5)
        #expect(throws: FCLFError.invalidArgument("a weight became nan at epoch 1, batch 10; the last good checkpoint is \(dir2)/ckpt-0001-000005.fclfckpt; lower --lr")) {
            try train(run2) { e, b in
                if e == 1 && b == 10 { run2.model.parameters[0].value[0] = .nan }
                return false
            }
        }
        #expect(files(dir2) == ["ckpt-0001-000005.fclfckpt"])

        // A learning rate of 1e30 without checkpoints.
        var huge = recipe
        huge.config.learningRate = 1e30
        do {
            _ = try train(makeRun(huge, dir: nil))
            Issue.record("a learning rate of 1e30 trained without a non-finite loss")
        } catch {
            #expect(error.description.hasPrefix("loss became "), "\(error)")
            #expect(error.description.contains("at epoch 1, batch "))
            #expect(error.description.hasSuffix("; no checkpoint was kept (give --checkpoint-dir DIR to keep them); lower --lr"))
        }
    }

    @Test("checkpoint encoding round-trips; names sort by epoch and batch; stale temporaries of dead processes are removed")
    func formatAndDirectory() throws {
        let recipe = fastRecipe(epochs: 1)
        let run = try makeRun(recipe, dir: nil)
        _ = try train(run) { _, b in b == 3 }
        let c = run.checkpoint
        let bytes = c.encode()
        #expect(Array(bytes[0..<8]) == Array("FCLFCKPT".utf8) && bytes[8] == 1)
        let back = try Checkpoint.decode(bytes, path: "x")
        let equal = back == c
        #expect(equal, "decode(encode(c)) differs from c")
        #expect(back.trainer.dropoutBatches == [3] && back.trainer.augmented == 96 && back.trainer.optimizer.step == 3)
        #expect(c.fileName == "ckpt-0001-000003.fclfckpt")
        #expect(Checkpoint.position(ofFileName: "ckpt-0012-000345.fclfckpt")! == (12, 345))
        #expect(Checkpoint.position(ofFileName: "ckpt-0012-000345.fclfckpt.tmp.77") == nil)
        #expect(Checkpoint.position(ofFileName: "ckpt-x-1.fclfckpt") == nil)
        for cut in [4, 100, bytes.count / 2] {
            #expect(throws: FCLFError.self) { try Checkpoint.decode(Array(bytes.dropLast(cut)), path: "x") }
        }

        // A weight-averaging run: version 1 before its first averaged step, version 2 with the mean after it.
        var averaging = fastRecipe(epochs: 2)
        (averaging.keepBest, averaging.config.averageEpochs) = (false, 1)
        let early = try makeRun(averaging, dir: nil), late = try makeRun(averaging, dir: nil)
        _ = try train(early) { e, b in e == 1 && b == 3 }
        _ = try train(late) { e, b in e == 2 && b == 3 }
        #expect(early.checkpoint.encode()[8] == 1 && early.checkpoint.trainer.average.isEmpty)
        let averaged = late.checkpoint, averagedBytes = averaged.encode()
        #expect(averagedBytes[8] == 2 && averaged.trainer.averagedSteps == 3)
        let averagedBack = try Checkpoint.decode(averagedBytes, path: "x")
        let averagedEqual = averagedBack == averaged
        #expect(averagedEqual, "decode(encode(c)) differs from c for an averaging run")
        #expect(throws: FCLFError.self) { try Checkpoint.decode(Array(averagedBytes.dropLast(12)), path: "x") }

        let dir = temporaryDirectory()
        let dead = dir + "/ckpt-0001-000002.fclfckpt.tmp.2147483647", mine = dir + "/ckpt-0001-000001.fclfckpt.tmp.\(getpid())"
        let other = dir + "/notes.tmp.2147483647"
        for p in [dead, mine, other] { writeBytes([1, 2, 3], to: p) }
        let warnings = Warnings()
        _ = try train(makeRun(recipe, dir: dir, warnings: warnings)) { _, b in b == 2 }
        #expect(files(dir) == ["ckpt-0001-000001.fclfckpt.tmp.\(getpid())", "ckpt-0001-000002.fclfckpt", "notes.tmp.2147483647"])
        #expect(warnings.lines == ["removed \(dead), left by process 2147483647 that was killed while writing a checkpoint"])
    }
}
