// Presets: the seed preset is the seed study's recipe unchanged; every preset's network builds and trains a
// step, and its augmentation is off at evaluation.
import CKernels
@testable import FashionCLF
import Testing

@Suite("Presets")
struct PresetTests {
    @Test("seed is the seed study's recipe, with nothing added")
    func seedUnchanged() {
        let r = Preset.seed.recipe, c = r.config
        #expect(r.model == .cnn && !r.keepBest && !r.calibrate)
        #expect(c.epochs == 15 && c.batchSize == 32 && c.learningRate == 1e-3 && c.optimizer == .adam && c.valSplit == 0.2)
        #expect(c.weightDecay == 0 && c.labelSmoothing == 0 && c.augment == nil && c.schedule == .constant && c.warmupEpochs == 0)
    }

    @Test("fast and best train without label smoothing (it cost photos at the same validation accuracy)")
    func noLabelSmoothing() {
        #expect(Preset.fast.recipe.config.labelSmoothing == 0 && Preset.best.recipe.config.labelSmoothing == 0)
        #expect(Preset.fast.recipe.config.augment != nil && Preset.best.recipe.config.augment != nil)
    }

    @Test("every preset's network builds, takes a training epoch and evaluates", arguments: Preset.allCases)
    func presetTrains(_ preset: Preset) {
        let r = preset.recipe
        var config = r.config
        config.epochs = 1
        config.cleanEpochs = 0  // the preset's own augmentation, on the one epoch
        let trainer = Trainer(model: r.model.build(seed: 1), config: config)
        let data = synthetic(count: 2 * config.batchSize, seed: 2)
        let (loss, _) = trainer.trainEpoch(data)
        #expect(loss.isFinite && loss > 0)
        #expect(trainer.steps == 2)
        // Evaluation does not augment: two evaluations give the same loss and predictions.
        let a = trainer.evaluate(data), b = trainer.evaluate(data)
        #expect(a.loss == b.loss && a.predictions == b.predictions)
    }

    @Test("random erasing (--erase-p) sets Zhong et al.'s rectangle sizes, shows in the recipe line, and makes another run identity")
    func erasingRecipe() {
        let fit = synthetic(count: 20, seed: 1)
        var r = Preset.best.recipe
        let plain = RunIdentity(recipe: r, fit: fit, validation: nil)
        #expect(!r.config.recipe.contains("erasing"))
        r.config.augment?.setRandomErasing(p: 0.25)
        #expect(r.config.augment?.erase_p == 0.25 && r.config.augment?.erase_area_min == 0.02
                && r.config.augment?.erase_area_max == 0.4 && r.config.augment?.erase_aspect_min == 0.3)
        #expect(r.config.recipe.contains("random erasing on 25% of images"))
        let differences = RunIdentity(recipe: r, fit: fit, validation: nil).differences(from: plain)
        #expect(differences == ["--erase-p 0.25 there, (absent) here"], "\(differences)")
        // Erasing with other rectangle sizes than the flag's (a library caller's) is spelt out field by field.
        r.config.augment?.erase_area_max = 0.3
        let custom = RunIdentity(recipe: r, fit: fit, validation: nil).differences(from: plain)
        #expect(custom.count == 1 && custom[0].hasPrefix("--augment custom(") && custom[0].contains("erase_area_max 0.3"), "\(custom)")
        // A given temperature (--temperature) is part of the recipe a checkpoint must match.
        var given = Preset.best.recipe
        given.temperature = 1.25
        let t = RunIdentity(recipe: given, fit: fit, validation: nil).differences(from: plain)
        #expect(t == ["--temperature 1.25 there, 1.324 here"], "\(t)")
        let fast = Preset.fast.recipe
        var fastFitted = fast
        (fastFitted.calibrate, fastFitted.temperature) = (true, nil)
        let f = RunIdentity(recipe: fastFitted, fit: fit, validation: nil).differences(from: RunIdentity(recipe: fast, fit: fit, validation: nil))
        #expect(f.sorted() == ["--calibrate true there, false here", "--temperature (absent) there, 1.085 here"], "\(f)")
    }

    @Test("best (recipe 6) and fast (recipe 8) train on the whole training set and store the temperatures their recipes fitted with a split")
    func presetsTrainOnEverything() {
        let b = Preset.best.recipe, f = Preset.fast.recipe
        #expect(b.config.valSplit == 0 && !b.keepBest && !b.calibrate && b.temperature == 1.324)
        #expect(b.config.epochs == 48 && b.config.cleanEpochs == 0 && b.config.batchSize == 128)
        #expect(f.config.valSplit == 0 && !f.keepBest && !f.calibrate && f.temperature == 1.085)
        #expect(f.config.epochs == 6 && f.config.cleanEpochs == 2 && f.config.batchSize == 64)
    }
}

