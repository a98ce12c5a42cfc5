// The visual report: the SVG writer escapes what it must; report.html, the SVG figures and compare.html
// are well-formed XML (parsed here) and carry the numbers of metrics.json. fclf-classify's contact sheet
// puts each photo, its 28x28 input and its frame where they belong.
import FashionCLF
import FashionCLFPhotos
@testable import FashionCLFReport
import Foundation
import FoundationXML
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Parses XML; returns the parser's error, or nil when the document is well-formed.
private func xmlError(_ text: String) -> String? {
    let parser = XMLParser(data: Array(text.utf8).withUnsafeBytes { Data($0) })
    return parser.parse() ? nil : "\(parser.parserError.map { "\($0)" } ?? "unknown error") at line \(parser.lineNumber)"
}

private func read(_ path: String) throws -> String { String(decoding: try FileIO.read(path, limit: 1 << 26), as: UTF8.self) }

/// A short real run on synthetic data, so the test needs no dataset (also used by BrowserTests).
func shortRunSummary(_ kind: ModelKind, epochs: Int = 2) -> (RunSummary, LabeledImages) {
    let data = synthetic(count: 400, seed: 11), test = synthetic(count: 300, seed: 12)
    var config = TrainConfig()
    config.epochs = epochs
    config.seed = 5
    let trainer = Trainer(model: kind.build(seed: 5), config: config)
    var history: [EpochRecord] = []
    for e in 1...epochs {
        let (loss, acc) = trainer.trainEpoch(data)
        let v = trainer.evaluate(test)
        history.append(EpochRecord(epoch: e, trainLoss: loss, trainAccuracy: acc, valLoss: v.loss, valAccuracy: v.accuracy, seconds: 0.1, imagesPerSecond: 4000))
    }
    let result = trainer.evaluate(test)
    return (RunSummary(model: kind.rawValue, parameters: trainer.model.parameterCount, config: config, threads: 2, isa: "test",
                       date: "2026-11-25 12:00 UTC", wallSeconds: 1, trainSeconds: 0.2, imagesPerSecond: 4000, history: history, test: result,
                       summary: trainer.model.summary), test)
}

@Suite("Visual report")
struct ReportTests {
    let dir = temporaryDirectory()

    @Test func svgWriterEscapesAndIsWellFormed() {
        var svg = SVG(width: 100, height: 50)
        svg.text(10, 20, "T-shirt/top <&> \"quoted\" 'single'")
        svg.rect(0, 0, 10, 10, fill: "#fff", title: "a < b & c")
        svg.polyline([(0, 0), (10, 5)], stroke: "red")
        let doc = svg.render(standalone: true)
        #expect(doc.contains("T-shirt/top &lt;&amp;&gt; &quot;quoted&quot; &apos;single&apos;"))
        #expect(xmlError(doc) == nil)
        let t = Charts.ticks(0, 1)
        #expect(t.count == 6 && t.enumerated().allSatisfy { abs($1 - 0.2 * Double($0)) < 1e-12 }, "\(t)")
        #expect(Charts.ticks(0.31, 0.93).allSatisfy { $0 >= 0.31 && $0 <= 0.93 })
    }

    @Test func runReportIsWellFormedAndCarriesTheMetrics() throws {
        let (s, test) = shortRunSummary(.mlp)
        let html = try Report.write(s, test: test, to: dir + "/run")
        for file in ["report.html", "curves.svg", "confusion.svg"] {
            let text = try read(dir + "/run/" + file)
            #expect(xmlError(text) == nil, "\(file): \(xmlError(text) ?? "")")
        }
        let page = try read(html), confusion = try read(dir + "/run/confusion.svg"), metrics = try read(dir + "/run/metrics.json")
        let accuracy = Text.fixed(s.test.accuracy * 100, 2) + "%"
        #expect(page.contains("Test accuracy \(accuracy)"))
        // The model summary: every layer row, and the total (the MLP: 109,386 parameters).
        #expect(page.contains("<h2>Model</h2>") && page.contains("Total parameters: 109,386"))
        #expect(page.contains("dense 128, relu") && page.contains("dense 10"))
        #expect(metrics.contains("\"test_accuracy\": \(Text.json(s.test.accuracy))"))
        #expect(metrics.hasPrefix("{\n  \"schema_version\": 1,"))
        #expect(metrics.contains("\"average_epochs\": 0,\n") && !metrics.contains("average_val_accuracy") && page.contains("the last epoch"))
        // Every diagonal count appears in the heatmap as a bold cell label, and in the report's table of metrics.json.
        for i in 0..<10 {
            let count = s.test.confusion[i][i]
            #expect(confusion.contains("font-weight=\"bold\">\(count)</text>"), "diagonal \(i) = \(count)")
        }
        #expect(metrics.contains("[" + s.test.confusion[0].map(String.init).joined(separator: ", ") + "]"))
        #expect(page.contains("data:image/png;base64,iVBORw0KGgo"), "PNG images are embedded")
        // The mistakes grid is shown when there are mistakes; otherwise a line says there are none.
        let wrong = (0..<test.count).filter { Int(s.test.predictions[$0]) != Int(test.label($0)) }.count
        #expect(page.contains("alt=\"most confident mistakes\"") == (wrong > 0) && page.contains("None: all \(test.count) test images") == (wrong == 0))
        #expect(access(dir + "/run/samples.png", R_OK) == 0 && access(dir + "/run/mistakes.png", R_OK) == 0)
    }

