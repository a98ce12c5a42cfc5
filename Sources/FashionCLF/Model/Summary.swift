/// A model's summary in the manner of Keras' `model.summary()`: one row per layer with its output shape and
/// parameter count, the plan's step that executes it (fused steps marked), and the total.
public struct ModelSummary: Sendable, CustomStringConvertible {
    public struct Row: Sendable {
        public var index: Int
        public var layer: String
        /// Per-sample output shape, without the batch: [c, h, w] or [features].
        public var outputShape: [Int]
        public var parameters: Int
        /// 1-based index of the plan step that executes this layer, and that step's name.
        public var step: Int
        public var stepName: String
        /// True for every layer of a step that executes more than one layer.
        public var fused: Bool
        /// True for the first layer of its step.
        public var startsStep: Bool
    }

    public let name: String
    public let inputShape: [Int]
    public let rows: [Row]
    public var totalParameters: Int { rows.reduce(0) { $0 + $1.parameters } }
    public var stepCount: Int { rows.last?.step ?? 0 }
    /// Stored values not trained by gradient (BatchNorm's running statistics).
    public let nonTrainable: Int

    public init(name: String, plan: Plan) {
        func dims(_ s: Shape) -> [Int] { s.h == 1 && s.w == 1 ? [s.c] : [s.c, s.h, s.w] }
        self.name = name
        inputShape = dims(plan.inputShape)
        var rows: [Row] = []
        for (k, step) in plan.steps.enumerated() {
            for i in step.layers {
                rows.append(Row(index: i + 1, layer: plan.specs[i].summary, outputShape: dims(plan.layerShapes[i]),
                                parameters: plan.specs[i].parameterCount, step: k + 1, stepName: step.name,
                                fused: step.layers.count > 1, startsStep: i == step.layers.lowerBound))
            }
        }
        self.rows = rows
        nonTrainable = plan.specs.reduce(0) { $0 + $1.nonTrainableCount }
    }

    /// The table as text, one line per layer.
    public var description: String {
        func shape(_ d: [Int]) -> String { "[" + d.map(String.init).joined(separator: ", ") + "]" }
        let header = ["#", "layer", "output shape", "params", "step"]
        var table = [header] + rows.map { r in
            [String(r.index), r.layer, shape(r.outputShape), Text.grouped(r.parameters),
             r.startsStep ? "\(r.step) \(r.stepName)" : "\(r.step) (fused into this step)"]
        }
        let widths = (0..<header.count).map { c in table.map { $0[c].count }.max() ?? 0 }
        table.insert(widths.map { String(repeating: "-", count: $0) }, at: 1)
        var lines = ["Model \"\(name)\": input \(shape(inputShape)), \(rows.count) layers in \(stepCount) steps"]
        for row in table {
            lines.append((0..<row.count).map { Text.pad(row[$0], widths[$0], right: $0 == 0 || $0 == 3) }
                .joined(separator: "  ").trimmingTrailingSpaces())
        }
        lines.append("Total parameters: \(Text.grouped(totalParameters))")
        if nonTrainable > 0 {
            lines.append("Trainable: \(Text.grouped(totalParameters - nonTrainable)), non-trainable (running statistics): \(Text.grouped(nonTrainable))")
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    fileprivate func trimmingTrailingSpaces() -> String {
        var s = self
        while s.last == " " { s.removeLast() }
        return s
    }
}
