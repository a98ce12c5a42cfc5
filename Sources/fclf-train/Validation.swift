import ArgumentParser
import FashionCLF

/// The command line's checks, made before any data loads: every bad value or combination is a usage error
/// (exit 64) that names the flag and the fix.
extension Train {
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
        if let photometricP {
            guard photometricP.isFinite && photometricP >= 0 && photometricP <= 1 else { throw ValidationError("--photometric-p must be in [0, 1] (got \(photometricP))") }
            guard c.augment != nil else { throw ValidationError("--photometric-p needs augmentation: add --augment photo") }
        }
        if let eraseP {
            guard eraseP.isFinite && eraseP >= 0 && eraseP <= 1 else { throw ValidationError("--erase-p must be in [0, 1] (got \(eraseP))") }
            guard c.augment != nil || eraseP == 0 else { throw ValidationError("--erase-p needs augmentation: add --augment photo") }
        }
        if let cleanEpochs {
            guard cleanEpochs >= 0 && cleanEpochs < c.epochs else { throw ValidationError("--clean-epochs must be in 0...\(c.epochs - 1), below --epochs \(c.epochs) (got \(cleanEpochs))") }
            guard c.augment != nil || cleanEpochs == 0 else { throw ValidationError("--clean-epochs needs augmentation: add --augment photo") }
        } else if c.augment != nil && c.cleanEpochs >= c.epochs {
            // A preset's clean epochs would leave no augmented one: refused rather than silently unaugmented.
            throw ValidationError("--preset \(preset.rawValue) trains its last \(c.cleanEpochs) epochs without augmentation, all of the \(c.epochs) asked for; give more --epochs or a smaller --clean-epochs")
        }
        if let averageEpochs {
            guard averageEpochs >= 0 && averageEpochs <= c.epochs else { throw ValidationError("--average-epochs must be in 0...\(c.epochs), at most --epochs \(c.epochs) (got \(averageEpochs))") }
            if averageEpochs > 0 && r.keepBest { throw ValidationError("--keep-best keeps one epoch and --average-epochs averages the last \(averageEpochs); drop one of them") }
        }
        if let averageRate = c.averageRate {
            guard averageRate.isFinite && averageRate > 0 && averageRate <= 1 else { throw ValidationError("--average-rate must be in (0, 1], a fraction of --lr (got \(averageRate))") }
            guard c.averageEpochs > 0 && c.averageEpochs < c.epochs else { throw ValidationError("--average-rate needs --average-epochs N with N in 1...\(c.epochs - 1), below --epochs \(c.epochs)") }
            guard c.warmupEpochs < Double(c.epochs - c.averageEpochs) else {
                throw ValidationError("--warmup-epochs \(c.warmupEpochs) reaches into the \(c.averageEpochs) epochs --average-rate holds; warm up over fewer than \(c.epochs - c.averageEpochs) epochs")
            }
        }
        guard c.valSplit >= 0 && c.valSplit < 1 else { throw ValidationError("--val-split must be in [0, 1) (got \(c.valSplit))") }
        if let threads, threads < 1 || threads > 4096 { throw ValidationError("--threads must be in 1...4096 (got \(threads))") }
        if let limitTrain, limitTrain < 1 { throw ValidationError("--limit-train must be at least 1 (got \(limitTrain))") }
        if let temperature {
            guard Calibration.fittedRange.contains(Double(temperature)) else { throw ValidationError("--temperature must be in \(Calibration.fittedRangeText), the range calibration fits in (got \(temperature))") }
            if noTemperature { throw ValidationError("--temperature and --no-temperature contradict each other; give one of them") }
            if r.calibrate {
                let hint = calibrate == nil ? " (--preset \(preset.rawValue) calibrates\(preset.recipe.calibrate ? "" : " with a validation split"): add --no-calibrate)" : ""
                throw ValidationError("--temperature gives the temperature --calibrate would fit; drop one of them" + hint)
            }
        }
        if (r.keepBest || r.calibrate) && c.valSplit == 0 {
            throw ValidationError("--keep-best and --calibrate work on the validation split; give --val-split > 0 or --no-keep-best --no-calibrate")
        }
        if let checkpointEvery, checkpointEvery < 1 { throw ValidationError("--checkpoint-every must be at least 1 (got \(checkpointEvery))") }
        if checkpointDir == nil && (resume || checkpointEvery != nil) {
            throw ValidationError("--resume and --checkpoint-every need --checkpoint-dir DIR (the folder of the run's checkpoints)")
        }
        if eval != nil {
            if report != nil { throw ValidationError("--eval writes no report (a report is a training run's); drop --report, or use --metrics FILE for the evaluation's figures") }
            if out != nil { throw ValidationError("--eval writes no model; drop --out") }
            if compare || checkpointDir != nil { throw ValidationError("--eval evaluates a saved model; drop --compare, --checkpoint-dir and --resume") }
        }
        if compare {
            if model != nil { throw ValidationError("--compare trains both the cnn and the mlp; drop --model") }
            if checkpointDir != nil { throw ValidationError("--compare takes no checkpoints; drop --checkpoint-dir and --resume, or train one --model at a time") }
        }
    }
}
