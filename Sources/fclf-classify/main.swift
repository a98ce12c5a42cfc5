import ArgumentParser
import FashionCLF
import FashionCLFPhotos
import FashionCLFReport

#if canImport(Glibc)
import Glibc
#endif

extension Preprocessing: ExpressibleByArgument {}

/// One photo's outcome.
struct Result {
    var file: String
    var prepared: PreparedImage?
    var photo: Photo?
    var probabilities: [Float] = []
    var label: Int?  // the true class, from --labels
    var error: String?

    var ranked: [Int] { probabilities.indices.sorted { probabilities[$0] > probabilities[$1] } }
}

@main
struct Classify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fclf-classify",
        abstract: "Classify clothing photos (JPEG, PNG, or folders of them) with a trained fashionclf model.",
        discussion: """
            Each photo goes through the Fashion-MNIST conversion (README, "Real photos"): EXIF orientation, \
            alpha over white, background from the border, crop to the garment, longest side to 28 pixels by \
            area averaging, negated when the background is light. --preprocess naive reproduces the seed \
            script's squash-and-invert for comparison. A photo that cannot be read is reported on one line \
            and the others are still classified; the exit status is then 1.
            """)

    @Argument(help: "Photos (.jpg, .jpeg, .png) and folders of photos.")
    var inputs: [String]

    @Option(help: "Model file written by fclf-train --out (default: the model built into the library).")
    var model: String?

    @Option(help: "Alternatives to list per photo.")
    var top: Int = 3

    @Option(help: "Write a contact sheet PNG: each photo beside the network's 28x28 input, with the prediction.")
    var sheet: String?

    @Option(help: "Write the results as JSON.")
    var json: String?

    @Option(help: "CSV with columns file and label_index (0-9): adds the true class, marks mistakes, prints top-1/top-k accuracy.")
    var labels: String?

    @Option(help: "Preprocessing: fashion-mnist (ours) or naive (the seed script's).")
    var preprocess: Preprocessing = .fashionMNIST

    @Option(help: "Refuse photos with more pixels than this (decoding is refused before memory is allocated).")
    var maxPixels: Int = Photo.defaultPixelLimit

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give at least one photo or folder") }
        guard (1...10).contains(top) else { throw ValidationError("--top must be in 1...10 (got \(top))") }
        guard maxPixels >= 1 else { throw ValidationError("--max-pixels must be positive") }
    }

    func run() throws {
        do {
            let ok = try execute()
            if !ok { throw ExitCode.failure }
        } catch let error as FCLFError {
            Console.error("fclf-classify: error: \(error)")
            throw ExitCode.failure
        }
    }

    /// Returns false when some photo could not be classified.
    func execute() throws(FCLFError) -> Bool {
        let classifier = if let model { Classifier(try ModelFile.load(model)) } else { try Classifier.builtIn() }
        guard classifier.inputShape == ModelKind.imageShape, classifier.classes == 10 else {
            throw .modelFile(path: model ?? "<default>", reason: "not a 28x28, 10-class model")
        }
        let truth = try labels.map(readLabels) ?? [:]
        let files = try expand(inputs)
        var results: [Result] = []
        var failures = 0
        for file in files {
            var r = Result(file: file)
            r.label = truth[basename(file)]
            do {
                let photo = try Photo.load(file, pixelLimit: maxPixels)
                let prepared = Preprocessor.prepare(photo, preprocess)
                var probs = [Float](repeating: 0, count: 10)
                prepared.pixels.withUnsafeBufferPointer { px in
                    _ = probs.withUnsafeMutableBufferPointer { classifier.predict(px.baseAddress!, count: 1, probabilities: $0.baseAddress, labels: nil) }
                }
                r.probabilities = probs
                r.prepared = prepared
                if sheet != nil { r.photo = photo }
                let ranked = r.ranked
                var line = "\(file)\t\(FashionMNIST.classNames[ranked[0]]) \(Text.fixed(Double(probs[ranked[0]]) * 100, 1))%"
                line += "\ttop-\(top): " + ranked.prefix(top).map { "\(FashionMNIST.classNames[$0]) \(Text.fixed(Double(probs[$0]) * 100, 1))%" }.joined(separator: ", ")
                if let l = r.label { line += "\ttrue: \(FashionMNIST.classNames[l])" + (l == ranked[0] ? "" : "  (wrong)") }
                print(line)
            } catch {
                failures += 1
                r.error = error.description
                Console.error("fclf-classify: error: \(error)")
            }
            results.append(r)
        }
        let labelled = results.filter { $0.label != nil && $0.error == nil }
        if !labelled.isEmpty {
            let top1 = labelled.filter { $0.ranked[0] == $0.label }.count
            let topK = labelled.filter { $0.ranked.prefix(top).contains($0.label!) }.count
            print("\(preprocess.rawValue) preprocessing: top-1 \(top1)/\(labelled.count) = \(Text.fixed(100 * Double(top1) / Double(labelled.count), 1))%, top-\(top) \(topK)/\(labelled.count) = \(Text.fixed(100 * Double(topK) / Double(labelled.count), 1))%")
        }
        if let json { try FileIO.writeAtomically(jsonText(results), to: json) }
        if let sheet { try ContactSheet.write(results, to: sheet) }
        Console.flush()
        return failures == 0
    }

    func basename(_ path: String) -> String { String(path.split(separator: "/").last ?? Substring(path)) }

    /// Photos named on the command line, and the .jpg/.jpeg/.png files of named folders (sorted).
    func expand(_ inputs: [String]) throws(FCLFError) -> [String] {
        var files: [String] = []
        for input in inputs {
            var st = stat()
            guard stat(input, &st) == 0 else { files.append(input); continue }  // reported when loaded
            if (st.st_mode & S_IFMT) == S_IFDIR {
                guard let dir = opendir(input) else { throw .io(path: input, reason: "cannot list the folder") }
                var found: [String] = []
                while let entry = readdir(dir) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                    let lower = name.lowercased()
                    if lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") || lower.hasSuffix(".png") {
                        found.append(input + (input.hasSuffix("/") ? "" : "/") + name)
                    }
                }
                closedir(dir)
                files += found.sorted()
            } else {
                files.append(input)
            }
        }
        return files
    }

    /// file name -> class index, from a CSV with a header naming "file" and "label_index" (or "label").
    func readLabels(_ path: String) throws(FCLFError) -> [String: Int] {
        let text = String(decoding: try FileIO.read(path, limit: 1 << 24), as: UTF8.self)
        var lines = text.split(whereSeparator: \.isNewline).map { $0.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters() } }
        guard !lines.isEmpty else { throw .invalidArgument("\(path): empty labels file; expected a header with file,label_index") }
        let header = lines.removeFirst()
        guard let f = header.firstIndex(of: "file"), let l = header.firstIndex(of: "label_index") ?? header.firstIndex(of: "label") else {
            throw .invalidArgument("\(path): the header must name the columns file and label_index")
        }
        var map: [String: Int] = [:]
        for (n, row) in lines.enumerated() where row.count > max(f, l) {
            guard let v = Int(row[l]), (0...9).contains(v) else {
                throw .invalidArgument("\(path): line \(n + 2): label \"\(row[l])\" is not a class index 0-9")
            }
            map[row[f]] = v
        }
        return map
    }

    func jsonText(_ results: [Result]) -> String {
        let items = results.map { r -> String in
            var fields = ["\"file\": \(Text.json(r.file))"]
            if let e = r.error {
                fields.append("\"error\": \(Text.json(e))")
            } else {
                let ranked = r.ranked
                fields.append("\"predicted\": \(Text.json(FashionMNIST.classNames[ranked[0]]))")
                fields.append("\"predicted_index\": \(ranked[0])")
                fields.append("\"probability\": \(Text.json(Double(r.probabilities[ranked[0]])))")
                fields.append("\"top\": [" + ranked.prefix(top).map { "{\"class\": \(Text.json(FashionMNIST.classNames[$0])), \"probability\": \(Text.json(Double(r.probabilities[$0])))}" }.joined(separator: ", ") + "]")
                if let p = r.prepared { fields.append("\"inverted\": \(p.inverted)") }
            }
            if let l = r.label {
                fields.append("\"label\": \(Text.json(FashionMNIST.classNames[l]))")
                if r.error == nil { fields.append("\"correct\": \(r.ranked[0] == l)") }
            }
            return "  {" + fields.joined(separator: ", ") + "}"
        }
        return "{\"preprocessing\": \(Text.json(preprocess.rawValue)), \"results\": [\n" + items.joined(separator: ",\n") + "\n]}\n"
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        String(self.drop { $0 == " " || $0 == "\"" }.reversed().drop { $0 == " " || $0 == "\"" || $0 == "\r" }.reversed())
    }
}

