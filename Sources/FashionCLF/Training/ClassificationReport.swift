/// Per-class precision, recall, F1 and support from a confusion matrix (rows actual, columns predicted),
/// with macro and support-weighted averages, as scikit-learn's classification_report.
public struct ClassificationReport: Sendable {
    public struct Row: Sendable {
        public var precision, recall, f1: Double
        public var support: Int
    }

    public let names: [String]
    public let rows: [Row]
    public let accuracy: Double
    public let macro: Row
    public let weighted: Row

    public init(confusion: [[Int]], names: [String]) {
        let k = confusion.count
        var rows: [Row] = []
        for c in 0..<k {
            let tp = Double(confusion[c][c])
            let predicted = Double((0..<k).reduce(0) { $0 + confusion[$1][c] })
            let support = confusion[c].reduce(0, +)
            let precision = predicted > 0 ? tp / predicted : 0
            let recall = support > 0 ? tp / Double(support) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            rows.append(Row(precision: precision, recall: recall, f1: f1, support: support))
        }
        let total = rows.reduce(0) { $0 + $1.support }
        func average(_ weight: (Row) -> Double) -> Row {
            let wsum = rows.reduce(0.0) { $0 + weight($1) }
            func avg(_ f: (Row) -> Double) -> Double { wsum > 0 ? rows.reduce(0.0) { $0 + weight($1) * f($1) } / wsum : 0 }
            return Row(precision: avg { $0.precision }, recall: avg { $0.recall }, f1: avg { $0.f1 }, support: total)
        }
        self.names = names
        self.rows = rows
        self.macro = average { _ in 1 }
        self.weighted = average { Double($0.support) }
        self.accuracy = total > 0 ? Double((0..<k).reduce(0) { $0 + confusion[$1][$1] }) / Double(total) : 0
    }

    public var text: String {
        let width = max(12, (names.map(\.count).max() ?? 0) + 2)
        var s = Text.pad("", width) + Text.pad("precision", 10, right: true) + Text.pad("recall", 10, right: true)
            + Text.pad("f1-score", 10, right: true) + Text.pad("support", 10, right: true) + "\n\n"
        func line(_ name: String, _ r: Row) -> String {
            Text.pad(name, width) + Text.pad(Text.fixed(r.precision, 4), 10, right: true)
                + Text.pad(Text.fixed(r.recall, 4), 10, right: true) + Text.pad(Text.fixed(r.f1, 4), 10, right: true)
                + Text.pad(String(r.support), 10, right: true) + "\n"
        }
        for (name, r) in zip(names, rows) { s += line(name, r) }
        s += "\n" + Text.pad("accuracy", width) + Text.pad("", 20) + Text.pad(Text.fixed(accuracy, 4), 10, right: true)
            + Text.pad(String(macro.support), 10, right: true) + "\n"
        s += line("macro avg", macro) + line("weighted avg", weighted)
        return s
    }

    /// The matrix as a table, rows actual, columns predicted (numbered as the class list).
    public static func confusionText(_ confusion: [[Int]], names: [String]) -> String {
        let width = max(6, (confusion.flatMap { $0 }.max() ?? 0).description.count + 2)
        let nameWidth = (names.map(\.count).max() ?? 0) + 6
        var s = Text.pad("actual \\ predicted", nameWidth)
        for j in 0..<confusion.count { s += Text.pad(String(j), width, right: true) }
        s += "\n"
        for (i, row) in confusion.enumerated() {
            s += Text.pad("\(i) \(names[i])", nameWidth)
            for v in row { s += Text.pad(String(v), width, right: true) }
            s += "\n"
        }
        return s
    }
}
