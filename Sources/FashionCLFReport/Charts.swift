import FashionCLF

#if canImport(Glibc)
import Glibc
#endif

/// The report's charts, drawn with `SVG`.
public enum Charts {
    public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e"]

    /// About five round tick values covering lo...hi (steps of 1, 2 or 5 times a power of ten).
    public static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        guard hi > lo, lo.isFinite, hi.isFinite else { return [lo] }
        let raw = (hi - lo) / 5
        let p = pow(10, (log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * p }.first { $0 >= raw } ?? 10 * p
        var t = (lo / step).rounded(.up) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(t); t += step }
        return out
    }

    static func label(_ v: Double, _ step: Double) -> String {
        step >= 1 ? String(Int(v.rounded())) : Text.fixed(v, max(0, Int((-log10(step)).rounded(.up))))
    }

    /// One line chart: series of (x, y) points with a legend; axes with ticks and labels.
    public static func lineChart(_ svg: inout SVG, x: Double, y: Double, width: Double, height: Double, title: String,
                                 xLabel: String, series: [(name: String, color: String, dashed: Bool, points: [(Double, Double)])]) {
        // Title, then a legend row, then the plot: the legend never covers a curve.
        let left = x + 56, right = x + width - 12, top = y + 46, bottom = y + height - 40
        let all = series.flatMap { $0.points }
        guard !all.isEmpty else { return }
        var (x0, x1) = (all.map { $0.0 }.min()!, all.map { $0.0 }.max()!)
        var (y0, y1) = (all.map { $0.1 }.min()!, all.map { $0.1 }.max()!)
        if x1 == x0 { x0 -= 1; x1 += 1 }
        let pad = max((y1 - y0) * 0.08, 1e-3)
        y0 -= pad; y1 += pad
        func px(_ v: Double) -> Double { left + (v - x0) / (x1 - x0) * (right - left) }
        func py(_ v: Double) -> Double { bottom - (v - y0) / (y1 - y0) * (bottom - top) }
        svg.text(x + width / 2, y + 16, title, size: 14, anchor: .middle, bold: true)
        let yt = ticks(y0, y1), xt = ticks(x0, x1).filter { $0 == $0.rounded() }
        let ystep = yt.count > 1 ? yt[1] - yt[0] : 1
        for t in yt {
            svg.line(left, py(t), right, py(t), stroke: "#e5e5e5")
            svg.text(left - 6, py(t) + 4, label(t, ystep), size: 11, anchor: .end, fill: "#444")
        }
        for t in xt {
            svg.line(px(t), bottom, px(t), bottom + 4, stroke: "#444")
            svg.text(px(t), bottom + 17, String(Int(t)), size: 11, anchor: .middle, fill: "#444")
        }
        svg.line(left, bottom, right, bottom, stroke: "#444")
        svg.line(left, top, left, bottom, stroke: "#444")
        svg.text((left + right) / 2, bottom + 34, xLabel, size: 12, anchor: .middle, fill: "#444")
        for (i, s) in series.enumerated() {
            svg.polyline(s.points.map { (px($0.0), py($0.1)) }, stroke: s.color, dash: s.dashed ? "6 4" : nil)
            for p in s.points { svg.circle(px(p.0), py(p.1), 2.5, fill: s.color) }
            let lx = left + 10 + Double(i) * 110, ly = y + 32
            svg.line(lx, ly, lx + 20, ly, stroke: s.color, width: 2, dash: s.dashed ? "6 4" : nil)
            svg.text(lx + 25, ly + 4, s.name, size: 11, fill: "#222")
        }
    }

    /// Loss and accuracy per epoch, train and validation, side by side.
    public static func curves(_ history: [EpochRecord], width: Double = 900, height: Double = 320) -> SVG {
        var svg = SVG(width: width, height: height)
        let e = history.map { Double($0.epoch) }
        func series(_ train: [Double], _ val: [Double?]) -> [(name: String, color: String, dashed: Bool, points: [(Double, Double)])] {
            var out = [(name: "train", color: palette[0], dashed: false, points: Array(zip(e, train)))]
            let v = zip(e, val).compactMap { a, b in b.map { (a, $0) } }
            if !v.isEmpty { out.append((name: "validation", color: palette[1], dashed: true, points: v)) }
            return out
        }
        lineChart(&svg, x: 0, y: 0, width: width / 2, height: height, title: "Loss", xLabel: "epoch",
                  series: series(history.map(\.trainLoss), history.map(\.valLoss)))
        lineChart(&svg, x: width / 2, y: 0, width: width / 2, height: height, title: "Accuracy", xLabel: "epoch",
                  series: series(history.map(\.trainAccuracy), history.map(\.valAccuracy)))
        return svg
    }

    /// The confusion matrix as a heatmap: rows actual, columns predicted, the count in every cell, colour by
    /// the share of the row (so each class's errors show whatever its size).
    public static func confusion(_ m: [[Int]], names: [String], title: String = "Confusion matrix", cell: Double = 44) -> SVG {
        let k = m.count
        let left = 110.0, top = 40.0, bottomSpace = 96.0
        var svg = SVG(width: left + Double(k) * cell + 20, height: top + Double(k) * cell + bottomSpace)
        svg.text(left + Double(k) * cell / 2, 20, title, size: 14, anchor: .middle, bold: true)
        for i in 0..<k {
            let total = max(1, m[i].reduce(0, +))
            for j in 0..<k {
                let share = Double(m[i][j]) / Double(total)
                // White to dark blue.
                let r = Int(255 - share * (255 - 8)), g = Int(255 - share * (255 - 48)), b = Int(255 - share * (255 - 107))
                let fill = "rgb(\(r),\(g),\(b))"
                let x = left + Double(j) * cell, y = top + Double(i) * cell
                svg.rect(x, y, cell, cell, fill: fill, stroke: "#ffffff",
                         title: "actual \(names[i]), predicted \(names[j]): \(m[i][j])")
                svg.text(x + cell / 2, y + cell / 2 + 4, String(m[i][j]), size: 11, anchor: .middle,
                         fill: share > 0.5 ? "#ffffff" : "#222", bold: i == j)
            }
            svg.text(left - 6, top + Double(i) * cell + cell / 2 + 4, names[i], size: 11, anchor: .end)
        }
        for j in 0..<k {
            let x = left + Double(j) * cell + cell / 2, y = top + Double(k) * cell + 10
            svg.text(x, y, names[j], size: 11, anchor: .end, rotate: -40)
        }
        svg.text(14, top + Double(k) * cell / 2, "actual", size: 12, anchor: .middle, fill: "#444", rotate: -90)
        svg.text(left + Double(k) * cell / 2, top + Double(k) * cell + bottomSpace - 6, "predicted", size: 12, anchor: .middle, fill: "#444")
        return svg
    }

    /// Per-class F1 of several runs as grouped bars.
    public static func f1Bars(_ runs: [(name: String, f1: [Double])], names: [String], width: Double = 900, height: Double = 300) -> SVG {
        var svg = SVG(width: width, height: height)
        let left = 50.0, right = width - 10, top = 48.0, bottom = height - 70
        svg.text(width / 2, 18, "F1 per class", size: 14, anchor: .middle, bold: true)
        for t in stride(from: 0.0, through: 1.0, by: 0.2) {
            let y = bottom - t * (bottom - top)
            svg.line(left, y, right, y, stroke: "#e5e5e5")
            svg.text(left - 6, y + 4, Text.fixed(t, 1), size: 11, anchor: .end, fill: "#444")
        }
        let group = (right - left) / Double(names.count), bar = group * 0.8 / Double(max(1, runs.count))
        for (c, name) in names.enumerated() {
            for (r, run) in runs.enumerated() {
                let v = run.f1[c], x = left + Double(c) * group + group * 0.1 + Double(r) * bar
                svg.rect(x, bottom - v * (bottom - top), bar - 2, v * (bottom - top), fill: palette[r % palette.count],
                         title: "\(run.name) \(name): F1 \(Text.fixed(v, 3))")
            }
            svg.text(left + (Double(c) + 0.5) * group, bottom + 12, name, size: 11, anchor: .end, rotate: -30)
        }
        svg.line(left, bottom, right, bottom, stroke: "#444")
        for (r, run) in runs.enumerated() {  // legend row between the title and the plot
            let lx = left + 10 + Double(r) * 110
            svg.rect(lx, 27, 12, 10, fill: palette[r % palette.count])
            svg.text(lx + 18, 36, run.name, size: 11)
        }
        return svg
    }
}
