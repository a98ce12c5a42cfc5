import CKernels

/// The GEMM's cache blocking in use (CKernels/gemm/blocking.c) and the caches it was derived from, for the
/// run logs and benchmarks: figures measured on another machine are only comparable with these beside them.
public struct GEMMBlocking: Sendable, CustomStringConvertible {
    public var mc: Int, kc: Int, nc: Int
    /// "cpuid", "sysfs", "defaults" or "FCLF_GEMM_BLOCKING".
    public var origin: String
    public var l1dBytes: Int, l1dWays: Int, l2Bytes: Int, l2Ways: Int, l3Bytes: Int, l3Sharing: Int

    public static var active: GEMMBlocking {
        var caches = fclf_cache_info()
        var origin: UnsafePointer<CChar>? = nil
        let b = fclf_gemm_blocking_active(&caches, &origin)
        return GEMMBlocking(mc: Int(b.mc), kc: Int(b.kc), nc: Int(b.nc), origin: origin.map { String(cString: $0) } ?? "?",
                            l1dBytes: Int(caches.l1d_bytes), l1dWays: Int(caches.l1d_ways), l2Bytes: Int(caches.l2_bytes),
                            l2Ways: Int(caches.l2_ways), l3Bytes: Int(caches.l3_bytes), l3Sharing: Int(caches.l3_sharing))
    }

    public var caches: String {
        func size(_ b: Int) -> String { b >= 1 << 20 ? Text.fixed(Double(b) / Double(1 << 20), b % (1 << 20) == 0 ? 0 : 2) + " MB" : "\(b / 1024) KB" }
        return "L1d \(size(l1dBytes)) \(l1dWays)-way, L2 \(size(l2Bytes)) \(l2Ways)-way, L3 \(size(l3Bytes)) shared by \(l3Sharing)"
    }

    public var description: String { "gemm blocking mc \(mc), kc \(kc), nc \(nc) (\(origin == "cpuid" || origin == "sysfs" || origin == "defaults" ? "from \(origin): " + caches : origin))" }
}
