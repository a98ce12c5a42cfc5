import FashionCLF

extension Classifier {
    /// Classifies a JPEG or PNG photo of one garment through the real-photo preprocessing (README, "Real
    /// photos"): EXIF orientation, alpha over white, background from the border, crop to the garment,
    /// longest side to 28 pixels, negated when the background is light.
    public func classifyPhoto(atPath path: String, preprocessing: Preprocessing = .fashionMNIST) throws(FCLFError) -> Prediction {
        try classify(Photo.load(path), preprocessing)
    }

    /// The same for JPEG or PNG bytes in memory (an upload, a database blob).
    public func classifyPhoto(data: [UInt8], preprocessing: Preprocessing = .fashionMNIST) throws(FCLFError) -> Prediction {
        let photo = data.withUnsafeBytes { b in Result { () throws(FCLFError) in try Photo.decode(b) } }
        return try classify(photo.get(), preprocessing)
    }

    /// The same for a raw frame from a camera or a till: `height` rows of `rowBytes` bytes in `format`.
    public func classifyFrame(_ frame: UnsafeRawBufferPointer, width: Int, height: Int, rowBytes: Int,
                              format: Photo.PixelFormat) throws(FCLFError) -> Prediction {
        try classify(Photo(frame: frame, width: width, height: height, rowBytes: rowBytes, format: format), .fashionMNIST)
    }

    private func classify(_ photo: Photo, _ preprocessing: Preprocessing) throws(FCLFError) -> Prediction {
        let side = Preprocessor.side
        guard inputShape == Shape(n: 1, c: 1, h: side, w: side) else {
            throw .invalidArgument("model \(name) takes \(inputShape), photos become 1x\(side)x\(side) images")
        }
        return try predict(pixels: Preprocessor.prepare(photo, preprocessing).pixels)
    }
}
