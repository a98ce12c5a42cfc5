import FashionCLF

/// fclf-classify's figure (the seed's, as a PNG): per photo, the original as a thumbnail beside the
/// network's 28x28 input (enlarged 4x, nearest neighbour), with the prediction under them; with labels,
/// the true class, and a red frame around wrong predictions (green around right ones).
public enum ContactSheet {
    /// The thumbnail box's side: a photo's thumbnail fits in it (longest side `thumb`) and is centred.
    public static let thumb = 112
    static let pad = 8, textHeight = 36, columns = 4
    static let cellWidth = pad + thumb + pad + thumb + pad, cellHeight = pad + thumb + 6 + textHeight + pad

    /// An 8-bit RGB image, row-major, 3 bytes a pixel.
    public struct Thumbnail: Sendable {
        public var width: Int, height: Int
        public var rgb: [UInt8]

        public init(width: Int, height: Int, rgb: [UInt8]) {
            precondition(width >= 1 && height >= 1 && rgb.count == width * height * 3, "thumbnail: \(width)x\(height) with \(rgb.count) bytes")
            self.width = width; self.height = height; self.rgb = rgb
        }
    }

    /// One classified photo.
    public struct Entry: Sendable {
        /// Shown (its last path component, cut to 18 characters) beside the prediction.
        public var file: String
        /// The photo scaled to fit `thumb` x `thumb`.
        public var thumbnail: Thumbnail
        /// The network's 28x28 input (784 bytes, 0 = background).
        public var input: [UInt8]
        /// The 10 class probabilities.
        public var probabilities: [Float]
        /// The true class, when known.
        public var label: Int?

        public init(file: String, thumbnail: Thumbnail, input: [UInt8], probabilities: [Float], label: Int? = nil) {
            precondition(input.count == 28 * 28 && probabilities.count == FashionMNIST.classNames.count, "entry \(file): \(input.count) pixels, \(probabilities.count) probabilities")
            self.file = file; self.thumbnail = thumbnail; self.input = input; self.probabilities = probabilities; self.label = label
        }

        /// The class with the highest probability (the first of equal ones).
        var predicted: Int { probabilities.indices.max { probabilities[$0] < probabilities[$1] }! }
    }

    /// The sheet: 4 cells a row, in the entries' order.
    public static func render(_ entries: [Entry]) throws(FCLFError) -> Raster {
        guard !entries.isEmpty else { throw .invalidArgument("no photo could be classified, so there is no contact sheet to write") }
        let font = try Raster.Font(size: 12)
        let rows = (entries.count + columns - 1) / columns
        var canvas = Raster(width: columns * cellWidth, height: rows * cellHeight)
        for (n, e) in entries.enumerated() {
            let cx = (n % columns) * cellWidth, cy = (n / columns) * cellHeight
            let predicted = e.predicted
            if let label = e.label {
                canvas.frame(cx + 2, cy + 2, cellWidth - 4, cellHeight - 4, label == predicted ? (40, 160, 60) : (210, 40, 40))
            }
            draw(&canvas, e.thumbnail, cx + pad, cy + pad)
            canvas.gray(e.input[...], at: cx + 2 * pad + thumb, cy + pad, scale: thumb / 28)
            let y = cy + pad + thumb + 18
            canvas.text("\(FashionMNIST.classNames[predicted]) \(Text.fixed(Double(e.probabilities[predicted]) * 100, 0))%",
                        at: cx + pad, y, color: 0x101010, font: font)
            if let label = e.label {
                canvas.text("true: \(FashionMNIST.classNames[label])", at: cx + pad, y + 16,
                            color: label == predicted ? 0x206030 : 0xC02020, font: font)
            }
            let name = String(e.file.split(separator: "/").last ?? "")
            canvas.text(String(name.prefix(18)), at: cx + 2 * pad + thumb, y, color: 0x707070, font: font)
        }
        return canvas
    }

    /// Renders the sheet and writes it as a PNG (atomically).
    public static func write(_ entries: [Entry], to path: String) throws(FCLFError) {
        try FileIO.writeAtomically(try render(entries).png(), to: path)
    }

    /// The thumbnail centred in the thumb x thumb box at (x, y).
    static func draw(_ c: inout Raster, _ t: Thumbnail, _ x: Int, _ y: Int) {
        let ox = x + (thumb - t.width) / 2, oy = y + (thumb - t.height) / 2
        for yy in 0..<t.height {
            for xx in 0..<t.width {
                let i = 3 * (yy * t.width + xx)
                c.set(ox + xx, oy + yy, t.rgb[i], t.rgb[i + 1], t.rgb[i + 2])
            }
        }
    }
}
