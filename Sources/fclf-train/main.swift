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

    @Option(help: "Model to train: cnn (the seed's CNN) or mlp (the seed's MLP baseline).")
    var model: ModelKind = .cnn

    @Option(help: "Passes over the training set.")
    var epochs: Int = 15

    @Option(help: "Images per optimiser step.")
    var batchSize: Int = 32

    @Option(name: .customLong("lr"), help: "Learning rate.")
    var learningRate: Float = 1e-3

    @Option(help: "Optimiser: adam or sgd (SGD with momentum).")
    var optimizer: OptimizerKind = .adam

    @Option(help: "Momentum for --optimizer sgd.")
    var momentum: Float = 0.9

    @Option(help: "Fraction of the training set, taken from its end, held out for validation (0 disables).")
    var valSplit: Double = 0.2

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

    @Flag(help: "Keep the best epoch: the model written and evaluated is the one with the best validation accuracy (ties: the lower validation loss), as Keras' ModelCheckpoint(save_best_only=True). Needs --val-split > 0.")
    var keepBest = false

    @Flag(help: "Write no report folder.")
    var noReport = false

    @Flag(help: "Train the CNN and then the MLP with the same recipe and write both reports and compare.html side by side (in --report or reports/compare-s<seed>-<UTC time>).")
    var compare = false

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1 (got \(epochs))") }
        guard batchSize >= 1 && batchSize <= 65536 else { throw ValidationError("--batch-size must be in 1...65536 (got \(batchSize))") }
        guard learningRate.isFinite && learningRate > 0 else { throw ValidationError("--lr must be a positive finite number (got \(learningRate))") }
        guard momentum.isFinite && momentum >= 0 && momentum < 1 else { throw ValidationError("--momentum must be in [0, 1) (got \(momentum))") }
        guard valSplit >= 0 && valSplit < 1 else { throw ValidationError("--val-split must be in [0, 1) (got \(valSplit))") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1 (got \(threads))") }
        if let limitTrain, limitTrain < 1 { throw ValidationError("--limit-train must be at least 1 (got \(limitTrain))") }
        if keepBest && valSplit == 0 { throw ValidationError("--keep-best chooses the epoch on the validation split; give --val-split > 0") }
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
            print("model \(net.name) from \(eval), \(net.parameterCount) parameters; threads \(threadCount), kernels \(isa)")
            print(net.summary)
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

        var train = dataset.train
        if let limitTrain, limitTrain < train.count { train = train.slice(0..<limitTrain) }
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
                let (summary, _) = trainModel(kind, fit: fit, validation: validation, test: dataset.test, isa: isa, threads: threadCount)
                try Report.write(summary, test: dataset.test, to: dir + "/" + kind.rawValue)
                runs.append(summary)
            }
            print("comparison written to \(try Report.writeComparison(runs, to: dir))")
            return
        }
        let (summary, net) = trainModel(model, fit: fit, validation: validation, test: dataset.test, isa: isa, threads: threadCount)
        if let out {
            try ModelFile.save(net, to: out)
            print("model written to \(out)")
        }
        if let metrics {
            try FileIO.writeAtomically(Report.metricsJSON(summary), to: metrics)
            print("metrics written to \(metrics)")
        }
        if !noReport {
            let dir = report ?? "reports/\(model.rawValue)-s\(seed)-\(stamp.stamp)"
            print("report written to \(try Report.write(summary, test: dataset.test, to: dir))")
        }
    }

    /// Trains one model with the command's recipe and evaluates it on the test set.
    func trainModel(_ kind: ModelKind, fit: LabeledImages, validation: LabeledImages?, test: LabeledImages, isa: String,
               threads: Int) -> (RunSummary, Sequential) {
        let wallStart = monotonicSeconds()
        var config = TrainConfig()
        config.epochs = epochs
        config.batchSize = batchSize
        config.learningRate = learningRate
        config.optimizer = optimizer
        config.momentum = momentum
        config.valSplit = valSplit
        config.seed = seed

        let net = kind.build(seed: seed)
        let trainer = Trainer(model: net, config: config)
        print("model \(kind.rawValue): \(net.parameterCount) parameters; recipe: \(optimizer.rawValue) lr \(learningRate), batch \(batchSize), \(epochs) epochs")
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
        let result = trainer.evaluate(test)
        printSummary(result)
        let summary = RunSummary(model: kind.rawValue, parameters: net.parameterCount, config: config, threads: threads, isa: isa,
                                 date: Report.now().display, wallSeconds: monotonicSeconds() - wallStart, trainSeconds: trainSeconds,
                                 imagesPerSecond: imagesPerSecond, history: history, test: result, summary: net.summary,
                                 keptEpoch: best?.epoch)
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
