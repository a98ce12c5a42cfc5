import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The fashionclf model file, format version 2 (version 1, without metadata, is still read). All integers
/// are little-endian u32 unless noted.
///
///     offset  size  field
///     0       8     magic "FCLFMODL"
///     8       4     format version (2, or 1); readers reject versions they do not know
///     12      4     name length L (<= 64), then L bytes of UTF-8 name ("cnn", "mlp")
///             12    input channels, height, width (1, 28, 28)
///             4     number of classes (10)
///             4     layer count (1...256), then per layer: its kind (`LayerKind`'s code), followed by its
///                   configuration:
///                     1 conv2d: in channels, out channels, kernel size, padding (0 valid, 1 same),
///                       activation (0 none, 1 ReLU)
///                     2 dense: inputs, outputs, activation (0 none, 1 ReLU)
///                     3 relu, 4 max-pool 2x2, 5 flatten, 8 global average pooling: nothing
///                     6 batchnorm: channels
///                     7 dropout: the rate's float32 bit pattern
///                     9 temperature: T's float32 bit pattern
///                     10 shortcut, 11 add shortcut (a residual block's start and end): nothing
///             4     (version 2 only) metadata length M (<= 65,536), then M bytes of `ModelMetadata`'s stored form
///             8     u64 stored-value count P, then P float32: for each layer with stored values, in order,
///                   its weight then its bias (conv weight [out, in, k, k]; dense weight [in, out]); for
///                   batchnorm gamma, beta, running mean, running variance
///     end-4   4     CRC-32 (zlib's) of every byte before it
///
/// Pixels are scaled to [0, 1] (x / 255) before the first layer; that is part of format version 1.
public enum ModelFile {
    public static let magic: [UInt8] = Array("FCLFMODL".utf8)
    public static let formatVersion: UInt32 = 2

    /// The most layers a model file holds (readers refuse more).
    public static let maxLayers = 256

    /// Throws for metadata that breaks `ModelMetadata`'s rules and for more than `maxLayers` layers.
    public static func encode(_ model: Sequential, classes: Int) throws(FCLFError) -> [UInt8] {
        guard model.specs.count <= maxLayers else {
            throw .invalidArgument("\(model.specs.count) layers; a model file holds at most \(maxLayers): use a shallower network")
        }
        let metadata = try model.metadata.encoded()
        var out = magic
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out.append(contentsOf: $0) } }
        u32(Int(formatVersion))
        let name = Array(model.name.utf8.prefix(64))
        u32(name.count)
        out.append(contentsOf: name)
        u32(model.inputShape.c); u32(model.inputShape.h); u32(model.inputShape.w)
        u32(classes)
        u32(model.specs.count)
        for spec in model.specs {
            u32(Int(spec.kind.rawValue))
            for word in spec.configuration { u32(word) }
        }
        u32(metadata.count)
        out.append(contentsOf: metadata)
        withUnsafeBytes(of: UInt64(model.storedCount).littleEndian) { out.append(contentsOf: $0) }
        for p in model.stored {
            for i in 0..<p.count { withUnsafeBytes(of: p.value[i].bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        }
        let crc = out.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) }
        u32(Int(crc))
        return out
    }

    public static func save(_ model: Sequential, classes: Int = 10, to path: String) throws(FCLFError) {
        try FileIO.writeAtomically(try encode(model, classes: classes), to: path)
    }

    public static func load(_ path: String) throws(FCLFError) -> Sequential {
        try decode(FileIO.read(path, limit: 1 << 30), path: path)
    }

    public static func decode(_ b: [UInt8], path: String) throws(FCLFError) -> Sequential {
        func fail(_ reason: String) -> FCLFError { .modelFile(path: path, reason: reason) }
        guard b.count >= 12, Array(b[0..<8]) == magic else { throw fail("bad magic (not an fclf model)") }
        var at = 8
        func u32() throws(FCLFError) -> Int {
            guard at + 4 <= b.count - 4 else { throw fail("truncated at byte \(at)") }
            defer { at += 4 }
            return Int(b[at]) | Int(b[at + 1]) << 8 | Int(b[at + 2]) << 16 | Int(b[at + 3]) << 24
        }
        let version = try u32()
        guard version == 1 || version == Int(formatVersion) else {
            throw fail("format version \(version), this library reads versions 1 and \(formatVersion); use a newer fashionclf")
        }
        guard b.count >= 16 else { throw fail("truncated header") }
        let stored = b.count - 4
        let crcStored = UInt32(b[stored]) | UInt32(b[stored + 1]) << 8 | UInt32(b[stored + 2]) << 16 | UInt32(b[stored + 3]) << 24
        let crc = b.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32(stored)) }
        guard crc == crcStored else { throw fail("checksum mismatch (file is corrupted or truncated)") }

        let nameLength = try u32()
        guard nameLength <= 64, at + nameLength <= stored else { throw fail("bad name length \(nameLength)") }
        let name = String(decoding: b[at..<at + nameLength], as: UTF8.self)
        at += nameLength
        let c = try u32(), h = try u32(), w = try u32(), classes = try u32()
        guard (1...64).contains(c), (1...4096).contains(h), (1...4096).contains(w), (2...1000).contains(classes) else {
            throw fail("implausible input [\(c), \(h), \(w)] or class count \(classes)")
        }
        let layerCount = try u32()
        guard (1...maxLayers).contains(layerCount) else { throw fail("bad layer count \(layerCount)") }
        var specs: [LayerSpec] = []
        for i in 0..<layerCount {
            let code = try u32()
            guard let kind = LayerKind(rawValue: UInt32(truncatingIfNeeded: code)) else {
                throw fail("layer \(i): unknown layer kind \(code)")
            }
            do {
                specs.append(try LayerSpec(kind: kind, configuration: u32))
            } catch .invalidArgument(let reason) {
                throw fail("layer \(i): \(reason)")
            }
        }
        let plan: Plan
        do {
            plan = try Plan(specs: specs, inputShape: Shape(n: 1, c: c, h: h, w: w))
        } catch {
            throw fail("architecture does not chain: \(error)")
        }
        guard plan.outputSize == classes else { throw fail("network outputs \(plan.outputSize) values for \(classes) classes") }
        var metadata = ModelMetadata()
        if version >= 2 {
            let length = try u32()
            guard length <= ModelMetadata.maxBytes, at + length <= stored else { throw fail("bad metadata length \(length)") }
            metadata = try ModelMetadata(decoding: b[at..<at + length], fail: fail)
            at += length
        }
        guard at + 8 <= stored else { throw fail("truncated before the parameters") }
        var count = 0
        for k in 0..<8 { count |= Int(b[at + k]) << (8 * k) }
        at += 8
        // Checked against the file's size before any weight memory is reserved.
        guard count == plan.parameterCount, stored - at == 4 * count else {
            throw fail("holds \(count) parameters in \(stored - at) bytes, the architecture needs \(plan.parameterCount)")
        }
        // Loading draws nothing: every stored value is read below.
        var rng = SplitMix64(seed: 0)
        let model = Sequential(name: name, plan: plan, initializer: .zero, rng: &rng)
        model.metadata = metadata
        model.formatVersion = version
        for p in model.stored {
            for i in 0..<p.count {
                let bits = UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
                let v = Float(bitPattern: bits)
                guard v.isFinite else { throw fail("non-finite value in \(p.name) of a layer") }
                guard p.name != "running_var" || v >= 0 else { throw fail("negative running variance in a batchnorm layer") }
                p.value[i] = v
                at += 4
            }
        }
        return model
    }
}
