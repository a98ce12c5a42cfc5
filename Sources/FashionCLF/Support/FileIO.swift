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
    /// The whole of a regular file of at most `limit` bytes. Devices, pipes and folders are refused before
    /// anything is read (`/dev/zero` would otherwise be read up to the limit).
    public static func read(_ path: String, limit: Int) throws(FCLFError) -> [UInt8] {
        guard let f = fopen(path, "rb") else {
            throw .io(path: path, reason: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        var st = stat()
        guard fstat(fileno(f), &st) == 0 else { throw .io(path: path, reason: "cannot stat: \(String(cString: strerror(errno)))") }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw .io(path: path, reason: st.st_mode & S_IFMT == S_IFDIR ? "is a folder, not a file" : "not a regular file (a device, pipe or socket); give a file")
        }
        guard Int(st.st_size) <= limit else { throw .io(path: path, reason: "larger than \(limit) bytes") }
        var out: [UInt8] = []
        out.reserveCapacity(Int(st.st_size))
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

    /// Refuses, before any work is done for it, an output path whose folder is missing or not writable, or
    /// that names a folder. `option` is how the user gave it (for the message), such as "--sheet".
    public static func checkDestination(_ path: String, option: String) throws(FCLFError) {
        let folder = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let dir = folder.isEmpty ? "/" : folder
        var st = stat()
        guard stat(dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else {
            throw .io(path: path, reason: "\(option): the folder \(dir) does not exist; create it first (mkdir -p \(dir))")
        }
        guard access(dir, W_OK) == 0 else { throw .io(path: path, reason: "\(option): the folder \(dir) is not writable") }
        if stat(path, &st) == 0, st.st_mode & S_IFMT == S_IFDIR {
            throw .io(path: path, reason: "\(option): this is a folder; give a file name")
        }
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
