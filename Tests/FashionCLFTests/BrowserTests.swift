// The report in a real browser: report.html and compare.html from a tiny run are rendered by headless
// Chromium (scripts/screenshot-report.sh --check). The page loads with no script error, console.error or
// failed resource load; every chart and image has a size on screen and the images decode; the screenshot,
// decoded with the project's own PNG reader, is not blank, and neither is any chart's or image's patch of it.
// Skipped where Chromium is not installed (Debian: apt-get install chromium; CI installs it).
import FashionCLF
import FashionCLFPhotos
import FashionCLFReport
import Testing
#if canImport(Glibc)
import Glibc
#endif

private let script = packageRoot + "/scripts/screenshot-report.sh"
private let chromiumInstalled = shell(
    "{ [ -n \"${CHROMIUM:-}\" ] && command -v \"$CHROMIUM\"; } || command -v chromium || command -v chromium-browser || command -v google-chrome"
).status == 0

/// A chart or image as the script measured it: "svg 1: 900 x 320 px at 24,364, 106 shapes".
private struct Box {
    let label: String, width: Int, height: Int, x: Int, y: Int

    static func parse(_ line: Substring) -> Box? {
        guard line.hasPrefix("svg ") || line.hasPrefix("img "), let colon = line.range(of: "): ") ?? line.range(of: ": ") else { return nil }
        let words = line[colon.upperBound...].split(separator: " ")
        guard words.count >= 6, words[1] == "x", words[3] == "px", words[4] == "at",
              let w = Int(words[0]), let h = Int(words[2]) else { return nil }
        let at = words[5].split(separator: ",").compactMap { Int($0) }
        guard at.count == 2 else { return nil }
        return Box(label: String(line[..<colon.upperBound].dropLast(2)), width: w, height: h, x: at[0], y: at[1])
    }
}

/// Gray levels of a region of a decoded photo: how many distinct values, their standard deviation, and the
/// fraction of pixels that are not (near) white.
private func grayStatistics(_ p: Photo, x: Int = 0, y: Int = 0, width: Int? = nil, height: Int? = nil) -> (levels: Int, std: Double, inked: Double) {
    let x1 = min(p.width, x + (width ?? p.width)), y1 = min(p.height, y + (height ?? p.height))
    var seen = [Bool](repeating: false, count: 256), sum = 0.0, sumSquares = 0.0, inked = 0, n = 0
    for row in max(0, y)..<max(max(0, y), y1) {
        for col in max(0, x)..<max(max(0, x), x1) {
            let i = 4 * (row * p.width + col)
            let g = (Int(p.rgba[i]) * 299 + Int(p.rgba[i + 1]) * 587 + Int(p.rgba[i + 2]) * 114) / 1000
            seen[g] = true
            sum += Double(g); sumSquares += Double(g * g); n += 1
            if g < 240 { inked += 1 }
        }
    }
    guard n > 0 else { return (0, 0, 0) }
    let mean = sum / Double(n)
    return (seen.filter { $0 }.count, (max(0, sumSquares / Double(n) - mean * mean)).squareRoot(), Double(inked) / Double(n))
}

@Suite("The report in a real browser (headless Chromium)", .serialized)
struct BrowserTests {
    let dir = temporaryDirectory()

    /// Runs the script's check on a page; prints its output; checks what it measured and the screenshot.
    func checkInBrowser(_ page: String, svgs: Int, imgs: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let png = page.replacingOccurrences(of: ".html", with: ".png"), height = 3000
        let run = shell("bash '\(script)' --check '\(page)' '\(png)' \(height)")
        print(run.output)
        #expect(run.status == 0, "the check failed:\n\(run.output)", sourceLocation: sourceLocation)
        let lines = run.output.split(separator: "\n")
        #expect(lines.contains("errors: none") && lines.last == "check: OK", sourceLocation: sourceLocation)
        #expect(!lines.contains { $0.hasPrefix("PROBLEM") || $0.hasPrefix("console:") || $0.hasPrefix("warning:") }, sourceLocation: sourceLocation)
        let boxes = lines.compactMap(Box.parse)
        #expect(boxes.filter { $0.label.hasPrefix("svg") }.count == svgs && boxes.filter { $0.label.hasPrefix("img") }.count == imgs,
                "expected \(svgs) charts and \(imgs) images on the page", sourceLocation: sourceLocation)
        // Every image decoded to its full size (the report's grids are 992 px wide).
        for line in lines where line.hasPrefix("img ") {
            #expect(line.contains("decoded 992 x ") && !line.contains("decoded 0 x"), "\(line)", sourceLocation: sourceLocation)
        }