@Suite("Clean final epochs")
struct CleanEpochsTests {
    /// Whether every row of the trainer's last input batch (n images) is one of `data`'s images exactly as
    /// loaded (x * (1 / 255), as scalePixels).
    static func batchIsClean(_ trainer: Trainer, _ data: LabeledImages, n: Int) -> Bool {
        let clean: Set<[Float]> = Set((0..<data.count).map { i in data.withPixels { px in (0..<784).map { Float(px[i * 784 + $0]) * (1 / 255) } } })
        let x = trainer.input.pointer
        return (0..<n).allSatisfy { r in clean.contains(Array(UnsafeBufferPointer(start: x + r * 784, count: 784))) }
    }

    /// Trains `epochs` epochs of 20 images in batches of 8 (the last one short) and returns, per epoch,
    /// whether each of its three batches loaded clean images.
    static func cleanBatches(epochs: Int, configured: Int, cleanEpochs: Int) -> [[Bool]] {
        var config = Preset.fast.recipe.config
        config.epochs = configured
        config.cleanEpochs = cleanEpochs
        config.batchSize = 8
        let data = synthetic(count: 20, seed: 3)
        let trainer = Trainer(model: ModelKind.cnn.build(seed: 1), config: config)
        return (0..<epochs).map { _ in
            trainer.beginEpoch(data)
            return [8, 8, 4].map { n in
                trainer.trainNextBatch(data)
                return batchIsClean(trainer, data, n: n)
            }
        }
    }

    @Test("the last cleanEpochs epochs load the images unaugmented, the short last batch included; the epochs before augment them")
    func lastEpochsClean() {
        #expect(Self.cleanBatches(epochs: 3, configured: 3, cleanEpochs: 1) == [[false, false, false], [false, false, false], [true, true, true]])
        #expect(Self.cleanBatches(epochs: 3, configured: 3, cleanEpochs: 2) == [[false, false, false], [true, true, true], [true, true, true]])
    }

    @Test("with no clean epochs, epochs past the configured count still augment (a caller may train longer)")
    func noCleanEpochsAlwaysAugments() {
        #expect(Self.cleanBatches(epochs: 3, configured: 2, cleanEpochs: 0) == [[false, false, false], [false, false, false], [false, false, false]])
    }

    @Test("the run's identity records --clean-epochs only when it acts, so older checkpoints still match")
    func identityEntry() {
        var r = Preset.fast.recipe
        let fit = synthetic(count: 20, seed: 1)
        let keys = { (r: Recipe) in RunIdentity(recipe: r, fit: fit, validation: nil).entries.map(\.key) }
        #expect(keys(r).contains("--clean-epochs"))
        let at = keys(r).firstIndex(of: "--clean-epochs")
        #expect(at != nil && at == keys(r).firstIndex(of: "--photometric-p").map { $0 + 1 })
        r.config.cleanEpochs = 0
        #expect(!keys(r).contains("--clean-epochs"))
        r.config.cleanEpochs = 3
        r.config.augment = nil
        #expect(!keys(r).contains("--clean-epochs"))
        var a = Preset.fast.recipe, b = a
        b.config.cleanEpochs = 1
        #expect(RunIdentity(recipe: b, fit: fit, validation: nil).differences(from: RunIdentity(recipe: a, fit: fit, validation: nil)) == ["--clean-epochs 1 there, 2 here"])
        a.config.cleanEpochs = 0
        #expect(RunIdentity(recipe: b, fit: fit, validation: nil).differences(from: RunIdentity(recipe: a, fit: fit, validation: nil)) == ["--clean-epochs 1 there, (absent) here"])
    }

    @Test("the checkpoint identity names --average-epochs only when it averages, before --val-split; a difference names it")
    func averageIdentityEntry() {
        let fit = synthetic(count: 20, seed: 1)
        let identity = { (r: Recipe) in RunIdentity(recipe: r, fit: fit, validation: nil) }
        var averaged = Preset.fast.recipe
        #expect(!identity(averaged).entries.contains { $0.key == "--average-epochs" })
        averaged.config.averageEpochs = 2
        let keys = identity(averaged).entries.map(\.key)
        #expect(keys.firstIndex(of: "--average-epochs").map { $0 + 1 } == keys.firstIndex(of: "--val-split"))
        #expect(identity(averaged).differences(from: identity(Preset.fast.recipe)) == ["--average-epochs 2 there, (absent) here"])
        var held = averaged
        held.config.averageRate = 0.2
        #expect(identity(held).differences(from: identity(averaged)) == ["--average-rate 0.2 there, (absent) here"])
    }
}
