// One training step of the seed CNN (batch 32 and 128) and MLP (batch 32), one epoch of the fast preset
// (BatchNorm CNN, augmented batches, AdamW one-cycle), also averaging every step's weights, over 256 synthetic images, and
// predictions (one image and a batch of 256, the seed CNN and the built-in model) under ordo-one/benchmark:
// wall-clock percentiles and the malloc count, which must be 0 after warm-up (all buffers are allocated by
// the first call and reused).
//   swift package --package-path Benchmarks benchmark --target TrainStep
import Benchmark
import CKernels
import FashionCLF

/// A trainer on a synthetic batch, warmed up so that every buffer already exists.
final class StepRig {
    let trainer: Trainer
    let x: Tensor
    private let input: Buffer<Float>
    let labels: Buffer<Int32>

    init(_ kind: ModelKind, batch: Int) {
        var config = TrainConfig()
        config.batchSize = batch
        trainer = Trainer(model: kind.build(seed: 1), config: config)
        input = Buffer<Float>(capacity: batch * 784)
        var rng = SplitMix64(seed: 2)
        for i in 0..<batch * 784 { input.pointer[i] = rng.nextUnitFloat() }
        x = Tensor(data: input.pointer, shape: ModelKind.imageShape.withBatch(batch))
        labels = Buffer<Int32>(capacity: batch)
        for i in 0..<batch { labels.pointer[i] = Int32(i % 10) }
        for _ in 0..<5 { trainer.step(x, labels: labels.pointer) }
    }
}

let benchmarks: @Sendable () -> Void = {
    fclf_set_num_threads(2)
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .throughput, .mallocCountTotal], warmupIterations: 5,
                                           maxDuration: .seconds(5), maxIterations: 2000)
    for (kind, batch) in [(ModelKind.cnn, 32), (.cnn, 128), (.mlp, 32)] {
        let rig = StepRig(kind, batch: batch)
        Benchmark("\(kind.rawValue) training step, batch \(batch)") { benchmark in
            for _ in benchmark.scaledIterations { blackHole(rig.trainer.step(rig.x, labels: rig.labels.pointer)) }
        }
    }
    // Clean epochs off: they follow the step count, so with 4 steps an epoch every epoch after the 4th would run
    // unaugmented, and the items below would time clean epochs under the name of augmented ones.
    var recipe = Preset.fast.recipe
    recipe.config.cleanEpochs = 0
    var images: [UInt8] = [], labels: [UInt8] = []
    var rng = SplitMix64(seed: 3)
    for i in 0..<256 {
        labels.append(UInt8(i % 10))
        for _ in 0..<784 { images.append(UInt8(truncatingIfNeeded: rng.next())) }
    }
    let data = LabeledImages(count: 256, rows: 28, cols: 28, pixels: images, labels: labels)
    let fast = Trainer(model: recipe.model.build(seed: 1), config: recipe.config)
    _ = fast.trainEpoch(data)
    Benchmark("fast preset: one epoch of 256 augmented images, batch \(recipe.config.batchSize)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(fast.trainEpoch(data)) }
    }
    // The same with stochastic weight averaging over every step (--average-epochs as many as the run has).
    var averagingConfig = recipe.config
    averagingConfig.averageEpochs = averagingConfig.epochs
    let averaging = Trainer(model: recipe.model.build(seed: 1), config: averagingConfig)
    _ = averaging.trainEpoch(data)
    Benchmark("fast preset averaging every step's weights: one epoch of 256 images") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(averaging.trainEpoch(data)) }
    }
    let classifiers = [("seed CNN", Classifier(ModelKind.cnn.build(seed: 1))), ("built-in model", try! Classifier.builtIn())]
    let pixels = UnsafeMutablePointer<UInt8>.allocate(capacity: images.count)  // for the life of the process
    pixels.initialize(from: images, count: images.count)
    for (name, classifier) in classifiers {
        for count in [1, 256] {
            let probabilities = UnsafeMutablePointer<Float>.allocate(capacity: count * 10)
            // Warm-up: enough calls back to back that the helper thread (CKernels/assist.c) is awake and has taken
            // each kind of task once; its packing buffer is allocated the first time it takes a product's columns
            // (the built-in model), as the calling thread's was on its first call.
            for _ in 0..<(count == 1 ? 200 : 3) { try! classifier.predict(pixels, count: count, probabilities: probabilities, labels: nil) }
            Benchmark("\(name): predict \(count == 1 ? "one image" : "\(count) images")") { benchmark in
                for _ in benchmark.scaledIterations {
                    try! classifier.predict(pixels, count: count, probabilities: probabilities, labels: nil)
                    blackHole(probabilities[0])
                }
            }
        }
    }
}
