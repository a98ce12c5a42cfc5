// Fuzzing's regression inputs: every file under Fixtures/fuzz/<target>/ (inputs the fuzzers found, and
// handmade hostile ones) goes through the entry point its fuzz target drives (Fuzz/Sources/FuzzSupport) and
// must either load or throw an FCLFError whose one-line message names the file: no crash, trap, or
// allocation its size does not justify. Files named ok-* must load. scripts/fuzz.sh also seeds the
// corpora with them.
@testable import FashionCLF
import FashionCLFPhotos
import Testing
#if canImport(Glibc)
import Glibc
#endif

private let fuzzFixtures = packageRoot + "/Tests/FashionCLFTests/Fixtures/fuzz"

/// The files of Fixtures/fuzz/<target>/, sorted.
private func fuzzInputs(_ target: String) -> [String] {
    guard let dir = opendir(fuzzFixtures + "/" + target) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if !name.hasPrefix(".") { names.append(name) }
    }
    return names.sorted().map { fuzzFixtures + "/" + target + "/" + $0 }
}

private func fileName(_ path: String) -> String { String(path.split(separator: "/").last ?? "") }

/// Runs `load`: ok-* files must load; the others must throw an FCLFError on one line that names one of `paths`.
private func expectLoadsOrFailsCleanly(_ file: String, naming paths: [String],
                                       _ load: () throws(FCLFError) -> Void) {
    do {
        try load()
        #expect(fileName(file).hasPrefix("ok-"), "\(fileName(file)) loaded; it should be refused (or be named ok-*)")
    } catch {
        #expect(!fileName(file).hasPrefix("ok-"), "\(fileName(file)) should load: \(error)")
        let message = error.description
        #expect(!message.contains("\n") && paths.contains { message.contains($0) }, "\(fileName(file)): unclear error: \(message)")
    }
}

@Suite("Fuzz regression inputs")
struct FuzzRegressionTests {
    @Test("fixture folders hold inputs", arguments: ["model", "idx", "photo", "checkpoint"])
    func present(_ target: String) {
        #expect(fuzzInputs(target).count >= 3)
    }

    /// fuzz-checkpoint: Checkpoint.decode; one that loads writes back (encode) to the same values.
    @Test("training checkpoints", arguments: fuzzInputs("checkpoint"))
    func checkpoint(_ path: String) throws {
        let bytes = try FileIO.read(path, limit: 1 << 23)
        expectLoadsOrFailsCleanly(path, naming: [path]) { () throws(FCLFError) in
            let c = try Checkpoint.decode(bytes, path: path)
            let again = try Checkpoint.decode(c.encode(), path: path)
            #expect(again == c, "\(fileName(path)) reads back with other values")
        }
    }

    /// fuzz-model and fuzz-model-crc: ModelFile.decode, Classifier, and one prediction when the network is small.
    @Test("model files", arguments: fuzzInputs("model"))
    func modelFile(_ path: String) throws {
        let bytes = try FileIO.read(path, limit: 1 << 20)
        expectLoadsOrFailsCleanly(path, naming: [path]) { () throws(FCLFError) in
            let classifier = Classifier(try ModelFile.decode(bytes, path: path))
            let plan = classifier.plan
            guard plan.inputShape.perSample <= 1 << 16, plan.steps.allSatisfy({ $0.output.perSample <= 1 << 16 }) else { return }
            let pixels = [UInt8](repeating: 0, count: plan.inputShape.perSample)
            var label: Int32 = -1
            switch Result(catching: { () throws(FCLFError) in try classifier.predict(pixels, count: 1, probabilities: nil, labels: &label) }) {
            case .success: #expect(label >= 0 && Int(label) < classifier.classes)
            // Finite weights whose output overflows: refused per prediction, never NaN with success.
            case .failure(.numeric): break
            case .failure(let error): throw error
            }
        }
    }

    /// fuzz-idx: the first two bytes (little-endian) are the images file's length, then the images file, then the
    /// labels file; both go to IDX.load(images:labels:).
    @Test("IDX file pairs", arguments: fuzzInputs("idx"))
    func idxFiles(_ path: String) throws {
        let bytes = try FileIO.read(path, limit: 1 << 20)
        try #require(bytes.count >= 2)
        let n = min(Int(bytes[0]) | Int(bytes[1]) << 8, bytes.count - 2)
        let dir = temporaryDirectory(), images = dir + "/images", labels = dir + "/labels"
        writeBytes(Array(bytes[2..<2 + n]), to: images)
        writeBytes(Array(bytes[(2 + n)...]), to: labels)
        expectLoadsOrFailsCleanly(path, naming: [images, labels]) { () throws(FCLFError) in
            let data = try IDX.load(images: images, labels: labels)
            #expect(data.rows == 28 && data.cols == 28 && (0..<data.count).allSatisfy { data.label($0) <= 9 })
        }
    }

    /// fuzz-photo: Photo.load with the default pixel limit, then both preprocessings.
    @Test("photos", arguments: fuzzInputs("photo"))
    func photo(_ path: String) {
        expectLoadsOrFailsCleanly(path, naming: [path]) { () throws(FCLFError) in
            let photo = try Photo.load(path)
            for method in Preprocessing.allCases {
                #expect(Preprocessor.prepare(photo, method).pixels.count == 784)
            }
        }
    }
}