    @Test("a weight-averaged run: metrics.json gives the steps and the average's validation figures, the report names the mean")
    func averagedRunReport() throws {
        var (s, test) = shortRunSummary(.mlp)
        s.config.averageEpochs = 1
        s.averaged = TrainingRun.Averaged(epochs: 1, steps: 10, batchNormSeconds: 0.5, valLoss: 0.25, valAccuracy: 0.875)
        _ = try Report.write(s, test: test, to: dir + "/averaged")
        let page = try read(dir + "/averaged/report.html"), metrics = try read(dir + "/averaged/metrics.json")
        #expect(metrics.contains("\"average_epochs\": 1,\n  \"average_rate\": null,\n  \"average_steps\": 10,\n  \"average_val_accuracy\": 0.875,\n  \"average_val_loss\": 0.25,"), "\(metrics)")
        #expect(page.contains("the mean of the weights of the last 1 epoch (stochastic weight averaging), validation accuracy 0.8750"))
    }

    @Test func comparisonPageShowsBothModels() throws {
        let (a, _) = shortRunSummary(.cnn, epochs: 1), (b, _) = shortRunSummary(.mlp, epochs: 1)
        let page = try read(try Report.writeComparison([a, b], to: dir + "/cmp"))
        #expect(xmlError(page) == nil, "\(xmlError(page) ?? "")")
        #expect(xmlError(try read(dir + "/cmp/f1.svg")) == nil)
        #expect(page.contains(Text.fixed(a.test.accuracy * 100, 2) + "%") && page.contains(Text.fixed(b.test.accuracy * 100, 2) + "%"))
        #expect(page.contains("<td>\(a.parameters)</td>") && page.contains("<td>\(b.parameters)</td>"))
    }

    @Test func base64MatchesRFC4648() {
        #expect(base64(Array("".utf8)) == "")
        #expect(base64(Array("f".utf8)) == "Zg==")
        #expect(base64(Array("fo".utf8)) == "Zm8=")
        #expect(base64(Array("foobar".utf8)) == "Zm9vYmFy")
    }

    @Test func contactSheetPlacesThumbnailInputFrameAndText() throws {
        // Probabilities with class `c` on top.
        func probs(_ c: Int) -> [Float] { (0..<10).map { $0 == c ? 0.91 : 0.01 } }
        // A 112 x 56 green thumbnail, and an input whose top-left pixel alone is lit.
        let thumb = ContactSheet.Thumbnail(width: 112, height: 56, rgb: [UInt8](repeating: 0, count: 112 * 56 * 3).enumerated().map { $0.offset % 3 == 1 ? 200 : 10 })
        var input = [UInt8](repeating: 0, count: 784)
        input[0] = 200
        let entries = [
            ContactSheet.Entry(file: "photos/right.jpg", thumbnail: thumb, input: input, probabilities: probs(3), label: 3),
            ContactSheet.Entry(file: "photos/wrong.jpg", thumbnail: thumb, input: input, probabilities: probs(3), label: 4),
            ContactSheet.Entry(file: "unlabelled.png", thumbnail: thumb, input: input, probabilities: probs(7)),
            ContactSheet.Entry(file: "a.jpg", thumbnail: thumb, input: input, probabilities: probs(0)),
            ContactSheet.Entry(file: "b.jpg", thumbnail: thumb, input: input, probabilities: probs(1)),
        ]
        let sheet = try ContactSheet.render(entries)
        // Four cells a row: 248 x 170 pixels each (thumbnail box 112, input 28 x 4, padding 8, text 36).
        #expect(sheet.width == 4 * 248 && sheet.height == 2 * 170)
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(sheet.rgba[4 * (y * sheet.width + x)..<4 * (y * sheet.width + x) + 3]) }
        // Frames: green around a right prediction, red around a wrong one, none without a label.
        #expect(pixel(2, 2) == [40, 160, 60] && pixel(248 + 2, 2) == [210, 40, 40] && pixel(2 * 248 + 2, 2) == [255, 255, 255])
        // The thumbnail is centred in its box (28 rows above and below), the input enlarged 4x beside it.
        for cell in 0..<5 {
            let cx = (cell % 4) * 248, cy = (cell / 4) * 170
            #expect(pixel(cx + 8, cy + 8 + 27) == [255, 255, 255] && pixel(cx + 8, cy + 8 + 28) == [10, 200, 10] && pixel(cx + 119, cy + 8 + 83) == [10, 200, 10])
            #expect(pixel(cx + 8, cy + 8 + 84) == [255, 255, 255], "cell \(cell): thumbnail overflows")
            #expect(pixel(cx + 128, cy + 8) == [200, 200, 200] && pixel(cx + 131, cy + 11) == [200, 200, 200] && pixel(cx + 132, cy + 8) == [0, 0, 0])
        }
        // The true-class line is drawn in red under the wrong prediction and in green under the right one.
        func has(_ cell: Int, _ test: ([UInt8]) -> Bool) -> Bool {
            let cx = (cell % 4) * 248
            return (143..<160).contains { y in (8..<120).contains { x in test(pixel(cx + x, y)) } }
        }
        #expect(has(1) { Int($0[0]) > Int($0[1]) + 80 } && !has(0) { Int($0[0]) > Int($0[1]) + 80 })
        #expect(has(0) { Int($0[1]) > Int($0[0]) + 30 } && !has(2) { $0 != [255, 255, 255] })
        // Written as a PNG of the same size; no entries is an error that says why.
        let path = dir + "/sheet.png"
        try ContactSheet.write(entries, to: path)
        let png = try Photo.load(path)
        #expect(png.width == sheet.width && png.height == sheet.height && png.rgba == sheet.rgba)
        #expect(throws: FCLFError.invalidArgument("no photo could be classified, so there is no contact sheet to write")) { try ContactSheet.render([]) }
    }
}
