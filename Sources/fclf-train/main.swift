import ArgumentParser
import CKernels
import FashionCLF
import FashionCLFReport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension ModelKind: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}
extension Preset: ExpressibleByArgument {}

/// --augment's values.
enum AugmentKind: String, ExpressibleByArgument { case none, photo }

@main
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fclf-train",
        abstract: "Train the Fashion-MNIST CNN or MLP baseline and report test accuracy, a classification report and the confusion matrix.",
        discussion: """
            The defaults are the seed study's recipe: Adam, learning rate 1e-3, batch 32, 15 epochs, the last \
            20% of the training set held out for validation, pixels / 255.
            Data: --data DIR, else $FCLF_DATA, else \(FashionMNIST.defaultDirectory) (Debian package dataset-fashion-mnist).
            Threads: --threads N, else $OMP_NUM_THREADS, else every core. FCLF_ISA=scalar|avx2|avx512f forces a kernel variant.
            """,
        version: "0.1.0")

    @Option(help: "Recipe: seed (the seed study's, the default), fast (BatchNorm CNN, photo augmentation, AdamW one-cycle, label smoothing, best epoch kept, calibrated) or best (the fast recipe on the VGG-style wide-bn, 25 epochs). Every flag below overrides its part.")
    var preset: Preset = .seed

    @Option(help: "Model: cnn (the seed's CNN), mlp (the seed's MLP baseline), cnn-bn (the CNN with BatchNorm and dropout) or wide-bn (VGG-style, BatchNorm). (default: the preset's)")
    var model: ModelKind?

    @Option(help: "Passes over the training set. (default: the preset's; seed 15)")
    var epochs: Int?

    @Option(help: "Images per optimiser step. (default: the preset's; seed 32)")
    var batchSize: Int?

    @Option(name: .customLong("lr"), help: "Learning rate: the constant or cosine schedule's base, one-cycle's peak. (default: the preset's; seed 0.001)")
    var learningRate: Float?

    @Option(help: "Optimiser: adam, adamw (decoupled weight decay) or sgd (momentum). (default: the preset's; seed adam)")
    var optimizer: OptimizerKind?

    @Option(help: "Momentum for --optimizer sgd. (default: 0.9)")
    var momentum: Float?

    @Flag(help: "Nesterov momentum for --optimizer sgd.")
    var nesterov = false

    @Option(help: "Weight decay: decoupled for adamw (weights only, not biases or BatchNorm), L2 for sgd. (default: the preset's; seed 0)")
    var weightDecay: Float?

    @Option(help: "Learning-rate schedule: constant, cosine or onecycle. (default: the preset's; seed constant)")
    var schedule: ScheduleKind?

    @Option(help: "Linear warm-up before a constant or cosine schedule, in epochs (fractions allowed). (default: 0)")
    var warmupEpochs: Double?

    @Option(help: "Label smoothing of the training loss, in [0, 1). (default: the preset's; seed 0)")
    var labelSmoothing: Float?

    @Option(help: "Training-time augmentation: none or photo (flips, shifts, scale, photometric jitter, erasing). (default: the preset's; seed none)")
    var augment: AugmentKind?

    @Option(help: "Fraction of the training set, taken from its end, held out for validation (0 disables). (default: 0.2)")
    var valSplit: Double?

    @Flag(inversion: .prefixedNo, help: "Keep the epoch with the best validation accuracy (ties: the lower validation loss), as Keras' ModelCheckpoint(save_best_only=True). (default: the preset's; seed no)")
    var keepBest: Bool?

    @Flag(inversion: .prefixedNo, help: "After training, fit a temperature on the validation split so the probabilities are calibrated; the model stores it. (default: the preset's; seed no)")
    var calibrate: Bool?

    @Option(help: "Random seed for initial weights and shuffling; the same seed gives the same run.")
    var seed: UInt64 = 42

    @Option(help: "OpenMP threads (default: $OMP_NUM_THREADS or every core).")
    var threads: Int?

    @Option(help: "Folder with the four Fashion-MNIST IDX .gz files (default: $FCLF_DATA or \(FashionMNIST.defaultDirectory)).")
    var data: String?

    @Option(help: "Use only the first N training images (quick runs).")
    var limitTrain: Int?

    @Option(help: "Write the trained model to this file (atomically).")
    var out: String?

    @Option(help: "Write the run's figures as JSON to this file (atomically).")
    var metrics: String?

    @Option(help: "Evaluate this saved model on the test set instead of training.")
    var eval: String?

    @Option(help: "Folder for the visual report (report.html, curves.svg, confusion.svg, samples.png, metrics.json). Default: reports/<model>-s<seed>-<UTC time>.")
    var report: String?

    @Flag(help: "Write no report folder.")
    var noReport = false

    @Flag(help: "Train the CNN and then the MLP with the same recipe and write both reports and compare.html side by side (in --report or reports/compare-s<seed>-<UTC time>).")
    var compare = false

    /// The preset's recipe with every flag given applied over it.
    var recipe: Recipe {
        var r = preset.recipe
        if let model { r.model = model }
        if let epochs { r.config.epochs = epochs }
        if let batchSize { r.config.batchSize = batchSize }
        if let learningRate { r.config.learningRate = learningRate }
        if let optimizer { r.config.optimizer = optimizer }
        if let momentum { r.config.momentum = momentum }
        if nesterov { r.config.nesterov = true }
        if let weightDecay { r.config.weightDecay = weightDecay }
        if let schedule { r.config.schedule = schedule }
        if let warmupEpochs { r.config.warmupEpochs = warmupEpochs }
        if let labelSmoothing { r.config.labelSmoothing = labelSmoothing }
        if let augment { r.config.augment = augment == .photo ? Preset.photoAugmentation : nil }
        if let valSplit { r.config.valSplit = valSplit }
        r.config.seed = seed
        if let keepBest { r.keepBest = keepBest }
        if let calibrate { r.calibrate = calibrate }
        return r
    }

    func validate() throws {
        let r = recipe, c = r.config
        guard c.epochs >= 1 else { throw ValidationError("--epochs must be at least 1 (got \(c.epochs))") }
        guard c.batchSize >= 1 && c.batchSize <= 65536 else { throw ValidationError("--batch-size must be in 1...65536 (got \(c.batchSize))") }
        guard c.learningRate.isFinite && c.learningRate > 0 else { throw ValidationError("--lr must be a positive finite number (got \(c.learningRate))") }
        guard c.momentum.isFinite && c.momentum >= 0 && c.momentum < 1 else { throw ValidationError("--momentum must be in [0, 1) (got \(c.momentum))") }
        if c.nesterov && (c.optimizer != .sgd || c.momentum == 0) { throw ValidationError("--nesterov needs --optimizer sgd and a momentum above 0") }
        guard c.weightDecay.isFinite && c.weightDecay >= 0 && c.weightDecay < 1 else { throw ValidationError("--weight-decay must be in [0, 1) (got \(c.weightDecay))") }
        guard c.warmupEpochs.isFinite && c.warmupEpochs >= 0 && c.warmupEpochs <= Double(c.epochs) else {
            throw ValidationError("--warmup-epochs must be in 0...--epochs (got \(c.warmupEpochs))")
        }
        guard c.labelSmoothing.isFinite && c.labelSmoothing >= 0 && c.labelSmoothing < 1 else {
            throw ValidationError("--label-smoothing must be in [0, 1) (got \(c.labelSmoothing))")
        }
        guard c.valSplit >= 0 && c.valSplit < 1 else { throw ValidationError("--val-split must be in [0, 1) (got \(c.valSplit))") }
        if let threads, threads < 1 || threads > 4096 { throw ValidationError("--threads must be in 1...4096 (got \(threads))") }
        if let limitTrain, limitTrain < 1 { throw ValidationError("--limit-train must be at least 1 (got \(limitTrain))") }
        if (r.keepBest || r.calibrate) && c.valSplit == 0 {
            throw ValidationError("--keep-best and --calibrate work on the validation split; give --val-split > 0 or --no-keep-best --no-calibrate")
        }
    }

    func run() throws {
        if let threads { fclf_set_num_threads(Int32(threads)) }
        do {
            try execute()
        } catch {
            Console.error("fclf-train: error: \(error)")
            throw ExitCode.failure
        }
    }

    func execute() throws(FCLFError) {
        let directory = FashionMNIST.resolveDirectory(data)
        let dataset = try FashionMNIST(directory: directory)
        let isa = String(cString: fclf_isa_name(fclf_isa_active()))
        let threadCount = Int(fclf_get_max_threads())

        if let eval {
            let net = try ModelFile.load(eval)
            guard net.inputShape == ModelKind.imageShape, net.outputSize == FashionMNIST.classNames.count else {
                throw .modelFile(path: eval, reason: "model takes \(net.inputShape) to \(net.outputSize) classes, not Fashion-MNIST's 28x28 grayscale to 10")
            }
            print("model \(net.name) from \(eval), \(net.parameterCount) parameters; threads \(threadCount), kernels \(isa)")
            print(net.summary)
            print("inference plan (fclf_predict, fclf-classify): " + Classifier(net).plan.steps.map(\.name).joined(separator: " -> "))
            let trainer = Trainer(model: net, config: TrainConfig())
            let result = trainer.evaluate(dataset.test)
            printSummary(result)
            if let metrics {
                let summary = RunSummary(model: net.name, parameters: net.parameterCount, config: TrainConfig(), threads: threadCount,
                                         isa: isa, date: Report.now().display, wallSeconds: 0, trainSeconds: 0, imagesPerSecond: 0,
                                         history: [], test: result, summary: net.summary)
                try FileIO.writeAtomically(Report.metricsJSON(summary), to: metrics)
            }
            return
        }

        let recipe = self.recipe
        var train = dataset.train
        if let limitTrain, limitTrain < train.count { train = train.slice(0..<limitTrain) }
        let valSplit = recipe.config.valSplit
        let valCount = Int((Double(train.count) * valSplit).rounded(.down))
        let fit = train.slice(0..<(train.count - valCount))
        let validation = valCount > 0 ? train.slice((train.count - valCount)..<train.count) : nil
        guard fit.count > 0 else { throw .invalidArgument("--val-split \(valSplit) leaves no training images") }
        print("data \(directory): \(fit.count) train / \(valCount) validation / \(dataset.test.count) test images; seed \(seed); threads \(threadCount), kernels \(isa)")

        let stamp = Report.now()
        if compare {
            let dir = report ?? "reports/compare-s\(seed)-\(stamp.stamp)"
            var runs: [RunSummary] = []
            for kind in ModelKind.seedModels {
                var r = recipe
                r.model = kind
                let (summary, _) = try trainModel(r, fit: fit, validation: validation, test: dataset.test, isa: isa, threads: threadCount)
                try Report.write(summary, test: dataset.test, to: dir + "/" + kind.rawValue)
                runs.append(summary)
            }
            print("comparison written to \(try Report.writeComparison(runs, to: dir))")
            return
        }
        let (summary, net) = try trainModel(recipe, fit: fit, validation: validation, test: dataset.test, isa: isa, threads: threadCount)
        if let out {
            try ModelFile.save(net, to: out)
            print("model written to \(out)")
        }
        if let metrics {
            try FileIO.writeAtomically(Report.metricsJSON(summary), to: metrics)
            print("metrics written to \(metrics)")
        }
        if !noReport {
            let dir = report ?? "reports/\(recipe.model.rawValue)-s\(seed)-\(stamp.stamp)"
            print("report written to \(try Report.write(summary, test: dataset.test, to: dir))")
        }
    }

    /// Trains one model with `recipe` and evaluates it on the test set.
    func trainModel(_ recipe: Recipe, fit: LabeledImages, validation: LabeledImages?, test: LabeledImages, isa: String,
                    threads: Int) throws(FCLFError) -> (RunSummary, Sequential) {
        let wallStart = monotonicSeconds()
        let config = recipe.config, kind = recipe.model, epochs = config.epochs, keepBest = recipe.keepBest
        var net = kind.build(seed: seed)
        let trainer = Trainer(model: net, config: config)
        print("model \(kind.rawValue): \(net.parameterCount) parameters; recipe (preset \(preset.rawValue)): \(config.recipe)"
              + (keepBest ? ", best epoch kept" : "") + (recipe.calibrate ? ", calibrated" : ""))
        print(net.summary)

        let live = isatty(STDOUT_FILENO) != 0
        var history: [EpochRecord] = []
        var trainSeconds = 0.0
        var best: (epoch: Int, accuracy: Double, loss: Double, weights: [[Float]])?
        for epoch in 1...epochs {
            let start = monotonicSeconds()
            var lastDraw = start
            let (loss, accuracy) = trainer.trainEpoch(fit) { done, total, meanLoss in
                guard live else { return }
                let now = monotonicSeconds()
                guard now - lastDraw >= 0.2 || done == total else { return }
                lastDraw = now
                let rate = Double(done) / max(now - start, 1e-9)
                let eta = Double(total - done) / max(rate, 1e-9)
                print("\r\u{1B}[Kepoch \(epoch)/\(epochs) \(done)/\(total)  loss \(Text.fixed(meanLoss, 4))  \(Int(rate)) img/s  ETA \(Text.fixed(eta, 1)) s", terminator: "")
                Console.flush()
            }
            let seconds = monotonicSeconds() - start
            trainSeconds += seconds
            let v = validation.map { trainer.evaluate($0) }
            let record = EpochRecord(epoch: epoch, trainLoss: loss, trainAccuracy: accuracy, valLoss: v?.loss,
                                     valAccuracy: v?.accuracy, seconds: seconds,
                                     imagesPerSecond: Double(fit.count) / seconds)
            history.append(record)
            var line = "epoch \(epoch)/\(epochs)  loss \(Text.fixed(loss, 4))  acc \(Text.fixed(accuracy, 4))"
            if let v { line += "  val_loss \(Text.fixed(v.loss, 4))  val_acc \(Text.fixed(v.accuracy, 4))" }
            line += "  \(Text.fixed(seconds, 1)) s  \(Int(record.imagesPerSecond)) img/s"
            if keepBest, let v, best.map({ v.accuracy > $0.accuracy || (v.accuracy == $0.accuracy && v.loss < $0.loss) }) ?? true {
                best = (epoch, v.accuracy, v.loss, net.snapshot())
                line += "  (best so far)"
            }
            print((live ? "\r\u{1B}[K" : "") + line)
            Console.flush()
        }
        let imagesPerSecond = Double(fit.count * epochs) / trainSeconds
        print("training: \(Text.fixed(trainSeconds, 1)) s, \(Int(imagesPerSecond)) images/s")
        if let best {
            net.restore(best.weights)
            print("kept epoch \(best.epoch) of \(epochs): best validation accuracy \(Text.fixed(best.accuracy, 4)) (loss \(Text.fixed(best.loss, 4)))")
        }
        var calibration: Calibration.Result?
        if recipe.calibrate, let validation {
            let v = trainer.logits(validation), t = trainer.logits(test)
            let temperature = Calibration.fitTemperature(logits: v.logits, labels: v.labels, classes: net.outputSize)
            let before = Calibration.expectedCalibrationError(logits: t.logits, labels: t.labels, classes: net.outputSize)
            let after = Calibration.expectedCalibrationError(logits: t.logits, labels: t.labels, classes: net.outputSize,
                                                             temperature: Double(temperature))
            calibration = Calibration.Result(temperature: temperature, testECEBefore: before, testECEAfter: after)
            print("calibration: temperature \(Text.fixed(Double(temperature), 3)) fitted on the validation split; test expected calibration error (15 bins) \(Text.fixed(before * 100, 2))% -> \(Text.fixed(after * 100, 2))%")
            net = try net.calibrated(temperature: temperature)
        }
        let result = Trainer(model: net, config: config).evaluate(test)
        printSummary(result)
        let summary = RunSummary(model: kind.rawValue, parameters: net.parameterCount, config: config, threads: threads, isa: isa,
                                 date: Report.now().display, wallSeconds: monotonicSeconds() - wallStart, trainSeconds: trainSeconds,
                                 imagesPerSecond: imagesPerSecond, history: history, test: result, summary: net.summary,
                                 keptEpoch: best?.epoch, calibration: calibration)
        return (summary, net)
    }

    func printSummary(_ result: Evaluation) {
        let names = FashionMNIST.classNames
        print("\ntest accuracy \(Text.fixed(result.accuracy * 100, 2))%  test loss \(Text.fixed(result.loss, 4))  (\(result.count) images)\n")
        print("classification report")
        print(ClassificationReport(confusion: result.confusion, names: names).text)
        print("confusion matrix (rows actual, columns predicted)")
        print(ClassificationReport.confusionText(result.confusion, names: names))
    }
}
