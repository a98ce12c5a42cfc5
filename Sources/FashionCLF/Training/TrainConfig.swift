public enum OptimizerKind: String, CaseIterable, Sendable { case adam, sgd }

/// The seed study's recipe by default: Adam 1e-3, batch 32, 15 epochs, the last 20% held out.
public struct TrainConfig: Sendable {
    public var epochs = 15
    public var batchSize = 32
    public var learningRate: Float = 1e-3
    public var optimizer = OptimizerKind.adam
    public var momentum: Float = 0.9
    public var valSplit = 0.2
    public var seed: UInt64 = 42
    public init() {}
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
