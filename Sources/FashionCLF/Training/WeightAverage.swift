import CKernels

/// Stochastic weight averaging (Izmailov, Podoprikhin, Garipov, Vetrov, Wilson 2018): the uniform mean of the
/// trainable parameters over the last optimiser steps of a run,
///
///     w_avg = (1/K) Σ_k w_k      (w_k: the parameters after the k-th averaged step)
///
/// The iterates of the schedule's tail lie around a wide, flat region of the loss; their mean lies nearer its
/// centre than any one of them, and flat minima generalise better. The mean is kept in double (a late step's
/// share, 1/K of a small change, would round away in float). BatchNorm's running statistics are not averaged:
/// they belong to no one set of weights, so the run recomputes them for the mean
/// (`Trainer.recomputeBatchNormStatistics`). Allocated once; `add` allocates nothing.
public final class WeightAverage {
    public let parameters: [Parameter]
    private let means: [Buffer<Double>]
    /// Steps averaged so far (K).
    public private(set) var count = 0

    public init(parameters: [Parameter]) {
        self.parameters = parameters
        means = parameters.map { Buffer<Double>(capacity: $0.count) }
    }

    /// Adds the parameters' current values to the mean.
    public func add() {
        count += 1
        for (p, m) in zip(parameters, means) { fclf_average_update(m.pointer, p.value, Int64(p.count), Int64(count)) }
    }

    /// Writes the mean, rounded to float, into the parameters (nothing when no step was averaged).
    public func apply() {
        guard count > 0 else { return }
        for (p, m) in zip(parameters, means) {
            for i in 0..<p.count { p.value[i] = Float(m.pointer[i]) }
        }
    }

    /// The mean so far (empty before the first averaged step) and K, for checkpoints.
    public var state: (means: [[Double]], count: Int) {
        guard count > 0 else { return ([], 0) }
        return (zip(parameters, means).map { Array(UnsafeBufferPointer(start: $1.pointer, count: $0.count)) }, count)
    }

    /// Whether a saved state fits these parameters: K >= 0, and a mean of each parameter's size when K > 0.
    public func fits(means values: [[Double]], count k: Int) -> Bool {
        k == 0 ? values.isEmpty
            : k > 0 && values.count == parameters.count && zip(values, parameters).allSatisfy { $0.count == $1.count }
    }

    /// Puts back a state taken from an average of the same parameters; throws, changing nothing, when it does
    /// not fit.
    public func restore(means values: [[Double]], count k: Int) throws(FCLFError) {
        guard fits(means: values, count: k) else {
            throw .invalidArgument("the saved weight average (\(values.map(\.count)), \(k) steps) does not fit this model's parameters (\(parameters.map(\.count)))")
        }
        for (v, m) in zip(values, means) { v.withUnsafeBufferPointer { m.pointer.update(from: $0.baseAddress!, count: $0.count) } }
        count = k
    }
}
