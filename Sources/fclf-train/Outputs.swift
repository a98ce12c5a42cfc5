import FashionCLF
import FashionCLFReport

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a run writes (--out, --metrics) and what its model file records about how it was made.
extension Train {
    /// --out and --metrics, with `suffix` before each file's extension (--compare's one file per model).
    func write(_ net: Sequential, _ summary: RunSummary, suffix: String) throws {
        if let out {
            try stopIfInterrupted()
            let path = Train.suffixed(out, suffix)
            try ModelFile.save(net, to: path)
            print("model written to \(path)")
        }
        if let metrics {
            try stopIfInterrupted()
            let path = Train.suffixed(metrics, suffix)
            try FileIO.writeAtomically(Report.metricsJSON(summary), to: path)
            print("metrics written to \(path)")
        }
    }

    /// What the model file records about itself (fclf_model_metadata, Classifier.metadataJSON). Only what the
    /// model depends on, so that a resumed run writes the same bytes as an uninterrupted one: the command
    /// without the flags that change no weight (outputs, checkpoints, threads), and the creation time from
    /// SOURCE_DATE_EPOCH when set (reproducible-builds.org), else now.
    func record(on net: Sequential, evaluation: Evaluation, result: TrainingRun.Result, config: TrainConfig, isa: String) {
        var recorded: [(String, ModelMetadata.Value)] = [
            ("created", .string(Train.creationTime())), ("test_accuracy", .number(evaluation.accuracy)),
            ("test_loss", .number(evaluation.loss)), ("command", .string(String(Train.reproducingCommand().prefix(4096)))),
            ("preset", .string(preset.rawValue)), ("recipe", .string(config.recipe)),
            ("seed", seed < 1 << 53 ? .number(Double(seed)) : .string(String(seed))), ("epochs", .number(Double(config.epochs))),
            // The variant and KC decide the bits (products are summed in K blocks of at most KC): with both,
            // the command above reproduces the weights bit for bit.
            ("kernels", .string(isa)), ("gemm_kc", .number(Double(GEMMBlocking.active.kc))),
        ] + (result.kept.map { [("kept_epoch", .number(Double($0.epoch))), ("val_accuracy", .number($0.accuracy))] } ?? [])
        if let a = result.averaged {
            recorded += [("average_epochs", .number(Double(a.epochs))), ("average_steps", .number(Double(a.steps)))]
            if let rate = config.averageRate { recorded.append(("average_rate", .number(Double(rate)))) }
            if let v = a.valAccuracy { recorded.append(("val_accuracy", .number(v))) }
        }
        recorded.append(("val_split", .number(config.valSplit)))
        recorded += result.calibration.map { [("temperature", .number(Double($0.temperature))), ("temperature_fitted", .string($0.fitted ? "yes" : "no")),
                                             ("test_ece_before", .number($0.testECEBefore)), ("test_ece_after", .number($0.testECEAfter))] } ?? []
        for (key, value) in recorded {
            if case .number(let x) = value, !x.isFinite { continue }  // a figure that is not a number is left out
            net.metadata[key] = value
        }
    }

    /// The ISO 8601 UTC time a model records as created: SOURCE_DATE_EPOCH's when set, else now.
    static func creationTime() -> String {
        guard let text = getenv("SOURCE_DATE_EPOCH").map({ String(cString: $0) }), let t = time_t(text) else { return Report.now().iso }
        return Report.now(t).iso
    }

    /// This run's command line without the flags that change no weight: outputs, reports, checkpoints, threads.
    static func reproducingCommand() -> String {
        let valued: Set = ["--out", "--metrics", "--report", "--checkpoint-dir", "--checkpoint-every", "--threads"]
        let bare: Set = ["--no-report", "--resume"]
        var kept: [String] = ["fclf-train"], args = CommandLine.arguments.dropFirst()[...]
        while let a = args.popFirst() {
            let name = String(a.split(separator: "=", maxSplits: 1).first ?? "")
            if bare.contains(a) { continue }
            if valued.contains(name) { if !a.contains("=") { _ = args.popFirst() }; continue }
            kept.append(a)
        }
        return kept.joined(separator: " ")
    }

    /// "dir/m.fclf" + "-cnn" = "dir/m-cnn.fclf"; a name without an extension gets the suffix at its end.
    static func suffixed(_ path: String, _ suffix: String) -> String {
        guard !suffix.isEmpty else { return path }
        let name = path.split(separator: "/", omittingEmptySubsequences: false).last ?? ""
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return path + suffix }
        let stem = path.dropLast(name.distance(from: dot, to: name.endIndex))
        return stem + suffix + name[dot...]
    }
}
