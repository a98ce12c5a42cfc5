// Hostile input from the audit (issue 13), one test per door: each is refused with the error that names it,
// before memory or time is spent on it, or computed to a finite result.
import CZlib
@testable import FashionCLF
@testable import FashionCLFPhotos
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A model file with a valid CRC: the header fields as given, `count` stored values and `payload` floats.
func modelFileBytes(layers: [[Int]], classes: Int = 10, count: UInt64, payload: [Float] = []) -> [UInt8] {
    var out = ModelFile.magic
    func u32(_ v: Int) { withUnsafeBytes(of: UInt32(truncatingIfNeeded: v).littleEndian) { out.append(contentsOf: $0) } }
    u32(1); u32(0)                     // format version, empty name
    u32(1); u32(28); u32(28); u32(classes)
    u32(layers.count)
    for words in layers { for w in words { u32(w) } }
    withUnsafeBytes(of: count.littleEndian) { out.append(contentsOf: $0) }
    for v in payload { u32(Int(v.bitPattern)) }
    let crc = out.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
    u32(Int(crc))
    return out
}

@Suite("Hardening: hostile files and values")
struct HardeningTests {
    let dir = temporaryDirectory()

    func reason(_ body: () throws -> Void) -> String {
        do { try body(); return "accepted" } catch { return "\(error)" }
    }

    @Test("an 84-byte model claiming a huge dense layer is refused before any weight is allocated")
    func tinyModelClaimingHugeLayer() {
        for n in [50_000, 1 << 16] {
            let bytes = modelFileBytes(layers: [[5], [2, 784, n, 1], [2, n, 10, 0]], count: 0)
            #expect(bytes.count == 84)
            let r = reason { _ = try ModelFile.decode(bytes, path: "tiny.fclf") }
            #expect(r.contains("holds 0 parameters in 0 bytes") && r.contains("tiny.fclf"), "\(r)")
            // The count may lie too: it is compared with the bytes that follow, not trusted.
            let lying = modelFileBytes(layers: [[5], [2, 784, n, 1], [2, n, 10, 0]], count: UInt64(784 * n + n + 10 * n + 10))
            #expect(reason { _ = try ModelFile.decode(lying, path: "m") }.contains("the architecture needs"))
        }
        // Layer sizes past what a layer may have are refused when the header is read.
        let dense = reason { _ = try ModelFile.decode(modelFileBytes(layers: [[5], [2, 784, 1 << 31, 1], [2, 1 << 31, 10, 0]], count: 0), path: "m") }
        #expect(dense.contains("layer 1: bad dense configuration"), "\(dense)")
        let conv = reason { _ = try ModelFile.decode(modelFileBytes(layers: [[1, 1, 1 << 30, 3, 0, 1]], count: 0), path: "m") }
        #expect(conv.contains("layer 0: bad conv2d configuration"), "\(conv)")
    }

    @Test("values a model may not hold: a temperature outside 1e-3...1e3, a NaN weight")
    func badValuesAreRefused() {
        let weights = [Float](repeating: 0.01, count: 784 * 10 + 10)
        func file(_ t: Float, _ w: [Float] = weights) -> [UInt8] {
            modelFileBytes(layers: [[5], [2, 784, 10, 0], [9, Int(t.bitPattern)]], count: UInt64(w.count), payload: w)
        }
        #expect(reason { _ = try ModelFile.decode(file(0.7), path: "m") } == "accepted")
        #expect(reason { _ = try ModelFile.decode(file(1e6), path: "m") }.contains("layer 2: temperature 1000000.0 outside"))
        #expect(reason { _ = try ModelFile.decode(file(0), path: "m") }.contains("layer 2: temperature 0.0 outside"))
        var nan = weights
        nan[5] = .nan
        #expect(reason { _ = try ModelFile.decode(file(0.7, nan), path: "m") }.contains("non-finite value"))
    }

    @Test("a loaded model has exactly the file's values (loading draws no weights)")
    func loadingCopiesTheFile() throws {
        let net = ModelKind.cnnBN.build(seed: 3)
        let bytes = try ModelFile.encode(net, classes: 10)
        let loaded = try ModelFile.decode(bytes, path: "m")
        #expect(loaded.snapshot() == net.snapshot())
        // `.zero` builds a network without drawing: every value is zero until written.
        var rng = SplitMix64(seed: 1)
        let empty = Sequential(name: "z", plan: net.plan, initializer: .zero, rng: &rng)
        let weights = empty.parameters.filter { $0.name == "weight" }
        #expect(weights.count == 4 && weights.allSatisfy { p in (0..<p.count).allSatisfy { p.value[$0] == 0 } })
    }

