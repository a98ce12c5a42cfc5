#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Monotonic seconds.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Terminal output that Swift 6's strict concurrency accepts (the C `stdout`/`stderr` globals are mutable).
public enum Console {
    /// One line on standard error.
    public static func error(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            off += n
        }
    }

    /// Flushes `print`'s buffered output, so that a log follows the run as it goes.
    public static func flush() { fflush(nil) }
}
