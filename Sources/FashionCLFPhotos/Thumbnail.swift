extension Preprocessor {
    /// The photo scaled to fit `side` x `side` (longest side `side`, aspect ratio kept), as 8-bit RGB,
    /// row-major: alpha composited onto white and area averaging, as the preprocessing does. For figures
    /// (fclf-classify's contact sheet), not for the network.
    public static func thumbnail(_ photo: Photo, fitting side: Int) -> (width: Int, height: Int, rgb: [UInt8]) {
        precondition(side >= 1, "thumbnail side \(side)")
        let (rgb, w, h, _) = composite(photo)
        let s = Double(side) / Double(max(w, h))
        let tw = max(1, Int(Double(w) * s)), th = max(1, Int(Double(h) * s))
        let planes = (0..<3).map { ch in areaResize((0..<w * h).map { rgb[3 * $0 + ch] }, w, h, tw, th) }
        func byte(_ v: Double) -> UInt8 { UInt8(max(0, min(255, v.rounded()))) }
        var out = [UInt8](repeating: 0, count: tw * th * 3)
        for i in 0..<tw * th { for ch in 0..<3 { out[3 * i + ch] = byte(planes[ch][i]) } }
        return (tw, th, out)
    }
}
