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
    /// The largest photo file (or in-memory photo) decoded, in bytes.
    public static let maxFileBytes = Int(FCLF_IMAGE_MAX_FILE)

    /// Decodes a JPEG or PNG file.
    public static func load(_ path: String, pixelLimit: Int = defaultPixelLimit) throws(FCLFError) -> Photo {
        try decoded(path: path) { image, err in fclf_image_decode(path, Int64(pixelLimit), &image, err.baseAddress, err.count) }
    }

    /// Decodes JPEG or PNG bytes held in memory (an upload, a database blob); `name` labels the messages.
    public static func decode(_ bytes: UnsafeRawBufferPointer, name: String = "<photo in memory>",
                              pixelLimit: Int = defaultPixelLimit) throws(FCLFError) -> Photo {
        guard bytes.count <= maxFileBytes else {
            throw .resourceLimit("\(name): \(bytes.count) bytes is above the \(maxFileBytes >> 20) MB a photo may have")
        }
        return try decoded(path: name) { image, err in
            fclf_image_decode_memory(bytes.baseAddress, bytes.count, name, Int64(pixelLimit), &image, err.baseAddress, err.count)
        }
    }

    private static func decoded(path: String, _ decode: (inout fclf_rgba_image, UnsafeMutableBufferPointer<CChar>) -> Int32) throws(FCLFError) -> Photo {
        var image = fclf_rgba_image()
        var err = [CChar](repeating: 0, count: 512)
        let rc = err.withUnsafeMutableBufferPointer { decode(&image, $0) }
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

    /// How a raw frame's bytes are laid out per pixel (a camera's or a till's buffer).
    public enum PixelFormat: Int, CaseIterable, Sendable {
        case gray8 = 0, rgb8, rgba8, bgr8, bgra8

        public var bytesPerPixel: Int { [1, 3, 4, 3, 4][rawValue] }
        /// Where red, green, blue and alpha sit in a pixel (alpha nil: opaque).
        var channels: (r: Int, g: Int, b: Int, a: Int?) {
            switch self {
            case .gray8: (0, 0, 0, nil)
            case .rgb8: (0, 1, 2, nil)
            case .rgba8: (0, 1, 2, 3)
            case .bgr8: (2, 1, 0, nil)
            case .bgra8: (2, 1, 0, 3)
            }
        }
    }

    /// The bytes a frame spans: `height` rows of `rowBytes` bytes, the last only as long as its pixels. Throws for
    /// a size, stride or pixel count the photo pipeline refuses (the C API checks a caller's frame with this
    /// before reading it).
    public static func frameBytes(width: Int, height: Int, rowBytes: Int, format: PixelFormat,
                                  pixelLimit: Int = Photo.defaultPixelLimit) throws(FCLFError) -> Int {
        let bpp = format.bytesPerPixel
        guard width >= 1, height >= 1 else { throw .invalidArgument("frame size \(width)x\(height): width and height must be at least 1") }
        guard width <= pixelLimit / height else {
            throw .resourceLimit("frame of \(width)x\(height) pixels is above the limit of \(pixelLimit); downscale it")
        }
        guard rowBytes >= width * bpp else {
            throw .invalidArgument("row_bytes \(UInt(bitPattern: rowBytes)) is less than width \(width) x \(bpp) bytes per pixel; pass the frame's stride")
        }
        let (span, overflow) = rowBytes.multipliedReportingOverflow(by: height - 1)
        guard !overflow, span <= Int.max - width * bpp else {
            throw .invalidArgument("row_bytes \(rowBytes) x \(height) rows is not a size; pass the frame's stride")
        }
        return span + width * bpp
    }

    /// A raw frame: `height` rows of `rowBytes` bytes (row stride, >= width * bytes per pixel), top row
    /// first, in `format`. Alpha, where present, is straight (not premultiplied).
    public init(frame: UnsafeRawBufferPointer, width: Int, height: Int, rowBytes: Int, format: PixelFormat,
                pixelLimit: Int = Photo.defaultPixelLimit) throws(FCLFError) {
        let bpp = format.bytesPerPixel
        let needed = try Photo.frameBytes(width: width, height: height, rowBytes: rowBytes, format: format, pixelLimit: pixelLimit)
        guard frame.count >= needed else {
            throw .invalidArgument("a \(width)x\(height) frame with row_bytes \(rowBytes) needs \(needed) bytes, got \(frame.count)")
        }
        let (r, g, b, a) = format.channels
        var rgba = [UInt8](repeating: 255, count: width * height * 4)
        for y in 0..<height {
            let row = y * rowBytes
            for x in 0..<width {
                let p = row + x * bpp, q = 4 * (y * width + x)
                rgba[q] = frame[p + r]; rgba[q + 1] = frame[p + g]; rgba[q + 2] = frame[p + b]
                if let a { rgba[q + 3] = frame[p + a] }
            }
        }
        self.init(width: width, height: height, rgba: rgba)
    }
}
