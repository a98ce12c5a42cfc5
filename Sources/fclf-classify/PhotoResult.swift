import FashionCLF
import FashionCLFPhotos
import FashionCLFReport

/// One photo's outcome.
struct PhotoResult {
    var file: String
    var prepared: PreparedImage?
    /// The photo scaled for the contact sheet (only when one is asked for).
    var thumbnail: ContactSheet.Thumbnail?
    var probabilities: [Float] = []
    var label: Int?  // the true class, from --labels
    var error: String?

    /// With --flip-average: whether the photo and its mirror image name the same class.
    var mirrorAgrees: Bool?

    /// The model gives its top answer less than an even chance (`Classifier.unsureBelow`), or, with
    /// --flip-average, the photo and its mirror name different classes (`Classifier.flipAveraged`).
    var unsure: Bool {
        probabilities.withUnsafeBufferPointer { p in
            mirrorAgrees.map { Classifier.isUnsure(p, mirrorAgrees: $0) } ?? Classifier.isUnsure(p)
        }
    }

    /// Class indices from the most to the least probable.
    var ranked: [Int] { probabilities.indices.sorted { probabilities[$0] > probabilities[$1] } }

    /// The contact sheet's cell; nil for a photo that could not be classified.
    var sheetEntry: ContactSheet.Entry? {
        guard let thumbnail, let prepared, error == nil else { return nil }
        return ContactSheet.Entry(file: file, thumbnail: thumbnail, input: prepared.pixels, probabilities: probabilities, label: label)
    }
}
