/// What a model file says about itself besides its layers: when it was made, how, and how well it did.
/// `fclf-train` records it; `fclf_model_metadata` and `Classifier.metadataJSON` show it.
///
/// Entries keep their order. Keys are 1-64 characters of a-z, 0-9 and _; strings are at most 4,096 bytes of
/// UTF-8; numbers are finite doubles. A value that breaks these rules is refused when written or read.
public struct ModelMetadata: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case number(Double)
        case string(String)
    }

    public private(set) var entries: [(key: String, value: Value)] = []

    public init() {}

    public subscript(key: String) -> Value? {
        get { entries.first { $0.key == key }?.value }
        set {
            let at = entries.firstIndex { $0.key == key }
            switch (at, newValue) {
            case (let i?, let v?): entries[i].value = v
            case (let i?, nil): entries.remove(at: i)
            case (nil, let v?): entries.append((key, v))
            case (nil, nil): break
            }
        }
    }

    public static func == (a: ModelMetadata, b: ModelMetadata) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    static let maxKey = 64, maxString = 4096, maxBytes = 1 << 16

    static func validKey(_ key: String) -> Bool {
        (1...maxKey).contains(key.utf8.count) && key.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }
    }

    /// The stored form: per entry a type byte (1 number, 2 string), a u16 key length and the key, then a
    /// little-endian f64, or a u32 length and the UTF-8 bytes.
    func encoded() throws(FCLFError) -> [UInt8] {
        var out: [UInt8] = []
        for (key, value) in entries {
            guard ModelMetadata.validKey(key) else { throw .invalidArgument("metadata key \"\(key)\": use 1-64 characters a-z, 0-9, _") }
            switch value {
            case .number(let x):
                guard x.isFinite else { throw .invalidArgument("metadata \(key): \(x) is not a finite number") }
                out.append(1)
                withUnsafeBytes(of: UInt16(key.utf8.count).littleEndian) { out.append(contentsOf: $0) }
                out.append(contentsOf: key.utf8)
                withUnsafeBytes(of: x.bitPattern.littleEndian) { out.append(contentsOf: $0) }
            case .string(let s):
                guard s.utf8.count <= ModelMetadata.maxString else { throw .invalidArgument("metadata \(key): longer than \(ModelMetadata.maxString) bytes") }
                out.append(2)
                withUnsafeBytes(of: UInt16(key.utf8.count).littleEndian) { out.append(contentsOf: $0) }
                out.append(contentsOf: key.utf8)
                withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian) { out.append(contentsOf: $0) }
                out.append(contentsOf: s.utf8)
            }
        }
        guard out.count <= ModelMetadata.maxBytes else { throw .invalidArgument("metadata larger than \(ModelMetadata.maxBytes) bytes") }
        return out
    }

    /// Reads the stored form; `fail` words the error.
    init(decoding b: ArraySlice<UInt8>, fail: (String) -> FCLFError) throws(FCLFError) {
        var at = b.startIndex
        func take(_ n: Int) throws(FCLFError) -> ArraySlice<UInt8> {
            guard n >= 0, b.endIndex - at >= n else { throw fail("metadata truncated at byte \(at - b.startIndex)") }
            defer { at += n }
            return b[at..<at + n]
        }
        func le(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) } }
        while at < b.endIndex {
            let type = try take(1).first!
            let key = String(decoding: try take(Int(le(try take(2)))), as: UTF8.self)
            guard ModelMetadata.validKey(key), self[key] == nil else { throw fail("metadata key \"\(key)\" is malformed or repeated") }
            switch type {
            case 1:
                let x = Double(bitPattern: le(try take(8)))
                guard x.isFinite else { throw fail("metadata \(key) is not a finite number") }
                self[key] = .number(x)
            case 2:
                let n = Int(le(try take(4)))
                guard n <= ModelMetadata.maxString else { throw fail("metadata \(key) is longer than \(ModelMetadata.maxString) bytes") }
                let bytes = try take(n)
                guard let s = String(validating: bytes, as: UTF8.self) else { throw fail("metadata \(key) is not UTF-8") }
                self[key] = .string(s)
            default:
                throw fail("metadata \(key) has unknown type \(type)")
            }
        }
    }

    /// A JSON object of these entries after `leading` ones (which win over stored entries of the same key).
    public func json(leading: [(String, Value?)] = []) -> String {
        var parts: [String] = []
        var seen = Set<String>()
        for (key, value) in leading + entries.map({ ($0.key, Optional($0.value)) }) where seen.insert(key).inserted {
            parts.append("\(Text.json(key)): " + (value.map(ModelMetadata.render) ?? "null"))
        }
        return "{" + parts.joined(separator: ", ") + "}"
    }

    static func render(_ v: Value) -> String {
        switch v {
        case .number(let x): x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : Text.json(x)
        case .string(let s): Text.json(s)
        }
    }
}
