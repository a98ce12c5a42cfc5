import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The IDX format (LeCun et al.): a big-endian header `00 00 <type> <ndims>`, ndims u32 sizes, then data.
///
/// Files are read through zlib (gzip-compressed or plain) header first: nothing is reserved or decompressed
/// before the header's sizes have been checked against the file's own size, so a small file claiming
/// billions of images costs nothing.
public enum IDX {
    static let maxBytes = 1 << 31
    /// Deflate's largest expansion (a stream of repeated bytes): no gzip file of n bytes holds more than
    /// 1032 n bytes of data.
    static let maxInflation = 1032

    /// Reads an unsigned-byte IDX file with `dims` dimensions: returns its sizes and its data (after the header).
    public static func read(_ path: String, dims: Int) throws(FCLFError) -> (sizes: [Int], data: [UInt8]) {
        func bad(_ reason: String) -> FCLFError { .badDataFile(path: path, reason: reason) }
        guard access(path, F_OK) == 0 else { throw .datasetMissing(path: path) }
        var st = stat()
        guard stat(path, &st) == 0 else { throw .io(path: path, reason: "cannot stat: \(String(cString: strerror(errno)))") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw bad("not a regular file") }
        let fileSize = Int(st.st_size)
        guard let file = gzopen(path, "rb") else {
            throw .io(path: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { gzclose(file) }

        /// Reads up to `count` bytes to `into`: how many were read (fewer only at the end), or -1 on a zlib error.
        func fill(_ into: UnsafeMutableRawPointer, _ count: Int) -> Int {
            var done = 0
            while done < count {
                let n = gzread(file, into + done, UInt32(min(count - done, 1 << 30)))
                if n < 0 { return -1 }
                if n == 0 { break }
                done += Int(n)
            }
            return done
        }
        func zlibError() -> FCLFError {
            var code: Int32 = 0
            let msg = gzerror(file, &code).map { String(cString: $0) } ?? "unknown zlib error"
            return bad("corrupt or truncated gzip data (\(msg))")
        }

        var head = [UInt8](repeating: 0, count: 4 + 4 * dims)
        let got = head.withUnsafeMutableBytes { fill($0.baseAddress!, 4) }
        guard got >= 0 else { throw zlibError() }
        guard got == 4, head[0] == 0, head[1] == 0 else { throw bad("not an IDX file (bad magic)") }
        guard head[2] == 0x08, Int(head[3]) == dims else {
            throw bad("expected an unsigned-byte IDX file with \(dims) dimension(s), found type 0x\(String(head[2], radix: 16)) with \(head[3])")
        }
        let words = head.withUnsafeMutableBytes { fill($0.baseAddress! + 4, 4 * dims) }
        guard words >= 0 else { throw zlibError() }
        guard words == 4 * dims else { throw bad("truncated header") }
        let sizes = (0..<dims).map { u32(head, 4 + 4 * $0) }
        var expected = 1
        for s in sizes {
            let (p, overflow) = expected.multipliedReportingOverflow(by: s)
            guard !overflow, p <= maxBytes else { throw bad("dimensions \(sizes) are too large") }
            expected = p
        }
        let header = head.count
        if gzdirect(file) != 0 {
            guard fileSize - header == expected else {
                throw bad("header says \(sizes) = \(expected) bytes of data, file has \(fileSize - header) (truncated or padded)")
            }
        } else if expected > fileSize * maxInflation {
            throw bad("header says \(sizes) = \(expected) bytes of data, more than a \(fileSize)-byte gzip file can hold (damaged header)")
        }
        var n = 0
        let data = [UInt8](unsafeUninitializedCapacity: expected) { buffer, initialized in
            n = expected == 0 ? 0 : fill(UnsafeMutableRawPointer(buffer.baseAddress!), expected)
            initialized = max(n, 0)
        }
        guard n >= 0 else { throw zlibError() }
        guard n == expected else { throw bad("header says \(sizes) = \(expected) bytes of data, file has \(n) (truncated)") }
        var extra: UInt8 = 0
        let more = fill(&extra, 1)
        guard more >= 0 else { throw zlibError() }
        guard more == 0 else {
            throw bad("data continues past the \(expected) bytes the header announces (padded, or not an IDX file)")
        }
        // zlib reports a stream cut short only through gzerror once reading stops.
        var code: Int32 = 0
        _ = gzerror(file, &code)
        guard code == Z_OK || code == Z_STREAM_END else { throw bad("corrupt or truncated gzip data (zlib error \(code))") }
        return (sizes, data)
    }

    static func u32(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
    }

    public static func load(images: String, labels: String) throws(FCLFError) -> LabeledImages {
        let (isz, pixels) = try read(images, dims: 3)
        let (lsz, labelBytes) = try read(labels, dims: 1)
        guard isz[1] > 0, isz[2] > 0 else { throw .badDataFile(path: images, reason: "empty images \(isz)") }
        guard isz[1] == 28, isz[2] == 28 else {
            throw .badDataFile(path: images, reason: "images are \(isz[1])x\(isz[2]), Fashion-MNIST's are 28x28")
        }
        guard isz[0] == lsz[0] else {
            throw .badDataFile(path: labels, reason: "\(lsz[0]) labels for \(isz[0]) images in \(images)")
        }
        if let bad = labelBytes.firstIndex(where: { $0 > 9 }) {
            throw .badDataFile(path: labels, reason: "label \(labelBytes[bad]) at index \(bad) is outside 0-9")
        }
        return LabeledImages(count: isz[0], rows: isz[1], cols: isz[2], pixels: pixels, labels: labelBytes)
    }
}
