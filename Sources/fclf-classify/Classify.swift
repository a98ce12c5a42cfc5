import ArgumentParser
import FashionCLF
import FashionCLFPhotos
import FashionCLFReport

extension Preprocessing: ExpressibleByArgument {}

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

    @Flag(help: "Test-time flip averaging: average the probabilities of the network's input and its mirror image (a garment's class does not depend on which way it faces); a photo whose mirror image gets another class is also marked unsure.")
    var flipAverage = false

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
        // Outputs are checked before any photo is classified, so a typo costs nothing.
        if let sheet { try FileIO.checkDestination(sheet, option: "--sheet") }
        if let json { try FileIO.checkDestination(json, option: "--json") }
        let classifier: Classifier
        if let model { classifier = Classifier(try ModelFile.load(model)) } else { classifier = try Classifier.builtIn() }
        guard classifier.inputShape == ModelKind.imageShape, classifier.classes == 10 else {
            throw .modelFile(path: model ?? "<default>", reason: "not a 28x28, 10-class model")
        }
        let truth = try labels.map(LabelsCSV.read) ?? [:]
        let files = try PhotoFolder.expand(inputs)
        var results: [PhotoResult] = []
        var failures = 0
        for file in files {
            var r = PhotoResult(file: file)
            r.label = truth[basename(file)]
            do {
                let photo = try Photo.load(file, pixelLimit: maxPixels)
                let prepared = Preprocessor.prepare(photo, preprocess)
                var probs = try classifier.probabilities(prepared.pixels)
                if flipAverage {
                    let averaged = Classifier.flipAveraged(probs, mirrored: try classifier.probabilities(prepared.mirroredPixels))
                    probs = averaged.probabilities
                    r.mirrorAgrees = averaged.mirrorAgrees
                }
                r.probabilities = probs
                r.prepared = prepared
                if sheet != nil {
                    let t = Preprocessor.thumbnail(photo, fitting: ContactSheet.thumb)
                    r.thumbnail = ContactSheet.Thumbnail(width: t.width, height: t.height, rgb: t.rgb)
                }
                let ranked = r.ranked
                var line = "\(file)\t\(FashionMNIST.classNames[ranked[0]]) \(Text.fixed(Double(probs[ranked[0]]) * 100, 1))%"
                if r.unsure { line += " (unsure)" }
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
            let sure = labelled.filter { !$0.unsure }, sureRight = sure.filter { $0.ranked[0] == $0.label }.count
            let rule = "top probability below \(Classifier.unsureBelow)" + (flipAverage ? ", or the mirror image names another class" : "")
            print("unsure (\(rule)): \(labelled.count - sure.count)/\(labelled.count); right among the others: \(sureRight)/\(sure.count)"
                  + (sure.isEmpty ? "" : " = \(Text.fixed(100 * Double(sureRight) / Double(sure.count), 1))%"))
        }
        if let json { try FileIO.writeAtomically(ResultsJSON.text(results, top: top, preprocessing: preprocess), to: json) }
        if let sheet { try ContactSheet.write(results.compactMap(\.sheetEntry), to: sheet) }
        Console.flush()
        return failures == 0
    }

    func basename(_ path: String) -> String { String(path.split(separator: "/").last ?? Substring(path)) }
}
