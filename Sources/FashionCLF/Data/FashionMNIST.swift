import CModelData
import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Images and labels of one split, kept as bytes (47 MB for the training set instead of 188 MB as Float).
/// A split made by `slice` shares its parent's storage (arrays are copy-on-write and never written), so
/// holding out a validation set costs no copy.
public struct LabeledImages: Sendable {
    public let count: Int
    public let rows: Int, cols: Int
    /// Storage of this split and possibly of images outside it: image i of the split is image
    /// `first + i` of the storage. Use `image(_:)` and `label(_:)`.
    private let storage: [UInt8]
    private let labelStorage: [UInt8]
    private let first: Int

    public init(count: Int, rows: Int, cols: Int, pixels: [UInt8], labels: [UInt8]) {
        self.init(count: count, rows: rows, cols: cols, storage: pixels, labelStorage: labels, first: 0)
    }

    private init(count: Int, rows: Int, cols: Int, storage: [UInt8], labelStorage: [UInt8], first: Int) {
        self.count = count; self.rows = rows; self.cols = cols
        self.storage = storage; self.labelStorage = labelStorage; self.first = first
    }

    public var pixelsPerImage: Int { rows * cols }

    /// The pixels of image i (row-major, 0 = background).
    public func image(_ i: Int) -> ArraySlice<UInt8> {
        let p = pixelsPerImage
        return storage[(first + i) * p ..< (first + i + 1) * p]
    }

    /// The class of image i, 0-9.
    public func label(_ i: Int) -> UInt8 { labelStorage[first + i] }

    /// All the split's pixels, image after image, for code that walks them with pointers.
    public func withPixels<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        try storage.withUnsafeBufferPointer { all in
            try body(UnsafeBufferPointer(rebasing: all[first * pixelsPerImage ..< (first + count) * pixelsPerImage]))
        }
    }

    /// Images `range` as a split sharing this one's storage (the validation hold-out, --limit-train).
    public func slice(_ range: Range<Int>) -> LabeledImages {
        LabeledImages(count: range.count, rows: rows, cols: cols, storage: storage, labelStorage: labelStorage,
                      first: first + range.lowerBound)
    }
}

/// Fashion-MNIST from its four standard IDX .gz files.
public struct FashionMNIST: Sendable {
    public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
    /// The class names by label, from the table the C API's fclf_class_name also reads (CModelData).
    public static let classNames = (0..<Int(FCLF_DATA_CLASSES)).map { String(cString: fclf_data_class_name(Int32($0))) }

    public let train: LabeledImages
    public let test: LabeledImages

    /// `directory`, else $FCLF_DATA, else the Debian package's folder.
    public static func resolveDirectory(_ directory: String?) -> String {
        if let directory { return directory }
        if let env = getenv("FCLF_DATA"), let s = String(validatingCString: env), !s.isEmpty { return s }
        return defaultDirectory
    }

    public init(directory: String) throws(FCLFError) {
        train = try IDX.load(images: directory + "/train-images-idx3-ubyte.gz",
                             labels: directory + "/train-labels-idx1-ubyte.gz")
        test = try FashionMNIST.testSplit(directory: directory)
    }

    /// Only the 10,000 test images (evaluating a saved model needs no training files).
    public static func testSplit(directory: String) throws(FCLFError) -> LabeledImages {
        try IDX.load(images: directory + "/t10k-images-idx3-ubyte.gz", labels: directory + "/t10k-labels-idx1-ubyte.gz")
    }
}
