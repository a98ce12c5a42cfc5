// The IDX reader and the model file on small files the tests write: valid ones load, and each kind of
// damage is rejected with the error that names it.
import CZlib
@testable import FashionCLF
import Testing
#if canImport(Glibc)
import Glibc
#endif

private func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }

private func gzipFile(_ bytes: [UInt8], _ path: String) {
    let f = gzopen(path, "wb")!
    _ = bytes.withUnsafeBytes { gzwrite(f, $0.baseAddress, UInt32($0.count)) }
    gzclose(f)
}

private func idxImages(count: Int, rows: Int = 28, cols: Int = 28, magic: [UInt8] = [0, 0, 8, 3]) -> [UInt8] {
    magic + be32(count) + be32(rows) + be32(cols) + (0..<count * rows * cols).map { UInt8($0 % 251) }
}

private func idxLabels(_ labels: [UInt8]) -> [UInt8] { [0, 0, 8, 1] + be32(labels.count) + labels }

@Suite("IDX reader")
struct IDXTests {
    let dir = temporaryDirectory()

    private func load(images: [UInt8], labels: [UInt8]) throws(FCLFError) -> LabeledImages {
        gzipFile(images, dir + "/i.gz")
        gzipFile(labels, dir + "/l.gz")
        return try IDX.load(images: dir + "/i.gz", labels: dir + "/l.gz")
    }

    @Test func validFileLoads() throws {
        let data = try load(images: idxImages(count: 3), labels: idxLabels([0, 9, 4]))
        #expect(data.count == 3 && data.rows == 28 && data.cols == 28)
        #expect((0..<3).map { data.label($0) } == [0, 9, 4])
        #expect(data.image(1).count == 784 && data.image(1).first == UInt8(784 % 251) && data.image(1)[785] == UInt8(785 % 251))
        // A split shares storage and sees the right images.
        let tail = data.slice(1..<3)
        #expect(tail.count == 2 && tail.label(0) == 9 && Array(tail.image(1)) == Array(data.image(2)))
        #expect(tail.withPixels { Array($0) } == Array(data.image(1)) + Array(data.image(2)))
    }

    @Test func missingFileNamesTheAptPackage() {
        #expect(throws: FCLFError.datasetMissing(path: dir + "/nope.gz")) { try IDX.load(images: dir + "/nope.gz", labels: dir + "/nope2.gz") }
        #expect(FCLFError.datasetMissing(path: "x").description.contains("apt-get install dataset-fashion-mnist"))
    }

    @Test func wrongMagicIsRejected() {
        #expect { try load(images: idxImages(count: 2, magic: [1, 2, 8, 3]), labels: idxLabels([1, 2])) } throws: { error in
            (error as? FCLFError)?.description.contains("bad magic") == true
        }
        // Labels file given where images are expected: right magic family, wrong dimension count.
        #expect { try load(images: idxLabels([1, 2]), labels: idxLabels([1, 2])) } throws: { error in
            (error as? FCLFError)?.description.contains("3 dimension(s)") == true
        }
    }

    @Test func truncatedDataIsRejected() {
        var images = idxImages(count: 3)
        images.removeLast(100)
        #expect { try load(images: images, labels: idxLabels([0, 1, 2])) } throws: { error in
            (error as? FCLFError)?.description.contains("(truncated)") == true
        }
    }

    @Test func truncatedGzipStreamIsRejected() throws {
        gzipFile(idxImages(count: 50), dir + "/full.gz")
        var bytes = try FileIO.read(dir + "/full.gz", limit: 1 << 24)
        bytes.removeLast(bytes.count / 2)
        writeBytes(bytes, to: dir + "/cut.gz")
        gzipFile(idxLabels([UInt8](repeating: 1, count: 50)), dir + "/l50.gz")
        #expect(throws: FCLFError.self) { try IDX.load(images: dir + "/cut.gz", labels: dir + "/l50.gz") }
    }

    @Test("the header is checked against the file before anything is reserved or decompressed")
    func headerIsBoundedByTheFile() throws {
        func reason(_ path: String) -> String {
            do { _ = try IDX.read(path, dims: 3); return "accepted" } catch { return error.description }
        }
        // 2^31 images: past the 2 GiB bound whatever the file.
        gzipFile([0, 0, 8, 3] + be32(1 << 31 - 1) + be32(28) + be32(28) + [UInt8](repeating: 0, count: 4096), dir + "/huge.gz")
        #expect(reason(dir + "/huge.gz").contains("are too large"))
        // 2 million images (1.6 GB) in a gzip file of a few hundred bytes: more than deflate can expand to.
        gzipFile([0, 0, 8, 3] + be32(2_000_000) + be32(28) + be32(28) + [UInt8](repeating: 0, count: 100_000), dir + "/claims.gz")
        #expect(reason(dir + "/claims.gz").contains("more than a"))
        // Plain (uncompressed) files: the size must match exactly; the last bytes are data, not a gzip trailer.
        var plain = idxImages(count: 2)
        for i in plain.count - 4..<plain.count { plain[i] = 0xFF }
        writeBytes(plain, to: dir + "/plain-idx3")
        let (sizes, data) = try IDX.read(dir + "/plain-idx3", dims: 3)
        #expect(sizes == [2, 28, 28] && data.count == 2 * 784 && data.suffix(4) == [0xFF, 0xFF, 0xFF, 0xFF])
        writeBytes(plain + [1], to: dir + "/padded-idx3")
        #expect(reason(dir + "/padded-idx3").contains("truncated or padded"))
        // Data past the header's sizes inside a gzip stream.
        gzipFile(idxImages(count: 2) + [9, 9], dir + "/extra.gz")
        #expect(reason(dir + "/extra.gz").contains("data continues past"))
    }

    @Test func labelOutOfRangeIsRejected() {
        #expect { try load(images: idxImages(count: 3), labels: idxLabels([0, 10, 4])) } throws: { error in
            (error as? FCLFError)?.description.contains("label 10 at index 1 is outside 0-9") == true
        }
    }

    @Test func countMismatchAndWrongSizeAreRejected() {
        #expect { try load(images: idxImages(count: 3), labels: idxLabels([0, 1])) } throws: { error in
            (error as? FCLFError)?.description.contains("2 labels for 3 images") == true
        }
        #expect { try load(images: idxImages(count: 2, rows: 32, cols: 32), labels: idxLabels([0, 1])) } throws: { error in
            (error as? FCLFError)?.description.contains("32x32") == true
        }
    }
}

