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
        let trainer = Trainer(model: r.model.build(seed: 1), config: config)
        let data = synthetic(count: 2 * config.batchSize, seed: 2)
        let (loss, _) = trainer.trainEpoch(data)
        #expect(loss.isFinite && loss > 0)
        #expect(trainer.steps == 2)
        // Evaluation does not augment: two evaluations give the same loss and predictions.
        let a = trainer.evaluate(data), b = trainer.evaluate(data)
        #expect(a.loss == b.loss && a.predictions == b.predictions)
    }
}

@Suite("Clean final epochs")
struct CleanEpochsTests {
    /// Whether every row of the trainer's last input batch is one of `data`'s images exactly as loaded (x * (1 / 255), as scalePixels).
    static func batchIsClean(_ trainer: Trainer, _ data: LabeledImages, n: Int) -> Bool {
        let clean: Set<[Float]> = Set((0..<data.count).map { i in data.withPixels { px in (0..<784).map { Float(px[i * 784 + $0]) * (1 / 255) } } })
        let x = trainer.input.pointer
        return (0..<n).allSatisfy { r in clean.contains(Array(UnsafeBufferPointer(start: x + r * 784, count: 784))) }
    }

    @Test("the last cleanEpochs epochs load the images unaugmented; the epochs before augment them")
    func lastEpochsClean() {
        var config = Preset.fast.recipe.config
        config.epochs = 3
        config.cleanEpochs = 1
        config.batchSize = 8
        let data = synthetic(count: 16, seed: 3)
        let trainer = Trainer(model: ModelKind.cnn.build(seed: 1), config: config)
        for epoch in 0..<3 {
            trainer.beginEpoch(data)
            trainer.trainNextBatch(data)
            let first = Self.batchIsClean(trainer, data, n: 8)
            trainer.trainNextBatch(data)
            let second = Self.batchIsClean(trainer, data, n: 8)
            #expect(first == (epoch == 2) && second == (epoch == 2), "epoch \(epoch + 1)")
        }
    }
}