    @Test("finite but huge weights: predict fails with .numeric instead of returning NaN probabilities")
    func hugeWeightsGiveANumericError() throws {
        let net = ModelKind.mlp.build(seed: 1)
        let w = net.parameters[0]
        for i in 0..<w.count { w.value[i] = 1e37 }  // finite; 784 of them overflow float
        let bytes = try ModelFile.encode(net, classes: 10)
        let classifier = Classifier(try ModelFile.decode(bytes, path: "huge.fclf"))  // finite values load
        let r = reason { _ = try classifier.probabilities([UInt8](repeating: 200, count: 784)) }
        #expect(r.contains("image 0: the model's output is not finite"), "\(r)")
        var probs = [Float](repeating: 0, count: 40 * 10)
        let batch = [UInt8](repeating: 0, count: 39 * 784) + [UInt8](repeating: 255, count: 784)
        let rb = reason {
            try batch.withUnsafeBufferPointer { (px) throws(FCLFError) in
                try probs.withUnsafeMutableBufferPointer { (p) throws(FCLFError) in
                    try classifier.predict(px.baseAddress!, count: 40, probabilities: p.baseAddress, labels: nil)
                }
            }
        }
        // Blank images give 0 logits through the huge first layer; the bright one (index 39) overflows.
        #expect(rb.contains("image 39:"), "\(rb)")
        // A sane model's probabilities are finite and sum to 1.
        let p = try Classifier.builtIn().probabilities([UInt8](repeating: 255, count: 784))
        #expect(p.allSatisfy(\.isFinite) && abs(p.reduce(0, +) - 1) < 1e-5)
        #expect(reason { _ = try classifier.probabilities([1, 2, 3]) }.contains("784 pixels, got 3"))
    }

    @Test("devices, folders and pipes are refused before anything is read")
    func nonRegularFilesAreRefused() {
        #expect(reason { _ = try FileIO.read("/dev/zero", limit: 1 << 30) }.contains("not a regular file"))
        #expect(reason { _ = try ModelFile.load("/dev/zero") }.contains("not a regular file"))
        #expect(reason { _ = try ModelFile.load(dir) }.contains("is a folder"))
        #expect(reason { _ = try IDX.read("/dev/zero", dims: 3) }.contains("not a regular file"))
        writeBytes([UInt8](repeating: 7, count: 100), to: dir + "/big.bin")
        #expect(reason { _ = try FileIO.read(dir + "/big.bin", limit: 99) }.contains("larger than 99 bytes"))
    }

    @Test("an output path in a missing folder is refused up front")
    func destinationsAreChecked() {
        #expect(reason { try FileIO.checkDestination(dir + "/no/such/sheet.png", option: "--sheet") }.contains("--sheet: the folder"))
        #expect(reason { try FileIO.checkDestination(dir, option: "--json") }.contains("is a folder"))
        #expect(reason { try FileIO.checkDestination(dir + "/ok.json", option: "--json") } == "accepted")
        #expect(reason { try FileIO.checkDestination("relative.json", option: "--json") } == "accepted")
    }

    @Test("a folder without photos is an error, not an empty run")
    func emptyFolder() {
        #expect(mkdir(dir + "/empty", 0o755) == 0)
        writeBytes([1], to: dir + "/empty/readme.txt")
        #expect(reason { _ = try PhotoFolder.expand([dir + "/empty"]) }.contains("no photos (.jpg, .jpeg, .png files) in this folder"))
    }

    @Test("a missing photo says why")
    func missingPhoto() {
        let r = reason { _ = try Photo.load(dir + "/nope.jpg") }
        #expect(r.contains("nope.jpg") && r.contains("No such file or directory"), "\(r)")
    }

    @Test("labels CSV: byte-order mark, quoted fields, CRLF and blank lines are read; bad rows say which line")
    func labelsCSV() throws {
        let text = "\u{FEFF}\"file\",\"label_index\"\r\n\"a, b.jpg\",3\r\n\r\nc.png, 9 \r\n\"say \"\"hi\"\".png\",0\r\n"
        writeBytes(Array(text.utf8), to: dir + "/labels.csv")
        let map = try LabelsCSV.read(dir + "/labels.csv")
        #expect(map == ["a, b.jpg": 3, "c.png": 9, "say \"hi\".png": 0])
        writeBytes(Array("file,label_index\na.jpg,3\nb.jpg\n".utf8), to: dir + "/short.csv")
        #expect(reason { _ = try LabelsCSV.read(dir + "/short.csv") }.contains("line 3: 1 field(s)"))
        writeBytes(Array("file,label_index\na.jpg,12\n".utf8), to: dir + "/range.csv")
        #expect(reason { _ = try LabelsCSV.read(dir + "/range.csv") }.contains("line 2: label \"12\""))
        writeBytes(Array("file,label_index\n\"a.jpg,3\n".utf8), to: dir + "/open.csv")
        #expect(reason { _ = try LabelsCSV.read(dir + "/open.csv") }.contains("line 2: a quoted field is not closed"))
        writeBytes(Array("name,class\na.jpg,3\n".utf8), to: dir + "/header.csv")
        #expect(reason { _ = try LabelsCSV.read(dir + "/header.csv") }.contains("found name,class"))
    }
}

