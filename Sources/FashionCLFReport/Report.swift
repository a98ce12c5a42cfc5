import FashionCLF

#if canImport(Glibc)
import Glibc
#endif

/// Everything a training run produced that its report shows.
public struct RunSummary: Sendable {
    public var model: String
    public var parameters: Int
    public var config: TrainConfig
    public var threads: Int
    public var isa: String
    /// "YYYY-MM-DD HH:MM UTC" of the run's start.
    public var date: String
    public var wallSeconds: Double
    public var trainSeconds: Double
    public var imagesPerSecond: Double
    public var history: [EpochRecord]
    public var test: Evaluation
    /// The model's layers, output shapes, parameters and plan steps.
    public var summary: ModelSummary?
    /// The epoch whose weights were kept (--keep-best: best validation accuracy), if not the last.
    public var keptEpoch: Int?
    /// The weight average the model is (--average-epochs), with its validation figures.
    public var averaged: TrainingRun.Averaged?
    /// The temperature fitted on the validation split (or given), and the test set's calibration error before and after.
    public var calibration: Calibration.Result?

    public init(model: String, parameters: Int, config: TrainConfig, threads: Int, isa: String, date: String,
                wallSeconds: Double, trainSeconds: Double, imagesPerSecond: Double, history: [EpochRecord], test: Evaluation,
                summary: ModelSummary? = nil, keptEpoch: Int? = nil, averaged: TrainingRun.Averaged? = nil,
                calibration: Calibration.Result? = nil) {
        self.model = model; self.parameters = parameters; self.config = config; self.threads = threads; self.isa = isa
        self.date = date; self.wallSeconds = wallSeconds; self.trainSeconds = trainSeconds
        self.imagesPerSecond = imagesPerSecond; self.history = history; self.test = test; self.summary = summary
        self.keptEpoch = keptEpoch; self.averaged = averaged; self.calibration = calibration
    }

    public var classReport: ClassificationReport { ClassificationReport(confusion: test.confusion, names: FashionMNIST.classNames) }
}

/// The run's report: report.html (self-contained: inline SVG, PNGs as base64) and the same figures as
/// files (curves.svg, confusion.svg, samples.png, mistakes.png) beside metrics.json.
public enum Report {
    /// UTC now as "YYYY-MM-DD HH:MM UTC" and as "YYYYMMDD-HHMMSS" (for folder names).
    /// The UTC time for a page ("2026-11-26 13:40 UTC"), a file name ("20261126-134005") and metadata
    /// (ISO 8601, "2026-11-26T13:40:05Z"): now, or `t` seconds since 1970.
    public static func now(_ t: time_t = time(nil)) -> (display: String, stamp: String, iso: String) {
        var t = t
        var tm = tm()
        gmtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let y = "\(tm.tm_year + 1900)", mo = two(tm.tm_mon + 1), d = two(tm.tm_mday), h = two(tm.tm_hour), mi = two(tm.tm_min), s = two(tm.tm_sec)
        return ("\(y)-\(mo)-\(d) \(h):\(mi) UTC", "\(y)\(mo)\(d)-\(h)\(mi)\(s)", "\(y)-\(mo)-\(d)T\(h):\(mi):\(s)Z")
    }

