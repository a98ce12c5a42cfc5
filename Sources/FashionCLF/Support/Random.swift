/// SplitMix64 (Steele, Lea, Flood 2014): a small, fast, seeded generator. Every random choice of a run
/// (initial weights, shuffling) comes from one of these, so the same seed gives the same run.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The generator's whole state: `SplitMix64(seed: g.state)` continues exactly where `g` is (checkpoints).
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits, the resolution of a Float.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    /// Uniform in [-limit, limit).
    public mutating func uniform(_ limit: Float) -> Float { (2 * nextUnitFloat() - 1) * limit }
}

/// Initialisers for a weight tensor with the given fans, as in Keras and S4TF.
public enum Initializer: Sendable {
    /// Glorot/Xavier uniform: limit = sqrt(6 / (fanIn + fanOut)). Keras' default, the seed's choice.
    case glorotUniform
    /// He uniform: limit = sqrt(6 / fanIn), suited to ReLU layers.
    case heUniform
    /// Nothing drawn, the weights stay zero: for a network whose values are written next (a model being loaded,
    /// an inference plan taking a trained network's weights), which then costs no draws.
    case zero

    func fill(_ p: UnsafeMutablePointer<Float>, count: Int, fanIn: Int, fanOut: Int, rng: inout SplitMix64) {
        let limit: Float = switch self {
        case .glorotUniform: (6 / Float(fanIn + fanOut)).squareRoot()
        case .heUniform: (6 / Float(fanIn)).squareRoot()
        case .zero: 0
        }
        guard limit > 0 else { return p.update(repeating: 0, count: count) }
        for i in 0..<count { p[i] = rng.uniform(limit) }
    }
}
