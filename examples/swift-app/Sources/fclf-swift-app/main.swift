// Classifies the photos named on the command line with the model built into fashionclf.
//     swift run fclf-swift-app PHOTO...
import FashionCLF
import FashionCLFPhotos
#if canImport(Glibc)
import Glibc
#endif

let photos = CommandLine.arguments.dropFirst()
if photos.isEmpty {
    print("usage: fclf-swift-app PHOTO...")
} else {
    do {
        let classifier = try Classifier.builtIn()
        for path in photos {
            let p = try classifier.classifyPhoto(atPath: path)
            let percent = (p.confidence * 1000).rounded() / 10
            print("\(path): \(p.className) \(percent)%" + (p.isUnsure ? " (unsure)" : ""))
        }
    } catch {
        print("fclf-swift-app: error: \(error)")
        exit(1)
    }
}
