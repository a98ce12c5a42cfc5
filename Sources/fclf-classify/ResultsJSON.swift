import FashionCLF
import FashionCLFPhotos

/// The --json file: the preprocessing, then per photo the prediction and top-k (or the error), and the
/// true class when labels were given.
enum ResultsJSON {
    /// The schema (docs/json.md); raised when a field changes meaning or goes away (2: with --flip-average,
    /// `unsure` also marks a photo whose mirror image gets another class; `mirror_agrees` added).
    static let schemaVersion = 2

    static func text(_ results: [PhotoResult], top: Int, preprocessing: Preprocessing) -> String {
        let items = results.map { r -> String in
            var fields = ["\"file\": \(Text.json(r.file))"]
            if let e = r.error {
                fields.append("\"error\": \(Text.json(e))")
            } else {
                let ranked = r.ranked
                fields.append("\"predicted\": \(Text.json(FashionMNIST.classNames[ranked[0]]))")
                fields.append("\"predicted_index\": \(ranked[0])")
                fields.append("\"probability\": \(Text.json(Double(r.probabilities[ranked[0]])))")
                fields.append("\"unsure\": \(r.unsure)")
                if let agrees = r.mirrorAgrees { fields.append("\"mirror_agrees\": \(agrees)") }
                fields.append("\"top\": [" + ranked.prefix(top).map { "{\"class\": \(Text.json(FashionMNIST.classNames[$0])), \"probability\": \(Text.json(Double(r.probabilities[$0])))}" }.joined(separator: ", ") + "]")
                if let p = r.prepared { fields.append("\"inverted\": \(p.inverted)") }
            }
            if let l = r.label {
                fields.append("\"label\": \(Text.json(FashionMNIST.classNames[l]))")
                if r.error == nil { fields.append("\"correct\": \(r.ranked[0] == l)") }
            }
            return "  {" + fields.joined(separator: ", ") + "}"
        }
        return "{\"schema_version\": \(schemaVersion), \"preprocessing\": \(Text.json(preprocessing.rawValue)), \"unsure_below\": \(Text.json(Double(Classifier.unsureBelow))), \"results\": [\n" + items.joined(separator: ",\n") + "\n]}\n"
    }
}
