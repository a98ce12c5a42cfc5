import CSignal

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// File helpers: whole-file reads with a size limit, and atomic writes (temporary file, fsync, rename),
/// so an interrupted run never leaves a half-written model or report behind. A process killed while writing
/// (SIGKILL) can leave its `PATH.tmp.PID` file; fclf-train removes those of dead processes from its
/// checkpoint folder when it starts.
public enum FileIO {
    public static func read(_ path: String, limit: Int) throws(FCLFError) -> [UInt8] {
        guard let f = fopen(path, "rb") else {
            throw .io(path: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
            if out.count > limit { throw .io(path: path, reason: "larger than \(limit) bytes") }
        }
        if ferror(f) != 0 { throw .io(path: path, reason: "read error: \(String(cString: strerror(errno)))") }
        return out
    }

    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(FCLFError) {
        let tmp = path + ".tmp.\(getpid())"
        // fclf-train's second Ctrl-C exits at once and removes this file (a no-op elsewhere).
        fclf_temporary_file_begin(tmp)
        defer { fclf_temporary_file_end() }
        guard let f = fopen(tmp, "wb") else {
            throw .io(path: path, reason: "cannot create \(tmp): \(String(cString: strerror(errno))); check that the folder exists and is writable")
        }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
        let ok = written == bytes.count && fflush(f) == 0 && fsync(fileno(f)) == 0
        let err = errno
        fclose(f)
        guard ok else {
            unlink(tmp)
            throw .io(path: path, reason: "write failed: \(String(cString: strerror(err)))")
        }
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw .io(path: path, reason: "cannot rename into place: \(String(cString: strerror(e)))")
        }
    }

    public static func writeAtomically(_ text: String, to path: String) throws(FCLFError) {
        try writeAtomically(Array(text.utf8), to: path)
    }
}