/// The seed's figure, as a PNG: per photo, the original (scaled to a thumbnail) beside the network's
/// 28x28 input (enlarged 4x, nearest neighbour), with the prediction under them; with labels, the true
/// class, and a red frame around wrong predictions (green around right ones).
enum ContactSheet {
    static let thumb = 112, pad = 8, textHeight = 36, columns = 4
    static let cellWidth = pad + thumb + pad + thumb + pad, cellHeight = pad + thumb + 6 + textHeight + pad

    static func write(_ results: [Result], to path: String) throws(FCLFError) {
        let shown = results.filter { $0.photo != nil }
        guard !shown.isEmpty else { throw .invalidArgument("no photo could be classified, so there is no contact sheet to write") }
        let font = try Raster.Font(size: 12)
        let rows = (shown.count + columns - 1) / columns
        var canvas = Raster(width: columns * cellWidth, height: rows * cellHeight)
        for (n, r) in shown.enumerated() {
            let cx = (n % columns) * cellWidth, cy = (n / columns) * cellHeight
            let ranked = r.ranked
            if let label = r.label {
                canvas.frame(cx + 2, cy + 2, cellWidth - 4, cellHeight - 4, label == ranked[0] ? (40, 160, 60) : (210, 40, 40))
            }
            if let photo = r.photo { drawThumbnail(&canvas, photo, cx + pad, cy + pad) }
            if let p = r.prepared { canvas.gray(p.pixels[...], at: cx + 2 * pad + thumb, cy + pad, scale: thumb / 28) }
            let y = cy + pad + thumb + 18
            canvas.text("\(FashionMNIST.classNames[ranked[0]]) \(Text.fixed(Double(r.probabilities[ranked[0]]) * 100, 0))%",
                        at: cx + pad, y, color: 0x101010, font: font)
            if let label = r.label {
                canvas.text("true: \(FashionMNIST.classNames[label])", at: cx + pad, y + 16,
                            color: label == ranked[0] ? 0x206030 : 0xC02020, font: font)
            }
            let name = String(r.file.split(separator: "/").last ?? "")
            canvas.text(String(name.prefix(18)), at: cx + 2 * pad + thumb, y, color: 0x707070, font: font)
        }
        try FileIO.writeAtomically(try canvas.png(), to: path)
    }

    /// The photo scaled to fit thumb x thumb (alpha over white and area averaging, as the preprocessing
    /// does), centred.
    static func drawThumbnail(_ c: inout Raster, _ photo: Photo, _ x: Int, _ y: Int) {
        let (rgb, w, h, _) = Preprocessor.composite(photo)
        let s = Double(thumb) / Double(max(w, h))
        let tw = max(1, Int(Double(w) * s)), th = max(1, Int(Double(h) * s))
        let ox = x + (thumb - tw) / 2, oy = y + (thumb - th) / 2
        let planes = (0..<3).map { ch in
            Preprocessor.areaResize((0..<w * h).map { rgb[3 * $0 + ch] }, w, h, tw, th)
        }
        func byte(_ v: Double) -> UInt8 { UInt8(max(0, min(255, v.rounded()))) }
        for yy in 0..<th {
            for xx in 0..<tw {
                let i = yy * tw + xx
                c.set(ox + xx, oy + yy, byte(planes[0][i]), byte(planes[1][i]), byte(planes[2][i]))
            }
        }
    }
}
