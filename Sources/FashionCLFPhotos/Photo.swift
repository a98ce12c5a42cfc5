import CImageIO
import FashionCLF

/// An 8-bit RGBA photo in memory (straight alpha), upright (EXIF orientation applied).
public struct Photo: Sendable {
    public let width: Int, height: Int
    public let rgba: [UInt8]

    public init(width: Int, height: Int, rgba: [UInt8]) {
        self.width = width; self.height = height; self.rgba = rgba
    }

    /// Photos above this many pixels are refused before decoding (a 24-bit image of this size is ~256 MB).
    public static let defaultPixelLimit = 64_000_000

    /// Decodes a JPEG or PNG file.
    public static func load(_ path: String, pixelLimit: Int = defaultPixelLimit) throws(FCLFError) -> Photo {
        var image = fclf_rgba_image()
        var err = [CChar](repeating: 0, count: 512)
        let rc = fclf_image_decode(path, Int64(pixelLimit), &image, &err, err.count)
        let message = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        switch Int32(rc) {
        case Int32(FCLF_IMAGE_OK): break
        case Int32(FCLF_IMAGE_IO): throw .io(path: path, reason: message)
        case Int32(FCLF_IMAGE_TOO_LARGE), Int32(FCLF_IMAGE_NO_MEMORY): throw .resourceLimit(message)
        default: throw .photo(message)
        }
        defer { fclf_image_free(&image) }
        let w = Int(image.width), h = Int(image.height)
        return Photo(width: w, height: h, rgba: Array(UnsafeBufferPointer(start: image.rgba, count: w * h * 4)))
    }
}
