#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A learning rate as a function of the optimiser step: `rate(step:totalSteps:)`, the step counted from 0 and
/// `totalSteps` the number of steps of the whole run (epochs × batches per epoch). Pure arithmetic in Double,
/// rounded to Float once; the same arguments always give the same rate.
///
/// Shapes (T = totalSteps, s = the step clamped to 0...T-1, so a step past the end keeps the last rate):
/// - ``constant(_:)``: the base rate r.
/// - ``cosine(_:finalFraction:)``: r_min + (r - r_min) (1 + cos(π s / (T-1))) / 2 with r_min = finalFraction · r:
///   r at step 0, exactly r_min at the last step T-1 (PyTorch's CosineAnnealingLR with T_max = T-1).
/// - ``oneCycle(maxRate:warmupFraction:divFactor:finalDivFactor:warmup:)``: Smith & Topin's one-cycle policy as
///   PyTorch's OneCycleLR (three_phase false) computes it. With r0 = maxRate / divFactor and
///   r_min = r0 / finalDivFactor, and the peak step P = warmupFraction · T - 1 (a real number):
///   for s <= P, anneal(r0, maxRate, s / P); after it, anneal(maxRate, r_min, (s - P) / (T - 1 - P)), where
///   anneal is cosine, a + (b - a) (1 - cos(π x)) / 2, for the fall; and for the rise cosine too, or linear,
///   a + (b - a) x, with `warmup: .linear`. Defaults are PyTorch's: warmupFraction (pct_start) 0.3,
///   divFactor 25, finalDivFactor 1e4 (so the run ends at maxRate / 2.5e5), cosine rise.
///   It starts at r0 (step 0), reaches maxRate at step P (when P is a whole number) and ends at r_min (T-1).
///
/// ``averaging(steps:fraction:)`` holds the last H steps at f · r, stochastic weight averaging's constant rate
/// (Izmailov et al. 2018), and makes the shape before them (over T - H steps, a warm-up's included) end there:
/// cosine with finalFraction f, one-cycle with r_min = f · r (to Float rounding of its final division factor); a
/// constant shape drops to f · r. H >= T holds every step but the first.
///
/// ``warmup(steps:)`` puts W linear warm-up steps in front of any of them: for s < W the rate is
/// inner(0) · (s + 1) / (W + 1) (PyTorch's LinearLR with start_factor 1/(W+1) and total_iters W: never 0,
/// rising to the inner schedule's first rate at step W), then inner(s - W) over the remaining T - W steps
/// (T - H - W with H held steps).
/// So `.cosine(1e-3).warmup(steps: 500)` ramps up for 500 steps, then decays by a cosine over the rest.
public struct LearningRateSchedule: Sendable, Hashable, CustomStringConvertible {
    /// How a one-cycle schedule rises to its maximum.
    public enum Annealing: String, Sendable, Hashable { case linear, cosine }

    public enum Shape: Sendable, Hashable {
        case constant
        /// To `finalFraction` of the base rate.
        case cosine(finalFraction: Float)
        case oneCycle(warmupFraction: Float, divFactor: Float, finalDivFactor: Float, warmup: Annealing)
    }

    /// The constant and cosine schedules' starting rate; a one-cycle schedule's maximum.
    public var baseRate: Float
    public var shape: Shape
    /// Linear warm-up steps in front of the shape (0: none).
    public var warmupSteps: Int
    /// Steps at the end held at `holdFraction` of the base rate (0: none).
    public var holdSteps: Int
    public var holdFraction: Float

    public init(baseRate: Float, shape: Shape, warmupSteps: Int = 0, holdSteps: Int = 0, holdFraction: Float = 1) {
        precondition(warmupSteps >= 0 && holdSteps >= 0, "warm-up and held steps must be >= 0")
        precondition(holdFraction > 0 && holdFraction <= 1, "the held rate's fraction must lie in (0, 1]")
        if case let .oneCycle(fraction, div, finalDiv, _) = shape {
            precondition(fraction > 0 && fraction < 1, "the one-cycle warm-up fraction must lie in (0, 1)")
            precondition(div > 0 && finalDiv > 0, "the one-cycle division factors must be positive")
        }
        self.baseRate = baseRate
        self.shape = shape
        self.warmupSteps = warmupSteps
        self.holdSteps = holdSteps
        self.holdFraction = holdFraction
    }