@Suite("Swift API: Classifier, Prediction, photos from files, memory and frames")
struct SwiftAPITests {
    let dir = temporaryDirectory()

    @Test func predictionsAgreeAcrossEntryPoints() throws {
        let model = try Classifier.builtIn()
        let image = (0..<784).map { UInt8(truncatingIfNeeded: $0 * 7) }
        let one = try model.predict(pixels: image)
        #expect(one.probabilities.count == 10 && one.className == FashionMNIST.classNames[one.label])
        #expect(abs(one.probabilities.reduce(0, +) - 1) < 1e-5 && one.confidence == one.probabilities.max())
        let batch = try model.predict(batch: image + [UInt8](repeating: 0, count: 784) + image)
        #expect(batch.count == 3 && batch[0] == one && batch[2] == one)
        #expect(throws: FCLFError.self) { try model.predict(batch: [1, 2, 3]) }
        #expect(throws: FCLFError.self) { try model.predict(pixels: []) }
        // The same file through contentsOf: the same answer; a missing file throws.
        try ModelFile.save(try ModelFile.load(defaultModelFile), to: dir + "/m.fclf")
        #expect(try Classifier(contentsOf: dir + "/m.fclf").predict(pixels: image) == one)
        #expect(throws: FCLFError.self) { try Classifier(contentsOf: dir + "/none.fclf") }
    }

    @Test func photoFromPathMemoryAndFrameAgree() throws {
        let model = try Classifier.builtIn()
        writePhoto(dir + "/p.png")
        let fromFile = try model.classifyPhoto(atPath: dir + "/p.png")
        let fromMemory = try model.classifyPhoto(data: try FileIO.read(dir + "/p.png", limit: 1 << 20))
        #expect(fromFile == fromMemory)
        // The frame writePhoto draws, as BGR with a padded stride.
        let stride = 64 * 3 + 5
        var frame = [UInt8](repeating: 0, count: 48 * stride)
        for y in 0..<48 { for x in 0..<64 { for c in 0..<3 { frame[y * stride + 3 * x + c] = (8..<40).contains(y) && (20..<44).contains(x) ? 40 : 255 } } }
        let fromFrame = try frame.withUnsafeBytes { try model.classifyFrame($0, width: 64, height: 48, rowBytes: stride, format: .bgr8) }
        #expect(fromFrame == fromFile)
        #expect(throws: FCLFError.self) { try frame.withUnsafeBytes { try model.classifyFrame($0, width: 64, height: 49, rowBytes: stride, format: .bgr8) } }
        #expect(throws: FCLFError.self) { try model.classifyPhoto(data: Array("not a photo".utf8)) }
    }

    @Test func metadataRoundTripsAndRefusesBadEntries() throws {
        let net = ModelKind.mlp.build(seed: 2)
        net.metadata["test_accuracy"] = .number(0.8876)
        net.metadata["created"] = .string("2026-11-26T12:00:00Z")
        net.metadata["command"] = .string("fclf-train --model mlp \"quoted\"\n")
        let loaded = try ModelFile.decode(try ModelFile.encode(net, classes: 10), path: "m")
        #expect(loaded.metadata == net.metadata && loaded.formatVersion == 2)
        let json = Classifier(loaded).metadataJSON
        #expect(json.contains("\"test_accuracy\": 0.8876") && json.contains("\"created\": \"2026-11-26T12:00:00Z\""))
        #expect(json.contains("\\\"quoted\\\"\\n") && json.contains("\"architecture\": \"mlp\""))
        net.metadata["Bad Key"] = .number(1)
        #expect(throws: FCLFError.self) { try ModelFile.encode(net, classes: 10) }
        net.metadata["Bad Key"] = nil
        net.metadata["x"] = .number(.nan)
        #expect(throws: FCLFError.self) { try ModelFile.encode(net, classes: 10) }
    }
}
