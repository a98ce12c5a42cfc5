import CKernels

/// adam: Adam (Keras' defaults); adamw: Adam with decoupled weight decay (biases and 1-D parameters not
/// decayed); sgd: SGD with momentum (Nesterov's with `nesterov`), weight decay added to the gradient.
public enum OptimizerKind: String, CaseIterable, Sendable { case adam, adamw, sgd }

/// How the learning rate moves over the run (`LearningRateSchedule`): constant, cosine to 0, or one-cycle
/// (warm-up to `learningRate` over the first 30% of the steps, then cosine down).
public enum ScheduleKind: String, CaseIterable, Sendable { case constant, cosine, onecycle }

/// The seed study's recipe by default: Adam 1e-3, batch 32, 15 epochs, the last 20% held out; the rest off.
public struct TrainConfig: Sendable {
    public var epochs = 15
    public var batchSize = 32
    /// The base (constant, cosine) or peak (one-cycle) learning rate.
    public var learningRate: Float = 1e-3
    public var optimizer = OptimizerKind.adam
    public var momentum: Float = 0.9
    public var nesterov = false
    public var weightDecay: Float = 0
    public var schedule = ScheduleKind.constant
    /// Linear warm-up steps before a constant or cosine schedule, in epochs.
    public var warmupEpochs = 0.0
    public var labelSmoothing: Float = 0
    /// Training-time augmentation (`fclf_augment_batch`), nil for none; evaluation never augments.
    public var augment: fclf_augment_config? = nil
    /// The last this many epochs train on the images as they are, without `augment`: refining on clean data
    /// after augmented training (He et al. 2019, "Data augmentation revisited") closes the gap between the
    /// augmented training distribution and the clean one the test set has, while the invariances learned
    /// before stay. 0: every epoch augments.
    public var cleanEpochs = 0
    /// Stochastic weight averaging (`WeightAverage`): the model is the mean of the weights after every step of
    /// the last this many epochs, with BatchNorm's statistics recomputed for it. 0: the last step's weights.
    public var averageEpochs = 0
    /// With `averageEpochs`: the averaged epochs' constant learning rate, as a fraction of `learningRate`, the
    /// schedule before them ending there (SWA's own schedule: `LearningRateSchedule.averaging`). nil: the
    /// schedule runs on through them. `TrainingRun` refuses a rate outside (0, 1], one without averaged epochs or
    /// with all of them averaged, and a warm-up reaching into them; `Trainer` takes the config as checked.
    public var averageRate: Float? = nil
    public var valSplit = 0.2
    public var seed: UInt64 = 42
    public init() {}

    /// The learning-rate schedule of a run of `stepsPerEpoch` optimiser steps per epoch.
    public func learningRateSchedule(stepsPerEpoch: Int) -> LearningRateSchedule {
        let base: LearningRateSchedule = switch schedule {
        case .constant: .constant(learningRate)
        case .cosine: .cosine(learningRate)
        case .onecycle: .oneCycle(maxRate: learningRate)
        }
        let warmup = Int((warmupEpochs * Double(stepsPerEpoch)).rounded())
        let warmed = warmup > 0 && schedule != .onecycle ? base.warmup(steps: warmup) : base
        guard let averageRate, averageEpochs > 0 else { return warmed }
        return warmed.averaging(steps: averageEpochs * stepsPerEpoch, fraction: averageRate)
    }

    /// Recipe lines for logs and reports.
    public var recipe: String {
        var parts = ["\(optimizer.rawValue)\(nesterov ? " (nesterov)" : "") lr \(learningRate)", "batch \(batchSize)", "\(epochs) epochs"]
        if schedule != .constant || warmupEpochs > 0 {
            parts.append("\(schedule.rawValue) schedule" + (warmupEpochs > 0 ? ", warm-up \(warmupEpochs) epochs" : ""))
        }
        if weightDecay > 0 { parts.append("weight decay \(weightDecay)") }
        if labelSmoothing > 0 { parts.append("label smoothing \(labelSmoothing)") }
        if let augment {
            parts.append(augment.photometric_p < 1 ? "augmentation (photometric on \(Int((augment.photometric_p * 100).rounded()))% of images)" : "augmentation")
            if augment.erase_p > 0 { parts.append("random erasing on \(Int((augment.erase_p * 100).rounded()))% of images") }
            if cleanEpochs > 0 { parts.append("no augmentation in the last \(cleanEpochs) epoch\(cleanEpochs == 1 ? "" : "s")") }
        }
        if averageEpochs > 0 {
            parts.append("weights averaged over the last \(averageEpochs) epoch\(averageEpochs == 1 ? "" : "s")"
                         + (averageRate.map { " at a constant \($0) of the learning rate" } ?? ""))
        }
        return parts.joined(separator: ", ")
    }
}

public struct EpochRecord: Sendable {
    public var epoch: Int
    public var trainLoss: Double, trainAccuracy: Double
    public var valLoss: Double?, valAccuracy: Double?
    public var seconds: Double
    public var imagesPerSecond: Double

    public init(epoch: Int, trainLoss: Double, trainAccuracy: Double, valLoss: Double?, valAccuracy: Double?,
                seconds: Double, imagesPerSecond: Double) {
        self.epoch = epoch; self.trainLoss = trainLoss; self.trainAccuracy = trainAccuracy
        self.valLoss = valLoss; self.valAccuracy = valAccuracy; self.seconds = seconds
        self.imagesPerSecond = imagesPerSecond
    }
}