    /// Creates a folder and its parents.
    public static func makeDirectory(_ path: String) throws(FCLFError) {
        var partial = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            partial += "/" + part
            if mkdir(partial, 0o755) != 0 && errno != EEXIST {
                throw .io(path: partial, reason: "cannot create the folder: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The --metrics file's schema (docs/json.md); raised when a field changes meaning or goes away.
    public static let metricsSchemaVersion = 1

    public static func metricsJSON(_ s: RunSummary) -> String {
        let report = s.classReport
        func j(_ x: Double) -> String { Text.json(x) }
        var out = "{\n  \"schema_version\": \(metricsSchemaVersion),\n"
        out += "  \"model\": \(Text.json(s.model)),\n  \"parameters\": \(s.parameters),\n"
        out += "  \"epochs\": \(s.history.count),\n  \"batch_size\": \(s.config.batchSize),\n  \"learning_rate\": \(j(Double(s.config.learningRate))),\n"
        out += "  \"optimizer\": \(Text.json(s.config.optimizer.rawValue)),\n  \"val_split\": \(j(s.config.valSplit)),\n"
        out += "  \"seed\": \(s.config.seed),\n  \"threads\": \(s.threads),\n  \"isa\": \(Text.json(s.isa)),\n  \"date\": \(Text.json(s.date)),\n"
        out += "  \"kept_epoch\": \(s.keptEpoch.map(String.init) ?? "null"),\n  \"average_epochs\": \(s.config.averageEpochs),\n"
        if let a = s.averaged {
            out += "  \"average_rate\": \(s.config.averageRate.map { j(Double($0)) } ?? "null"),\n  \"average_steps\": \(a.steps),\n  \"average_val_accuracy\": \(a.valAccuracy.map(j) ?? "null"),\n  \"average_val_loss\": \(a.valLoss.map(j) ?? "null"),\n"
        }
        if let cal = s.calibration {
            out += "  \"temperature\": \(j(Double(cal.temperature))),\n  \"temperature_fitted\": \(cal.fitted),\n  \"test_ece_before\": \(j(cal.testECEBefore)),\n  \"test_ece_after\": \(j(cal.testECEAfter)),\n"
        }
        out += "  \"test_accuracy\": \(j(s.test.accuracy)),\n  \"test_loss\": \(j(s.test.loss)),\n"
        out += "  \"wall_seconds\": \(j(s.wallSeconds)),\n  \"train_seconds\": \(j(s.trainSeconds)),\n  \"train_images_per_second\": \(j(s.imagesPerSecond)),\n"
        out += "  \"per_class\": [\n" + zip(report.names, report.rows).map { name, r in
            "    {\"class\": \(Text.json(name)), \"precision\": \(j(r.precision)), \"recall\": \(j(r.recall)), \"f1\": \(j(r.f1)), \"support\": \(r.support)}"
        }.joined(separator: ",\n") + "\n  ],\n"
        out += "  \"macro_avg\": {\"precision\": \(j(report.macro.precision)), \"recall\": \(j(report.macro.recall)), \"f1\": \(j(report.macro.f1))},\n"
        out += "  \"weighted_avg\": {\"precision\": \(j(report.weighted.precision)), \"recall\": \(j(report.weighted.recall)), \"f1\": \(j(report.weighted.f1))},\n"
        out += "  \"confusion_matrix\": [\n" + s.test.confusion.map { "    [" + $0.map(String.init).joined(separator: ", ") + "]" }.joined(separator: ",\n") + "\n  ],\n"
        out += "  \"history\": [\n" + s.history.map { e in
            "    {\"epoch\": \(e.epoch), \"train_loss\": \(j(e.trainLoss)), \"train_accuracy\": \(j(e.trainAccuracy)), "
                + "\"val_loss\": \(e.valLoss.map(j) ?? "null"), \"val_accuracy\": \(e.valAccuracy.map(j) ?? "null"), "
                + "\"seconds\": \(j(e.seconds)), \"images_per_second\": \(j(e.imagesPerSecond))}"
        }.joined(separator: ",\n") + "\n  ]\n}\n"
        return out
    }

    /// A grid of test images, each enlarged 3x with its predicted and actual class; wrong ones framed red.
    public static func grid(_ indices: [Int], _ test: LabeledImages, _ eval: Evaluation, columns: Int = 8) throws(FCLFError) -> Raster {
        let font = try Raster.Font(size: 11)
        let cellW = 124, cellH = 84 + 44
        let rows = max(1, (indices.count + columns - 1) / columns)
        var r = Raster(width: columns * cellW, height: rows * cellH)
        for (n, i) in indices.enumerated() {
            let x = (n % columns) * cellW, y = (n / columns) * cellH
            let pred = Int(eval.predictions[i]), actual = Int(test.label(i))
            if pred != actual { r.frame(x + 1, y + 1, cellW - 2, cellH - 2, (210, 40, 40)) }
            r.gray(test.image(i), at: x + 20, y + 6, scale: 3)
            r.text("\(FashionMNIST.classNames[pred]) \(Text.fixed(Double(eval.confidences[i]) * 100, 0))%", at: x + 8, y + 104,
                   color: pred == actual ? 0x202020 : 0xC02020, font: font)
            r.text("true: \(FashionMNIST.classNames[actual])", at: x + 8, y + 119, color: 0x606060, font: font)
        }
        return r
    }

    static let css = """
        body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
        h1{font-size:24px;margin-bottom:4px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
        table{border-collapse:collapse;font-size:14px}td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:right}
        th:first-child,td:first-child{text-align:left}.meta td{text-align:left}.big{font-size:20px;font-weight:bold}
        .row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}svg,img{max-width:100%;height:auto}
        .wrong{color:#c02020}.note{color:#666;font-size:13px}
        """

    static func reportTable(_ s: RunSummary) -> String {
        let r = s.classReport
        var h = "<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>\n"
        func row(_ name: String, _ x: ClassificationReport.Row) -> String {
            "<tr><td>\(SVG.escape(name))</td><td>\(Text.fixed(x.precision, 4))</td><td>\(Text.fixed(x.recall, 4))</td><td>\(Text.fixed(x.f1, 4))</td><td>\(x.support)</td></tr>\n"
        }
        for (name, x) in zip(r.names, r.rows) { h += row(name, x) }
        h += "<tr><td><b>accuracy</b></td><td></td><td></td><td><b>\(Text.fixed(r.accuracy, 4))</b></td><td>\(r.macro.support)</td></tr>\n"
        h += row("macro avg", r.macro) + row("weighted avg", r.weighted) + "</table>\n"
        return h
    }

    static func meta(_ s: RunSummary) -> String {
        let c = s.config
        let rows: [(String, String)] = [
            ("model", "\(s.model) (\(s.parameters) parameters)"),
            ("recipe", "\(c.recipe), validation split \(c.valSplit)"),
            ("model kept", s.keptEpoch.map { "epoch \($0) of \(s.history.count) (best validation accuracy)" }
                ?? (c.averageEpochs > 0 ? "the mean of the weights of the last \(c.averageEpochs) epoch\(c.averageEpochs == 1 ? "" : "s") (stochastic weight averaging)"
                    + (s.averaged?.valAccuracy.map { ", validation accuracy \(Text.fixed($0, 4))" } ?? "") : "the last epoch")),
            ("calibration", s.calibration.map { "temperature \(Text.fixed(Double($0.temperature), 3))\($0.fitted ? "" : " (given)"); expected calibration error on the test set \(Text.fixed($0.testECEBefore * 100, 2))% before, \(Text.fixed($0.testECEAfter * 100, 2))% after" } ?? "none"),
            ("seed", "\(c.seed)"), ("threads", "\(s.threads) (kernels: \(s.isa))"), ("date", s.date),
            ("wall time", "\(Text.fixed(s.wallSeconds, 1)) s (training \(Text.fixed(s.trainSeconds, 1)) s, \(Int(s.imagesPerSecond)) images/s)"),
            ("test", "accuracy \(Text.fixed(s.test.accuracy * 100, 2))%, loss \(Text.fixed(s.test.loss, 4)) on \(s.test.count) images"),
        ]
        return "<table class=\"meta\">" + rows.map { "<tr><td><b>\($0.0)</b></td><td>\(SVG.escape($0.1))</td></tr>" }.joined() + "</table>\n"
    }

    /// Writes the run's report into `dir` (created if needed); returns the path of report.html.
    @discardableResult
    public static func write(_ s: RunSummary, test: LabeledImages, to dir: String) throws(FCLFError) -> String {
        try makeDirectory(dir)
        let curves = Charts.curves(s.history), confusion = Charts.confusion(s.test.confusion, names: FashionMNIST.classNames)
        // 32 samples spread over the test set, and the 16 mistakes the model was surest of.
        let samples = (0..<32).map { $0 * max(1, test.count / 32) }.filter { $0 < test.count }
        let mistakes = (0..<test.count).filter { Int(s.test.predictions[$0]) != Int(test.label($0)) }
            .sorted { s.test.confidences[$0] > s.test.confidences[$1] }.prefix(16)
        let samplesPNG = try grid(samples, test, s.test).png(), mistakesPNG = try grid(Array(mistakes), test, s.test).png()
        try FileIO.writeAtomically(curves.render(standalone: true), to: dir + "/curves.svg")
        try FileIO.writeAtomically(confusion.render(standalone: true), to: dir + "/confusion.svg")
        try FileIO.writeAtomically(samplesPNG, to: dir + "/samples.png")
        try FileIO.writeAtomically(mistakesPNG, to: dir + "/mistakes.png")
        try FileIO.writeAtomically(metricsJSON(s), to: dir + "/metrics.json")
        var h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>fashionclf \(SVG.escape(s.model)) report</title>\n"
        h += "<style>\(css)</style></head><body>\n"
        h += "<h1>fashionclf: \(SVG.escape(s.model.uppercased())) on Fashion-MNIST</h1>\n"
        h += "<p class=\"big\">Test accuracy \(Text.fixed(s.test.accuracy * 100, 2))%</p>\n" + meta(s)
        if let summary = s.summary {
            h += "<h2>Model</h2>\n<pre>\(SVG.escape(summary.description))</pre>\n"
        }
        h += "<h2>Learning curves</h2>\n" + curves.render()
        h += "<h2>Confusion matrix</h2>\n<div class=\"row\"><div>" + confusion.render() + "</div><div>"
        h += "<h3>Classification report</h3>\n" + reportTable(s) + "</div></div>\n"
        h += "<h2>Sample test images</h2>\n<p class=\"note\">Predicted class and its probability, then the true class; wrong predictions are framed in red.</p>\n"
        h += "<img alt=\"sample test images\" src=\"data:image/png;base64,\(base64(samplesPNG))\"/>\n"
        h += "<h2>Most confident mistakes</h2>\n"
        // No mistakes: say so, rather than show an empty (white) grid.
        h += mistakes.isEmpty ? "<p class=\"note\">None: all \(test.count) test images are classified right.</p>\n"
            : "<img alt=\"most confident mistakes\" src=\"data:image/png;base64,\(base64(mistakesPNG))\"/>\n"
        h += "</body></html>\n"
        let path = dir + "/report.html"
        try FileIO.writeAtomically(h, to: path)
        return path
    }

    /// One page with several runs side by side (the CNN and the MLP).
    @discardableResult
    public static func writeComparison(_ runs: [RunSummary], to dir: String) throws(FCLFError) -> String {
        try makeDirectory(dir)
        var h = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><title>fashionclf comparison</title>\n<style>\(css)</style></head><body>\n"
        h += "<h1>fashionclf: " + runs.map { SVG.escape($0.model.uppercased()) }.joined(separator: " vs ") + "</h1>\n"
        h += "<table><tr><th></th>" + runs.map { "<th>\(SVG.escape($0.model))</th>" }.joined() + "</tr>\n"
        let rows: [(String, (RunSummary) -> String)] = [
            ("test accuracy", { Text.fixed($0.test.accuracy * 100, 2) + "%" }), ("test loss", { Text.fixed($0.test.loss, 4) }),
            ("macro F1", { Text.fixed($0.classReport.macro.f1, 4) }), ("parameters", { "\($0.parameters)" }),
            ("training time", { Text.fixed($0.trainSeconds, 1) + " s" }), ("training images/s", { "\(Int($0.imagesPerSecond))" }),
            ("epochs", { "\($0.history.count)" }), ("seed", { "\($0.config.seed)" }), ("threads", { "\($0.threads)" }),
        ]
        for (name, f) in rows { h += "<tr><td>\(name)</td>" + runs.map { "<td>\(SVG.escape(f($0)))</td>" }.joined() + "</tr>\n" }
        h += "</table>\n<h2>F1 per class</h2>\n"
        let bars = Charts.f1Bars(runs.map { (name: $0.model, f1: $0.classReport.rows.map(\.f1)) }, names: FashionMNIST.classNames)
        try FileIO.writeAtomically(bars.render(standalone: true), to: dir + "/f1.svg")
        h += bars.render() + "<h2>Confusion matrices</h2>\n<div class=\"row\">"
        for r in runs { h += "<div>" + Charts.confusion(r.test.confusion, names: FashionMNIST.classNames, title: r.model.uppercased(), cell: 40).render() + "</div>" }
        h += "</div>\n<h2>Learning curves</h2>\n"
        for r in runs { h += "<h3>\(SVG.escape(r.model.uppercased()))</h3>\n" + Charts.curves(r.history).render() }
        h += "</body></html>\n"
        let path = dir + "/compare.html"
        try FileIO.writeAtomically(h, to: path)
        return path
    }
}
