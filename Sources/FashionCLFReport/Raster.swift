import CImageIO
import CRender
import FashionCLF

#if canImport(Glibc)
import Glibc
#endif

/// An RGBA image to draw report and contact-sheet figures on: fills, frames, enlarged grayscale inputs,
/// and text through FreeType.
public struct Raster {
    public let width: Int, height: Int
    public var rgba: [UInt8]

    public static let fontPath = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

    public init(width: Int, height: Int) {
        self.width = width; self.height = height
        rgba = [UInt8](repeating: 255, count: width * height * 4)
    }

    public mutating func set(_ x: Int, _ y: Int, _ r: UInt8, _ g: UInt8, _ b: UInt8) {
        guard x >= 0, y >= 0, x < width, y < height else { return }
        let i = 4 * (y * width + x)
        rgba[i] = r; rgba[i + 1] = g; rgba[i + 2] = b; rgba[i + 3] = 255
    }

    /// A 3-pixel frame inside the rectangle.
    public mutating func frame(_ x: Int, _ y: Int, _ w: Int, _ h: Int, _ c: (UInt8, UInt8, UInt8)) {
        for yy in y..<(y + h) {
            for xx in x..<(x + w) where yy < y + 3 || yy >= y + h - 3 || xx < x + 3 || xx >= x + w - 3 { set(xx, yy, c.0, c.1, c.2) }
        }
    }

    /// A 28x28 grayscale input enlarged `scale` times (nearest neighbour: the pixels the network sees).
    public mutating func gray(_ pixels: ArraySlice<UInt8>, side: Int = 28, at x: Int, _ y: Int, scale: Int) {
        let base = pixels.startIndex
        for yy in 0..<side * scale {
            for xx in 0..<side * scale {
                let v = pixels[base + (yy / scale) * side + xx / scale]
                set(x + xx, y + yy, v, v, v)
            }
        }
    }

    /// Text with its baseline at y (0xRRGGBB); false when the font is missing.
    @discardableResult
    public mutating func text(_ s: String, at x: Int, _ y: Int, color: UInt32 = 0x202020, size: Int = 12, font: Font) -> Bool {
        let w = width, h = height
        return rgba.withUnsafeMutableBufferPointer { fclf_draw_text(font.handle, $0.baseAddress, Int32(w), Int32(h), Int32(x), Int32(y), s, color) } >= 0
    }

    public func png() throws(FCLFError) -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = rgba.withUnsafeBufferPointer { fclf_image_encode_png($0.baseAddress, Int32(width), Int32(height), &out, &size, &err, err.count) }
        guard rc == 0, let out else { throw .resourceLimit(String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
        defer { free(out) }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }

    /// A FreeType face at one pixel size.
    public final class Font {
        let handle: OpaquePointer

        public init(size: Int = 12, path: String = Raster.fontPath) throws(FCLFError) {
            guard let h = fclf_font_open(path, Int32(size)) else {
                throw .io(path: path, reason: "cannot load the font for figure text; install it with `apt-get install fonts-dejavu-core`")
            }
            handle = h
        }

        deinit { fclf_font_close(handle) }
    }
}

/// RFC 4648 base64, for embedding PNGs in the HTML report.
public func base64(_ bytes: [UInt8]) -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out = [UInt8]()
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var i = 0
    while i < bytes.count {
        let b0 = Int(bytes[i]), b1 = i + 1 < bytes.count ? Int(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? Int(bytes[i + 2]) : 0
        out.append(table[b0 >> 2])
        out.append(table[(b0 & 3) << 4 | b1 >> 4])
        out.append(i + 1 < bytes.count ? table[(b1 & 15) << 2 | b2 >> 6] : UInt8(ascii: "="))
        out.append(i + 2 < bytes.count ? table[b2 & 63] : UInt8(ascii: "="))
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}