@Suite("Model file")
struct ModelFileTests {
    let dir = temporaryDirectory()

    private func predict(_ net: Sequential, _ x: [Float], n: Int) -> [Float] {
        var input = x
        return input.withUnsafeMutableBufferPointer { xb in
            let y = net.forward(Tensor(data: xb.baseAddress!, shape: net.inputShape.withBatch(n)), training: false)
            return Array(UnsafeBufferPointer(start: y.data, count: y.shape.count))
        }
    }

    @Test("a network of more layers than a model file holds is refused when saved, not written unreadable")
    func layerCap() throws {
        var rng = SplitMix64(seed: 3)
        let deep = try Sequential(name: "deep", inputShape: ModelKind.imageShape,
                                  specs: [LayerSpec](repeating: .relu, count: ModelFile.maxLayers) + [.flatten], rng: &rng)
        #expect(throws: FCLFError.invalidArgument("\(ModelFile.maxLayers + 1) layers; a model file holds at most \(ModelFile.maxLayers): use a shallower network")) {
            try ModelFile.encode(deep, classes: 10)
        }
    }

    @Test("save then load gives identical predictions", arguments: ModelKind.allCases)
    func roundTrip(_ kind: ModelKind) throws {
        let net = kind.build(seed: 9)
        let path = dir + "/\(kind.rawValue).fclf"
        try ModelFile.save(net, to: path)
        let loaded = try ModelFile.load(path)
        #expect(loaded.specs == net.specs && loaded.name == kind.rawValue)
        let x = randomArray(5 * 784, seed: 5).map { abs($0) }
        #expect(predict(loaded, x, n: 5) == predict(net, x, n: 5))
        #expect(access(path + ".tmp.\(getpid())", F_OK) != 0, "the temporary file is renamed away")
    }

    @Test("the named architecture wide-bn-nodrop is the one the built-in model was trained as")
    func namedArchitectureMatchesBuiltInFile() throws {
        // The specs are written with shared helpers (ModelKind.convBN, head); the file records what was trained.
        let loaded = try ModelFile.load(packageRoot + "/Sources/CModelData/builtin-model.fclf")
        #expect(loaded.name == ModelKind.wideBNNoDrop.rawValue)
        // A calibrated file ends with its temperature layer.
        #expect(Array(loaded.specs.prefix(ModelKind.wideBNNoDrop.specs.count)) == ModelKind.wideBNNoDrop.specs)
    }

    @Test func corruptedTruncatedAndForeignFilesAreRejected() throws {
        let good = try ModelFile.encode(ModelKind.mlp.build(seed: 1), classes: 10)
        func reason(_ bytes: [UInt8]) -> String {
            do { _ = try ModelFile.decode(bytes, path: "m.fclf"); return "accepted" } catch { return error.description }
        }
        var flipped = good
        flipped[good.count / 2] ^= 0x40
        #expect(reason(flipped).contains("checksum mismatch"))
        #expect(reason(Array(good.prefix(good.count - 10))).contains("checksum mismatch"))
        #expect(reason(Array(good.prefix(6))).contains("bad magic"))
        #expect(reason(Array("GIF89a this is not a model at all".utf8)).contains("bad magic"))
        var newer = good
        newer[8] = 3
        #expect(reason(newer).contains("format version 3, this library reads versions 1 and 2"))
        #expect(reason(good) == "accepted")
        #expect(throws: FCLFError.self) { try ModelFile.load(dir + "/missing.fclf") }
    }

    @Test func architectureThatDoesNotChainIsRejected() {
        var rng = SplitMix64(seed: 1)
        #expect(throws: FCLFError.self) {
            try Sequential(name: "bad", inputShape: ModelKind.imageShape, specs: [.flatten, .dense(inputSize: 100, outputSize: 10, activation: .none)], rng: &rng)
        }
    }
}