    public static func constant(_ rate: Float) -> LearningRateSchedule {
        LearningRateSchedule(baseRate: rate, shape: .constant)
    }

    public static func cosine(_ rate: Float, finalFraction: Float = 0) -> LearningRateSchedule {
        LearningRateSchedule(baseRate: rate, shape: .cosine(finalFraction: finalFraction))
    }

    public static func oneCycle(maxRate: Float, warmupFraction: Float = 0.3, divFactor: Float = 25,
                                finalDivFactor: Float = 1e4, warmup: Annealing = .cosine) -> LearningRateSchedule {
        LearningRateSchedule(baseRate: maxRate, shape: .oneCycle(warmupFraction: warmupFraction, divFactor: divFactor,
                                                                 finalDivFactor: finalDivFactor, warmup: warmup))
    }

    /// This schedule with `steps` linear warm-up steps in front (replacing any it had).
    public func warmup(steps: Int) -> LearningRateSchedule {
        LearningRateSchedule(baseRate: baseRate, shape: shape, warmupSteps: steps, holdSteps: holdSteps, holdFraction: holdFraction)
    }

    /// This schedule with its last `steps` steps held at `fraction` of the base rate, the shape before them
    /// ending at that rate (stochastic weight averaging's constant phase).
    public func averaging(steps: Int, fraction: Float) -> LearningRateSchedule {
        let shaped: Shape = switch shape {
        case .constant: .constant
        case .cosine: .cosine(finalFraction: fraction)
        case let .oneCycle(warmupFraction, div, _, up):  // r_min = (r / div) / finalDiv = fraction r
            .oneCycle(warmupFraction: warmupFraction, divFactor: div, finalDivFactor: 1 / (fraction * div), warmup: up)
        }
        return LearningRateSchedule(baseRate: baseRate, shape: shaped, warmupSteps: warmupSteps, holdSteps: steps,
                                    holdFraction: fraction)
    }

    /// The learning rate of step `step` (from 0) of a run of `totalSteps` steps.
    public func rate(step: Int, totalSteps: Int) -> Float {
        let all = max(totalSteps, 1), clamped = min(max(step, 0), all - 1)
        let held = min(holdSteps, all - 1)
        if held > 0 && clamped >= all - held { return Float(Double(baseRate) * Double(holdFraction)) }
        let total = all - held, s = clamped
        let w = min(warmupSteps, total - 1)
        if s < w { return Float(shaped(0, total - w) * Double(s + 1) / Double(w + 1)) }
        return Float(shaped(s - w, total - w))
    }

    /// The shape at step s of n (0 <= s < n), in Double.
    private func shaped(_ s: Int, _ n: Int) -> Double {
        let r = Double(baseRate), last = Double(n - 1)
        switch shape {
        case .constant:
            return r
        case let .cosine(finalFraction):
            guard n > 1 else { return r }
            let low = r * Double(finalFraction)
            return Self.anneal(.cosine, from: r, to: low, Double(s) / last)
        case let .oneCycle(fraction, div, finalDiv, warmup):
            let r0 = r / Double(div), low = r0 / Double(finalDiv)
            let peak = Double(fraction) * Double(n) - 1
            let x = Double(s)
            // PyTorch: the rise while s <= P; a P below 0 (too few steps) has no rise.
            if x <= peak && peak > 0 { return Self.anneal(warmup, from: r0, to: r, x / peak) }
            let start = max(peak, 0)
            guard last > start else { return r }
            return Self.anneal(.cosine, from: r, to: low, (x - start) / (last - start))
        }
    }

    private static func anneal(_ how: Annealing, from a: Double, to b: Double, _ x: Double) -> Double {
        switch how {
        case .linear: return a + (b - a) * x
        case .cosine: return b + (a - b) / 2 * (cos(Double.pi * x) + 1)
        }
    }

    public var description: String {
        let warm = (warmupSteps > 0 ? " after \(warmupSteps) warm-up steps" : "")
            + (holdSteps > 0 ? ", then \(holdFraction) of it for the last \(holdSteps) steps" : "")
        switch shape {
        case .constant: return "constant \(baseRate)\(warm)"
        case let .cosine(f): return "cosine from \(baseRate) to \(f) of it\(warm)"
        case let .oneCycle(fraction, div, finalDiv, up):
            return "one-cycle to \(baseRate) (\(up.rawValue) rise over \(fraction), div \(div), final div \(finalDiv))\(warm)"
        }
    }
}