        // The screenshot is the page as drawn: not blank, and every chart and image shows something where it is.
        let shot = try Photo.load(png)
        #expect(shot.width == 1280 && shot.height == height, "screenshot \(shot.width) x \(shot.height)", sourceLocation: sourceLocation)
        let whole = grayStatistics(shot)
        print("screenshot \(shot.width) x \(shot.height): \(whole.levels) gray levels, std \(Text.fixed(whole.std, 1)), \(Text.fixed(whole.inked * 100, 1))% not white")
        #expect(whole.levels > 32 && whole.std > 10 && whole.inked > 0.01, "the screenshot looks blank", sourceLocation: sourceLocation)
        for b in boxes {
            #expect(b.width > 0 && b.height > 0 && b.y + b.height <= height, "\(b.label): \(b.width) x \(b.height) at \(b.x),\(b.y)", sourceLocation: sourceLocation)
            let s = grayStatistics(shot, x: b.x, y: b.y, width: b.width, height: b.height)
            #expect(s.levels > 8 && s.std > 10 && s.inked > 0.005, "\(b.label) is blank in the screenshot: \(s)", sourceLocation: sourceLocation)
        }
    }

    @Test("report.html and compare.html render, with every chart and image", .enabled(if: chromiumInstalled, "Chromium is not installed (Debian: apt-get install chromium; CI installs it)"))
    func reportAndComparisonRender() throws {
        let (cnn, test) = shortRunSummary(.cnn, epochs: 1), (mlp, _) = shortRunSummary(.mlp, epochs: 1)
        let report = try Report.write(cnn, test: test, to: dir + "/cnn")
        let compare = try Report.writeComparison([cnn, mlp], to: dir + "/cmp")
        // report.html: learning curves and confusion matrix; the sample grid and, if the model made any
        // mistakes (this one does), the grid of its most confident mistakes.
        let mistakes = (0..<test.count).filter { Int(cnn.test.predictions[$0]) != Int(test.label($0)) }.count
        print("report.html: the CNN gets \(mistakes) of \(test.count) test images wrong")
        try checkInBrowser(report, svgs: 2, imgs: mistakes > 0 ? 2 : 1)
        // compare.html: F1 bars, two confusion matrices, two sets of learning curves.
        try checkInBrowser(compare, svgs: 5, imgs: 0)
    }

    @Test("the check fails on a page with a broken image", .enabled(if: chromiumInstalled, "Chromium is not installed (Debian: apt-get install chromium; CI installs it)"))
    func brokenImageFailsTheCheck() throws {
        let page = dir + "/broken.html"
        try FileIO.writeAtomically("<!DOCTYPE html>\n<html><head><title>broken</title></head><body><p>text</p><img alt=\"missing\" src=\"no-such.png\"/></body></html>\n", to: page)
        let run = shell("bash '\(script)' --check '\(page)' '\(dir)/broken.png' 600")
        #expect(run.status == 1, "\(run.output)")
        #expect(run.output.contains("PROBLEM: failed to load <img> file://\(dir)/no-such.png") && run.output.contains("the image did not decode"), "\(run.output)")
        #expect(run.output.hasSuffix("check: FAILED (2 problems)\n"), "\(run.output)")
    }

    @Test("without Chromium the script says so in one line and exits 3")
    func missingChromium() {
        let run = shell("CHROMIUM=/nonexistent/chromium bash '\(script)' --check '\(packageRoot)/README.md'")
        #expect(run.status == 3 && run.output.split(separator: "\n").count == 1, "\(run.output)")
        #expect(run.output.contains("Chromium is not installed") && run.output.contains("apt-get install chromium"), "\(run.output)")
    }
}
