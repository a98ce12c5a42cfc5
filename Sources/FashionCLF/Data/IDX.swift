import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The IDX format (LeCun et al.): a big-endian header `00 00 <type> <ndims>`, ndims u32 sizes, then data.
public enum IDX {
    static let maxBytes = 1 << 31

    /// Reads a whole gzip (or plain) file through zlib.
    public static func readGzip(_ path: String) throws(FCLFError) -> [UInt8] {
        guard access(path, F_OK) == 0 else { throw .datasetMissing(path: path) }
        guard let file = gzopen(path, "rb") else {
            throw .io(path: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { gzclose(file) }
        var out: [UInt8] = []
        // gzip's trailer holds the uncompressed size (mod 2^32): reserving it avoids growing by doubling,
        // which briefly holds two copies of a 47 MB array.
        // The trailer is only a hint: a plain file reserves its own size, and a gzip file at most what deflate
        // can expand it to (1032:1), so a damaged or foreign trailer cannot reserve 2 GiB (found by fuzzing).
        if let f = fopen(path, "rb") {
            var head = [UInt8](repeating: 0, count: 2), trailer = [UInt8](repeating: 0, count: 4)
            if fread(&head, 1, 2, f) == 2, fseek(f, -4, SEEK_END) == 0, fread(&trailer, 1, 4, f) == 4 {
                let fileSize = ftell(f)
                let size = head != [0x1f, 0x8b] ? fileSize
                    : Int(trailer[0]) | Int(trailer[1]) << 8 | Int(trailer[2]) << 16 | Int(trailer[3]) << 24
                out.reserveCapacity(min(size, 1032 * fileSize, maxBytes))
            }
            fclose(f)
        }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n < 0 {
                var code: Int32 = 0
                let msg = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
                throw .badDataFile(path: path, reason: "corrupt or truncated gzip data (\(msg))")
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
            if out.count > maxBytes { throw .badDataFile(path: path, reason: "larger than 2 GiB, not an IDX file") }
        }
        // zlib reports a stream cut short only through gzerror once reading stops.
        var code: Int32 = 0
        _ = gzerror(file, &code)
        if code != Z_OK && code != Z_STREAM_END {
            throw .badDataFile(path: path, reason: "corrupt or truncated gzip data (zlib error \(code))")
        }
        return out
    }

    static func u32(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
    }

    /// Parses an unsigned-byte IDX file with `dims` dimensions; returns the sizes and the payload offset.
    static func parse(_ b: [UInt8], dims: Int, path: String) throws(FCLFError) -> [Int] {
        let header = 4 + 4 * dims
        guard b.count >= 4, b[0] == 0, b[1] == 0 else {
            throw .badDataFile(path: path, reason: "not an IDX file (bad magic)")
        }
        guard b[2] == 0x08, Int(b[3]) == dims else {
            throw .badDataFile(path: path, reason: "expected an unsigned-byte IDX file with \(dims) dimension(s), found type 0x\(String(b[2], radix: 16)) with \(b[3])")
        }
        guard b.count >= header else { throw .badDataFile(path: path, reason: "truncated header") }
        let sizes = (0..<dims).map { u32(b, 4 + 4 * $0) }
        var expected = 1
        for s in sizes {
            let (p, overflow) = expected.multipliedReportingOverflow(by: s)
            guard !overflow, p <= maxBytes else { throw .badDataFile(path: path, reason: "dimensions \(sizes) are too large") }
            expected = p
        }
        guard b.count - header == expected else {
            throw .badDataFile(path: path, reason: "header says \(sizes) = \(expected) bytes of data, file has \(b.count - header) (truncated or padded)")
        }
        return sizes
    }

    public static func load(images: String, labels: String) throws(FCLFError) -> LabeledImages {
        var ib: [UInt8] = try readGzip(images)
        let isz = try parse(ib, dims: 3, path: images)
        let lb = try readGzip(labels)
        let lsz = try parse(lb, dims: 1, path: labels)
        guard isz[1] > 0, isz[2] > 0 else { throw .badDataFile(path: images, reason: "empty images \(isz)") }
        guard isz[1] == 28, isz[2] == 28 else {
            throw .badDataFile(path: images, reason: "images are \(isz[1])x\(isz[2]), Fashion-MNIST's are 28x28")
        }
        guard isz[0] == lsz[0] else {
            throw .badDataFile(path: labels, reason: "\(lsz[0]) labels for \(isz[0]) images in \(images)")
        }
        var labelBytes = lb
        labelBytes.removeFirst(8)
        if let bad = labelBytes.firstIndex(where: { $0 > 9 }) {
            throw .badDataFile(path: labels, reason: "label \(labelBytes[bad]) at index \(bad) is outside 0-9")
        }
        // Drop the header in place: a copy of the 47 MB training pixels would double the peak memory.
        ib.removeFirst(16)
        return LabeledImages(count: isz[0], rows: isz[1], cols: isz[2], pixels: ib, labels: labelBytes)
    }
}
