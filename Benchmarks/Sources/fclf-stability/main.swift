// Diagnostic (not a product feature): the stability unsure rule of runs/unsure-stability-rule.txt, which missed its
// bar by one photo (docs/photos.md). Kept so that its figures can be reproduced:
//   swift run -c release --package-path Benchmarks fclf-stability MODEL.fclf PHOTO_FOLDER LABELS.csv
import FashionCLF
import FashionCLFPhotos
import Foundation

let args = CommandLine.arguments
let classifier = Classifier(try ModelFile.load(args[1]))
let photoDir = args[2], labelsPath = args[3]
let k = classifier.classes

/// x (28 x 28 bytes), its mirror image and its four 1-pixel shifts (vacated pixels 0, the background after
/// preprocessing), one after the other.
func variants(_ x: [UInt8]) -> [UInt8] {
    func at(_ r: Int, _ c: Int) -> UInt8 { (0..<28).contains(r) && (0..<28).contains(c) ? x[r * 28 + c] : 0 }
    var out = x + x.withUnsafeBufferPointer { Classifier.mirrored($0, width: 28) }
    for (dr, dc) in [(0, -1), (0, 1), (-1, 0), (1, 0)] { out += (0..<784).map { at($0 / 28 - dr, $0 % 28 - dc) } }
    return out
}

/// The plain answer, whether the rule marks it (the current rule, or a variant naming another class), whether
/// the current rule alone does, and the class of the six variants' mean probabilities.
func judge(_ x: [UInt8]) throws -> (label: Int, unsure: Bool, unsurePlain: Bool, meanLabel: Int) {
    let v = variants(x)
    var probs = [Float](repeating: 0, count: 6 * k), labels = [Int32](repeating: 0, count: 6)
    try probs.withUnsafeMutableBufferPointer { p in
        try labels.withUnsafeMutableBufferPointer { l in try classifier.predict(v, count: 6, probabilities: p.baseAddress, labels: l.baseAddress) }
    }
    let plain = probs[0..<k].withUnsafeBufferPointer { Classifier.isUnsure($0) }
    let mean = (0..<k).map { j in (0..<6).map { probs[$0 * k + j] }.reduce(0, +) / 6 }
    return (Int(labels[0]), plain || labels.contains { $0 != labels[0] }, plain, mean.indices.max { mean[$0] < mean[$1] }!)
}

let test = try FashionMNIST.testSplit(directory: FashionMNIST.defaultDirectory)
let marked = try (0..<test.count).filter { try judge(Array(test.image($0))).unsure }.count
print("test images marked: \(marked) of \(test.count)")

let labels = try LabelsCSV.read(labelsPath)
var rows: [(right: Bool, unsure: Bool, unsurePlain: Bool, rightMean: Bool)] = []
for path in try PhotoFolder.expand([photoDir]).sorted() {
    guard let label = labels[(path as NSString).lastPathComponent] else { continue }
    let j = try judge(Preprocessor.prepare(try Photo.load(path)).pixels)
    rows.append((j.label == label, j.unsure, j.unsurePlain, j.meanLabel == label))
}
func line(_ tag: String, _ right: (Int) -> Bool, _ unsure: (Int) -> Bool) {
    let kept = rows.indices.filter { !unsure($0) }
    let r = kept.filter(right).count
    print("\(tag): top-1 \(rows.indices.filter(right).count)/\(rows.count); unsure \(rows.count - kept.count); right among the others \(r)/\(kept.count) = \(String(format: "%.1f", 100 * Double(r) / Double(max(1, kept.count))))%")
}
line("plain, current rule (p < 0.5)", { rows[$0].right }, { rows[$0].unsurePlain })
line("ST (plain answer)", { rows[$0].right }, { rows[$0].unsure })
line("ST, answer the mean of six (not for the decision)", { rows[$0].rightMean }, { rows[$0].unsure })
