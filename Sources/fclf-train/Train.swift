import ArgumentParser
import CKernels
import CSignal
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
            Checkpoints: with --checkpoint-dir DIR a checkpoint (the whole training state) is written atomically at the end \
            of every epoch, and every N optimiser steps with --checkpoint-every N; the newest two are kept. --resume continues \
            from the newest valid one (a damaged one is skipped with a warning) and ends with the same model file, byte for \
            byte, as a run never stopped; the other flags must be the same (a checkpoint of another recipe, seed, model or \
            data is refused).
            Ctrl-C (SIGINT) finishes the current batch, writes a checkpoint when --checkpoint-dir is given and exits with \
            status 130; a second Ctrl-C exits at once. A loss that becomes NaN or infinite stops the run (status 1) and \
            names the last good checkpoint.
            Exit status: 0 done, 1 error, 64 bad command line, 130 interrupted.
            """,
        version: "0.1.0")

    @Option(help: "Recipe: seed (the seed study's, the default), fast (cnn3w-bn, a three-convolution BatchNorm CNN; 6 epochs, photo augmentation except in the last 2, AdamW one-cycle, trained on all 60,000 training images with no validation split, storing the temperature the recipe fits with one, 1.085) or best (the fast recipe on the VGG-style wide-bn-nodrop, batch 128, 48 epochs, no clean epochs, storing 1.324). With --val-split, fast and best keep the best epoch and fit their own temperature. Every flag below overrides its part.")
    var preset: Preset = .seed

    @Option(help: "Model: cnn (the seed's CNN), mlp (the seed's MLP baseline), cnn-bn (the CNN with BatchNorm and dropout), cnn3-bn (three convolutions, BatchNorm, dropout), cnn3w-bn (cnn3-bn with a wider third convolution and no dropout; the fast preset's), wide-bn (VGG-style, BatchNorm, dropout), wide-bn-nodrop (wide-bn without dropout; the best preset's), same-bn (wide-bn with 'same' padding), deep-bn (wide-bn with a fifth convolution), res-bn (ResNet-20's layout: residual blocks at 16, 32, 64 channels) or res2-bn (res-bn without its 28x28 stage: a 32-channel stem, then blocks at 32 and 64 channels). (default: the preset's)")
    var model: ModelKind?

    // Numbers are read with .unconditional parsing, so that a negative value (--epochs -3) reaches the range
    // checks in validate() instead of being taken for a flag ("Missing value").
    @Option(parsing: .unconditional, help: "Passes over the training set, at least 1. (default: the preset's; seed 15)")
    var epochs: Int?

    @Option(parsing: .unconditional, help: "Images per optimiser step. (default: the preset's; seed 32)")
    var batchSize: Int?

    @Option(name: .customLong("lr"), parsing: .unconditional, help: "Learning rate: the constant or cosine schedule's base, one-cycle's peak. (default: the preset's; seed 0.001)")
    var learningRate: Float?

    @Option(help: "Optimiser: adam, adamw (decoupled weight decay) or sgd (momentum). (default: the preset's; seed adam)")
    var optimizer: OptimizerKind?

    @Option(parsing: .unconditional, help: "Momentum for --optimizer sgd. (default: 0.9)")
    var momentum: Float?

    @Flag(help: "Nesterov momentum for --optimizer sgd.")
    var nesterov = false

    @Option(parsing: .unconditional, help: "Weight decay: decoupled for adamw (weights only, not biases or BatchNorm), L2 for sgd. (default: the preset's; seed 0)")
    var weightDecay: Float?

    @Option(help: "Learning-rate schedule: constant, cosine or onecycle. (default: the preset's; seed constant)")
    var schedule: ScheduleKind?

    @Option(parsing: .unconditional, help: "Linear warm-up before a constant or cosine schedule, in epochs (fractions allowed). (default: 0)")
    var warmupEpochs: Double?

    @Option(parsing: .unconditional, help: "Label smoothing of the training loss, in [0, 1). (default: the preset's; seed 0)")
    var labelSmoothing: Float?

    @Option(help: "Training-time augmentation: none or photo (flips, shifts, scale, photometric jitter, sensor noise). (default: the preset's; seed none)")
    var augment: AugmentKind?

    @Option(name: .customLong("photometric-p"), parsing: .unconditional, help: "Fraction of the training images that get the photometric jitter (tone, blur, noise); the rest keep the data set's clean tone. Needs augmentation. (default: the preset's; fast and best 0.5)")
    var photometricP: Float?

    @Option(name: .customLong("erase-p"), parsing: .unconditional, help: "Fraction of the training images that get random erasing (Zhong et al. 2017): one rectangle of 2-40% of the image, aspect 0.3-3.3, set to the background. Needs augmentation. (default: 0)")
    var eraseP: Float?

    @Option(parsing: .unconditional, help: "The last N epochs train on the images without augmentation (refining on clean data after augmented training). Needs augmentation; less than --epochs. (default: the preset's; fast 2, otherwise 0)")
    var cleanEpochs: Int?

    @Option(parsing: .unconditional, help: "Stochastic weight averaging: the model is the mean of the weights after every step of the last N epochs, with BatchNorm's statistics recomputed for it in one more pass over the training images. Not with --keep-best (it keeps one epoch; with N > 0 the preset's --keep-best is off, and so is its stored temperature, fitted for the last epoch's weights: give --temperature or a split to calibrate). (default: 0, the last step's weights)")
    var averageEpochs: Int?

    @Option(parsing: .unconditional, help: "With --average-epochs N: hold the averaged epochs at this constant fraction of --lr, the schedule before them ending there (stochastic weight averaging's own schedule), instead of running the schedule on through them. In (0, 1]; N below --epochs.")
    var averageRate: Float?

    @Option(parsing: .unconditional, help: "Fraction of the training set, taken from its end, held out for validation (0 disables). (default: 0.2; fast and best 0)")
    var valSplit: Double?

    @Flag(inversion: .prefixedNo, help: "Keep the epoch with the best validation accuracy (ties: the lower validation loss), as Keras' ModelCheckpoint(save_best_only=True). (default: the preset's; seed no, fast and best with --val-split only)")
    var keepBest: Bool?

    @Flag(inversion: .prefixedNo, help: "After training, fit a temperature on the validation split so the probabilities are calibrated; the model stores it. (default: the preset's; seed no, fast and best with --val-split only, else they give one: --temperature)")
    var calibrate: Bool?

    @Option(parsing: .unconditional, help: "Store this temperature instead of fitting one: for a run on the whole training set (--val-split 0), the temperature its recipe fitted with the split. Not with --calibrate. (default: the preset's; fast 1.085 and best 1.324, for their own networks without a validation split; else none)")
    var temperature: Float?

    @Flag(name: .customLong("no-temperature"), help: "Store no temperature, not even the preset's: the model's raw probabilities.")
    var noTemperature = false

    @Option(help: "Random seed for initial weights and shuffling; the same seed gives the same run.")
    var seed: UInt64 = 42

    @Option(parsing: .unconditional, help: "OpenMP threads (default: $OMP_NUM_THREADS or every core).")
    var threads: Int?

    @Option(help: "Folder with the four Fashion-MNIST IDX .gz files (default: $FCLF_DATA or \(FashionMNIST.defaultDirectory)).")
    var data: String?

    @Option(parsing: .unconditional, help: "Use only the first N training images (quick runs).")
    var limitTrain: Int?

    @Option(help: "Write the trained model to this file (atomically). With --compare: one file per model, -cnn and -mlp added before the extension (m.fclf: m-cnn.fclf, m-mlp.fclf).")
    var out: String?

    @Option(help: "Write the run's figures as JSON to this file (atomically). With --compare: one file per model, named as for --out.")
    var metrics: String?

    @Option(help: "Evaluate this saved model on the test set instead of training (needs only the two test files; prints, and writes --metrics if given; no report).")
    var eval: String?

    @Option(help: "Folder for the visual report (report.html, curves.svg, confusion.svg, samples.png, metrics.json). Default: reports/<model>-s<seed>-<UTC time>.")
    var report: String?

    @Flag(help: "Write no report folder.")
    var noReport = false

    @Flag(help: "Train the CNN and then the MLP with the same recipe and write both reports and compare.html side by side (in --report or reports/compare-s<seed>-<UTC time>; none with --no-report); --out and --metrics get one file per model.")
    var compare = false

    @Option(help: "Folder for training checkpoints (created if needed): one at the end of every epoch (and every --checkpoint-every steps), written atomically, the newest two kept (ckpt-EEEE-BBBBBB.fclfckpt: epoch, batch). A fresh run refuses a folder that already holds checkpoints.")
    var checkpointDir: String?

    @Option(parsing: .unconditional, help: "Also write a checkpoint every N optimiser steps (batches) inside epochs; needs --checkpoint-dir.")
    var checkpointEvery: Int?

    @Flag(help: "Continue the run whose checkpoints are in --checkpoint-dir from the newest valid one, with the same flags; the result is the same, byte for byte, as a run never stopped.")
    var resume = false

    /// The preset's recipe with every flag given applied over it.
    var recipe: Recipe { recipeTraining(model) }

    /// The same with `model` in place of --model (--compare trains each seed model).
    func recipeTraining(_ model: ModelKind?) -> Recipe {
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
        if let augment {
            let keep = r.config.augment?.photometric_p
            r.config.augment = augment == .photo ? Preset.photoAugmentation : nil
            if let keep { r.config.augment?.photometric_p = keep }
        }
        if let photometricP { r.config.augment?.photometric_p = photometricP }
        if let eraseP, eraseP > 0 { r.config.augment?.setRandomErasing(p: eraseP) }
        if let cleanEpochs { r.config.cleanEpochs = cleanEpochs }
        if let valSplit { r.config.valSplit = valSplit }
        r.config.seed = seed
        // fast's and best's stored temperatures were fitted, with a split, for their own networks: with a split
        // given, the run keeps the best epoch and fits its own (with the preset's other settings: best recipe 5;
        // fast recipe 7 also needs --epochs 7 --clean-epochs 3); for another network it stores none.
        if r.temperature != nil {
            if r.config.valSplit > 0 { (r.keepBest, r.calibrate, r.temperature) = (true, true, nil) }
            else if r.model != preset.recipe.model { r.temperature = nil }
        }
        if noTemperature { r.temperature = nil }
        if let keepBest { r.keepBest = keepBest }
        if let calibrate {
            r.calibrate = calibrate
            if calibrate { r.temperature = nil }  // fitted, not the preset's given one
        }
        if let temperature { r.temperature = temperature }
        if let averageEpochs {
            r.config.averageEpochs = averageEpochs
            if averageEpochs > 0 && keepBest == nil { r.keepBest = false }  // the average is the model, not one epoch
            // The preset's stored temperature was fitted for its last epoch's weights, not for their mean.
            if averageEpochs > 0 && temperature == nil { r.temperature = nil }
        }
        if let averageRate { r.config.averageRate = averageRate }
        return r
    }

    func run() throws {
        if let threads { fclf_set_num_threads(Int32(threads)) }
        // Ctrl-C: the handler only counts; the training loop stops after its batch (a second one exits at once).
        if fclf_sigint_install() != 0 { Console.error("fclf-train: warning: cannot install the SIGINT handler; Ctrl-C stops at once") }
        do {
            try execute()
        } catch let stop as Interrupted {
            Console.flush()
            Console.error("fclf-train: interrupted\(stop.message)")
            throw ExitCode(130)
        } catch {
            Console.flush()
            Console.error("fclf-train: error: \(error)")
            throw ExitCode.failure
        }
    }

    /// Ctrl-C outside the training loop (loading, evaluation, writing): stops at the next of these checks.
    struct Interrupted: Error {
        var message = ""
    }

    func stopIfInterrupted(_ message: String = "") throws {
        if fclf_sigint_count() > 0 { throw Interrupted(message: message) }
    }

    func execute() throws {
        // Outputs are checked before any training, so a typo in a path costs nothing.
        if let out { try FileIO.checkDestination(out, option: "--out") }
        if let metrics { try FileIO.checkDestination(metrics, option: "--metrics") }
        let directory = FashionMNIST.resolveDirectory(data)
        let isa = String(cString: fclf_isa_name(fclf_isa_active()))
        let threadCount = Int(fclf_get_max_threads())
        let blocking = GEMMBlocking.active.description

        if let eval {
            let test = try FashionMNIST.testSplit(directory: directory)
            let net = try ModelFile.load(eval)
            guard net.inputShape == ModelKind.imageShape, net.outputSize == FashionMNIST.classNames.count else {
                throw FCLFError.modelFile(path: eval, reason: "model takes \(net.inputShape) to \(net.outputSize) classes, not Fashion-MNIST's 28x28 grayscale to 10")
            }
            print("model \(net.name) from \(eval), \(net.parameterCount) parameters; threads \(threadCount), kernels \(isa), \(blocking)")
            print(net.summary)
            print("inference plan (fclf_predict, fclf-classify): " + Classifier(net).plan.steps.map(\.name).joined(separator: " -> "))
            let trainer = Trainer(model: net, config: TrainConfig())
            let result = trainer.evaluate(test)
            printSummary(result)
            if let metrics {
                try stopIfInterrupted()
                let summary = RunSummary(model: net.name, parameters: net.parameterCount, config: TrainConfig(), threads: threadCount,
                                         isa: isa, date: Report.now().display, wallSeconds: 0, trainSeconds: 0, imagesPerSecond: 0,
                                         history: [], test: result, summary: net.summary)
                try FileIO.writeAtomically(Report.metricsJSON(summary), to: metrics)
            }
            return
        }

        let dataset = try FashionMNIST(directory: directory)
        let recipe = self.recipe
        var train = dataset.train
        if let limitTrain, limitTrain < train.count { train = train.slice(0..<limitTrain) }
        let valSplit = recipe.config.valSplit
        let valCount = Int((Double(train.count) * valSplit).rounded(.down))
        let fit = train.slice(0..<(train.count - valCount))
        let validation = valCount > 0 ? train.slice((train.count - valCount)..<train.count) : nil
        guard fit.count > 0 else { throw FCLFError.invalidArgument("--val-split \(valSplit) leaves no training images") }
        print("data \(directory): \(fit.count) train / \(valCount) validation / \(dataset.test.count) test images; seed \(seed); threads \(threadCount), kernels \(isa), \(blocking)")
        try stopIfInterrupted()

        let stamp = Report.now()
        if compare {
            let dir = report ?? "reports/compare-s\(seed)-\(stamp.stamp)"
            var runs: [RunSummary] = []
            for kind in ModelKind.seedModels {
                let r = recipeTraining(kind)
                let (summary, net) = try trainModel(r, fit: fit, validation: validation, test: dataset.test, isa: isa, threads: threadCount)
                try write(net, summary, suffix: "-" + kind.rawValue)
                runs.append(summary)
                guard !noReport else { continue }
                try stopIfInterrupted()
                try Report.write(summary, test: dataset.test, to: dir + "/" + kind.rawValue)
            }
            guard !noReport else { return }
            try stopIfInterrupted()
            print("comparison written to \(try Report.writeComparison(runs, to: dir))")
            return
        }
        let (summary, net) = try trainModel(recipe, fit: fit, validation: validation, test: dataset.test, isa: isa, threads: threadCount)
        try write(net, summary, suffix: "")
        if !noReport {
            try stopIfInterrupted()
            let dir = report ?? "reports/\(recipe.model.rawValue)-s\(seed)-\(stamp.stamp)"
            print("report written to \(try Report.write(summary, test: dataset.test, to: dir))")
        }
    }

    /// Trains one model with `recipe` (resuming from --checkpoint-dir with --resume) and evaluates it on the test set.
    func trainModel(_ recipe: Recipe, fit: LabeledImages, validation: LabeledImages?, test: LabeledImages, isa: String,
                    threads: Int) throws -> (RunSummary, Sequential) {
        let wallStart = monotonicSeconds()
        let config = recipe.config, kind = recipe.model, epochs = config.epochs
        let run = try TrainingRun(recipe: recipe, fit: fit, validation: validation, checkpointDirectory: checkpointDir,
                              checkpointEvery: checkpointEvery ?? 0)
        print("model \(kind.rawValue): \(run.model.parameterCount) parameters; recipe (preset \(preset.rawValue)): \(config.recipe)"
              + (recipe.keepBest ? ", best epoch kept" : "") + (recipe.calibrate ? ", calibrated" : "")
              + (recipe.temperature.map { ", temperature \(Text.fixed(Double($0), 3)) given" } ?? ""))
        print(run.model.summary)

        let live = isatty(STDOUT_FILENO) != 0
        var lastDraw = 0.0
        run.onEvent = { event in
            switch event {
            case let .batch(epoch, done, total, meanLoss, seconds):
                guard live else { return }
                let now = monotonicSeconds()
                guard now - lastDraw >= 0.2 || done == total else { return }
                lastDraw = now
                let rate = Double(done) / max(seconds, 1e-9)
                let eta = Double(total - done) / max(rate, 1e-9)
                print("\r\u{1B}[Kepoch \(epoch)/\(epochs) \(done)/\(total)  loss \(Text.fixed(meanLoss, 4))  \(Int(rate)) img/s  ETA \(Text.fixed(eta, 1)) s", terminator: "")
                Console.flush()
            case let .epoch(record, best, _):
                var line = "epoch \(record.epoch)/\(epochs)  loss \(Text.fixed(record.trainLoss, 4))  acc \(Text.fixed(record.trainAccuracy, 4))"
                if let l = record.valLoss, let a = record.valAccuracy { line += "  val_loss \(Text.fixed(l, 4))  val_acc \(Text.fixed(a, 4))" }
                line += "  \(Text.fixed(record.seconds, 1)) s  \(Int(record.imagesPerSecond)) img/s"
                if best { line += "  (best so far)" }
                print((live ? "\r\u{1B}[K" : "") + line)
                Console.flush()
            case .checkpoint:
                break
            case let .warning(message):
                Console.flush()
                Console.error("fclf-train: warning: \(message)")
            }
        }
        run.interrupted = { fclf_sigint_count() > 0 }

        if let dir = checkpointDir {
            if resume {
                let path = try run.resume()
                let position = run.batch == run.batchesPerEpoch ? "after epoch \(run.epoch)" : "epoch \(run.epoch), after batch \(run.batch) of \(run.batchesPerEpoch)"
                print("resumed from \(path): \(position), \(Text.fixed(run.trainSeconds + run.epochSeconds, 1)) s of training before")
                for record in run.history {
                    var line = "epoch \(record.epoch)/\(epochs)  loss \(Text.fixed(record.trainLoss, 4))  acc \(Text.fixed(record.trainAccuracy, 4))"
                    if let l = record.valLoss, let a = record.valAccuracy { line += "  val_loss \(Text.fixed(l, 4))  val_acc \(Text.fixed(a, 4))" }
                    print(line + "  (before resuming)" + (run.best?.epoch == record.epoch ? "  (best so far)" : ""))
                }
            }
            print("checkpoints: \(dir) (each epoch's end" + (checkpointEvery.map { " and every \($0) steps" } ?? "") + "; the newest two kept)")
        }
        try stopIfInterrupted(checkpointDir == nil ? "" : " before training; nothing new written")
        switch try run.train() {
        case .finished: break
        case let .interrupted(epoch, batch, checkpoint):
            if live { print("") }
            let at = batch == run.batchesPerEpoch ? "after epoch \(epoch)" : "at epoch \(epoch), batch \(batch) of \(run.batchesPerEpoch)"
            if let checkpoint {
                throw Interrupted(message: " \(at); checkpoint \(checkpoint) written; continue with the same flags and --resume")
            }
            throw Interrupted(message: " \(at); nothing saved (give --checkpoint-dir DIR to be able to resume)")
        }
        let result = try run.finish(test: test)
        print("training: \(Text.fixed(result.trainSeconds, 1)) s, \(Int(result.imagesPerSecond)) images/s")
        if let best = result.kept {
            print("kept epoch \(best.epoch) of \(epochs): best validation accuracy \(Text.fixed(best.accuracy, 4)) (loss \(Text.fixed(best.loss, 4)))")
        }
        if let a = result.averaged {
            var line = "weights averaged over the last \(a.epochs) epoch\(a.epochs == 1 ? "" : "s") (\(a.steps) steps); BatchNorm statistics recomputed in \(Text.fixed(a.batchNormSeconds, 1)) s"
            if let l = a.valLoss, let v = a.valAccuracy {
                line += "; validation accuracy \(Text.fixed(v, 4)) (loss \(Text.fixed(l, 4)))"
                if let last = result.history.last?.valAccuracy { line += ", the last epoch's \(Text.fixed(last, 4))" }
            }
            print(line)
        }
        if let c = result.calibration {
            print("calibration: temperature \(Text.fixed(Double(c.temperature), 3)) \(c.fitted ? "fitted on the validation split" : "given, not fitted"); test expected calibration error (15 bins) \(Text.fixed(c.testECEBefore * 100, 2))% -> \(Text.fixed(c.testECEAfter * 100, 2))%")
        }
        let after = run.lastCheckpoint.map { "; \($0) holds the trained state: rerun with --resume to write the outputs" } ?? ""
        try stopIfInterrupted(" after training" + after)
        let net = result.model
        let evaluation = Trainer(model: net, config: config).evaluate(test)
        printSummary(evaluation)
        record(on: net, evaluation: evaluation, result: result, config: config, isa: isa)
        try stopIfInterrupted(" after training" + after)
        let summary = RunSummary(model: kind.rawValue, parameters: net.parameterCount, config: config, threads: threads, isa: isa,
                                 date: Report.now().display, wallSeconds: monotonicSeconds() - wallStart, trainSeconds: result.trainSeconds,
                                 imagesPerSecond: result.imagesPerSecond, history: result.history, test: evaluation, summary: net.summary,
                                 keptEpoch: result.kept?.epoch, averaged: result.averaged, calibration: result.calibration)
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
