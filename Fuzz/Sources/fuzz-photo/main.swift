// libFuzzer target: photo decoding (JPEG via libjpeg-turbo, PNG via libpng, EXIF orientation) and the
// preprocessing to 28x28, through Photo.load and Preprocessor.prepare as fclf-classify calls them.
// libjpeg and libpng are Debian's, not instrumented: coverage comes from our C and Swift code.
import FuzzSupport

#if canImport(Glibc)
import Glibc
#endif

if let dir = seedDirectory() { writePhotoSeeds(to: dir); exit(0) }
exit(runFuzzer { data, size in
    fuzzPhoto(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
})
