// The real-photo pipeline on synthetic images the tests draw: the garment ends up centred, correctly
// inverted, at the expected extent; damaged, foreign, missing and oversized files give clear errors.
// Also the helpers fclf-classify uses (folder walk, contact-sheet thumbnails) and the sample photos in
// examples/photos (each labelled, sourced and decodable).
import CTestSupport
@testable import FashionCLF
@testable import FashionCLFPhotos
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Extent of the non-zero pixels of a 28x28 input: (x0, y0, width, height).
private func extent(_ p: [UInt8]) -> (x: Int, y: Int, w: Int, h: Int) {
    var x0 = 28, y0 = 28, x1 = -1, y1 = -1
    for y in 0..<28 { for x in 0..<28 where p[y * 28 + x] > 40 { x0 = min(x0, x); y0 = min(y0, y); x1 = max(x1, x); y1 = max(y1, y) } }
    return (x0, y0, x1 - x0 + 1, y1 - y0 + 1)
}

/// A w x h RGB canvas of one colour with a rectangle of another.
private func canvas(_ w: Int, _ h: Int, background: UInt8, rect: (x: Int, y: Int, w: Int, h: Int), value: UInt8) -> [UInt8] {
    var rgb = [UInt8](repeating: background, count: w * h * 3)
    for y in rect.y..<(rect.y + rect.h) { for x in rect.x..<(rect.x + rect.w) { for c in 0..<3 { rgb[3 * (y * w + x) + c] = value } } }
    return rgb
}

private func rgba(_ rgb: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    for i in stride(from: 0, to: rgb.count, by: 3) { out += [rgb[i], rgb[i + 1], rgb[i + 2], 255] }
    return out
}

/// The object is `w` x `h` pixels, centred (to within a pixel), bright (peak 255), on a zero background.
private func expectGarment(_ p: PreparedImage, w: Int, h: Int, inverted: Bool, _ what: String,
                           sourceLocation: SourceLocation = #_sourceLocation) {
    let e = extent(p.pixels)
    #expect(p.inverted == inverted, "\(what): inverted \(p.inverted)", sourceLocation: sourceLocation)
    #expect(abs(e.w - w) <= 1 && abs(e.h - h) <= 1, "\(what): extent \(e.w)x\(e.h), expected \(w)x\(h)", sourceLocation: sourceLocation)
    #expect(abs(e.x - (28 - e.w) / 2) <= 1 && abs(e.y - (28 - e.h) / 2) <= 1, "\(what): not centred, at \(e.x),\(e.y)", sourceLocation: sourceLocation)
    #expect(p.pixels.max() == 255, "\(what): peak \(p.pixels.max() ?? 0)", sourceLocation: sourceLocation)
    let outside = p.pixels.enumerated().filter { i, _ in
        let x = i % 28, y = i / 28
        return x < e.x - 1 || x > e.x + e.w || y < e.y - 1 || y > e.y + e.h
    }
    #expect(outside.allSatisfy { $0.element == 0 }, "\(what): background is not 0", sourceLocation: sourceLocation)
}

@Suite("Real-photo preprocessing")
struct PhotoTests {
    let dir = temporaryDirectory()

    @Test func darkRectangleOnWhiteOddSize() throws {
        let path = dir + "/dark.png"
        #expect(fclf_test_write_png_rgba(path, rgba(canvas(101, 77, background: 255, rect: (13, 20, 60, 30), value: 30)), 101, 77) == 0)
        expectGarment(Preprocessor.prepare(try Photo.load(path)), w: 28, h: 14, inverted: true, "dark on white")
    }

    @Test("the mirrored input (flip averaging) reverses every row and twice gives the input back")
    func mirroredInput() {
        let asymmetric: [UInt8] = (0..<784).map { (i: Int) -> UInt8 in UInt8(truncatingIfNeeded: i * 37 + i / 28) }
        var p = PreparedImage(pixels: asymmetric, background: (255, 255, 255), inverted: true, box: (0, 0, 28, 28))
        let m = p.mirroredPixels
        for y in 0..<28 {
            let row: [UInt8] = Array(asymmetric[y * 28..<(y + 1) * 28]), mirroredRow: [UInt8] = Array(m[y * 28..<(y + 1) * 28])
            #expect(mirroredRow == Array(row.reversed()), "row \(y)")
        }
        p.pixels = m
        #expect(p.mirroredPixels == asymmetric)
    }

    @Test func lightRectangleOnBlackIsNotInverted() throws {
        let path = dir + "/light.jpg"
        #expect(fclf_test_write_jpeg(path, canvas(53, 91, background: 0, rect: (15, 21, 24, 48), value: 230), 53, 91, 0) == 0)
        expectGarment(Preprocessor.prepare(try Photo.load(path)), w: 14, h: 28, inverted: false, "light on black")
    }

    @Test func transparentBackgroundIsCompositedOntoWhite() throws {
        // Transparent pixels hold black RGB: only compositing with alpha shows they are background.
        var pixels = [UInt8](repeating: 0, count: 80 * 50 * 4)
        for y in 5..<45 { for x in 20..<60 { pixels.replaceSubrange(4 * (y * 80 + x)..<4 * (y * 80 + x) + 4, with: [20, 40, 120, 255]) } }
        let path = dir + "/cutout.png"
        #expect(fclf_test_write_png_rgba(path, pixels, 80, 50) == 0)
        expectGarment(Preprocessor.prepare(try Photo.load(path)), w: 28, h: 28, inverted: true, "RGBA cut-out")
    }

    @Test func sixteenBitInterlacedPNG() throws {
        var gray = [UInt16](repeating: 65535, count: 70 * 70)
        for y in 20..<55 { for x in 30..<50 { gray[y * 70 + x] = 5000 } }
        let path = dir + "/gray16.png"
        #expect(fclf_test_write_png_gray16(path, gray, 70, 70) == 0)
        let photo = try Photo.load(path)
        #expect(photo.width == 70 && photo.height == 70)
        expectGarment(Preprocessor.prepare(photo), w: 16, h: 28, inverted: true, "16-bit gray PNG")
    }

    @Test func palettePNG() throws {
        // Index 0: light gray background; index 1: dark red garment.
        var indices = [UInt8](repeating: 0, count: 90 * 45)
        for y in 5..<40 { for x in 10..<80 { indices[y * 90 + x] = 1 } }
        let path = dir + "/palette.png"
        #expect(fclf_test_write_png_palette(path, indices, [220, 220, 220, 120, 10, 10], 2, 90, 45) == 0)
        expectGarment(Preprocessor.prepare(try Photo.load(path)), w: 28, h: 14, inverted: true, "palette PNG")
    }

    @Test func grayAlphaPNG() throws {
        // Transparent surround (gray value 0 underneath), an opaque mid-gray garment.
        var ga = [UInt8](repeating: 0, count: 60 * 80 * 2)
        for y in 10..<70 { for x in 15..<45 { ga[2 * (y * 60 + x)] = 90; ga[2 * (y * 60 + x) + 1] = 255 } }
        let path = dir + "/gray-alpha.png"
        #expect(fclf_test_write_png_gray_alpha(path, ga, 60, 80) == 0)
        expectGarment(Preprocessor.prepare(try Photo.load(path)), w: 14, h: 28, inverted: true, "gray+alpha PNG")
    }

    @Test("EXIF orientation is honoured", arguments: [1, 3, 6, 8])
    func exifOrientation(_ orientation: Int32) throws {
        // Stored: a wide dark bar on white. Orientations 6 and 8 display it turned by 90 degrees.
        let path = dir + "/exif\(orientation).jpg"
        #expect(fclf_test_write_jpeg(path, canvas(90, 60, background: 255, rect: (15, 20, 60, 20), value: 20), 90, 60, orientation) == 0)
        let photo = try Photo.load(path)
        let turned = orientation >= 5
        #expect(photo.width == (turned ? 60 : 90) && photo.height == (turned ? 90 : 60))
        let prepared = Preprocessor.prepare(photo)
        expectGarment(prepared, w: turned ? 9 : 28, h: turned ? 28 : 9, inverted: true, "EXIF \(orientation)")
        // Orientation 3 turns the photo upside down: the bar (rows 20-40 of 60) moves to rows 20-40 from the bottom.
        if orientation == 3 { #expect(prepared.box.y0 == 20 && prepared.box.y1 == 40) }
        if orientation == 6 { #expect(prepared.box.x0 == 20 && prepared.box.x1 == 40 && prepared.box.y0 == 15) }
    }

    @Test("degenerate photos: 1x1, uniform, extreme aspect ratios give a valid input, no trap")
    func degeneratePhotos() {
        for (w, h, value) in [(1, 1, UInt8(0)), (2, 3, 128), (500, 1, 40), (1, 700, 40), (64, 64, 255)] {
            var rgb = [UInt8](repeating: value, count: w * h * 3)
            if w * h > 4 { for i in 0..<min(3, w * h) { rgb[3 * (w * h / 2) + i] = 255 &- value } }  // one odd pixel
            let p = Preprocessor.prepare(Photo(width: w, height: h, rgba: rgba(rgb)))
            #expect(p.pixels.count == 784, "\(w)x\(h)")
        }
        // A photo with nothing on it (uniform) becomes an empty input rather than amplified noise.
        let blank = Preprocessor.prepare(Photo(width: 40, height: 30, rgba: rgba([UInt8](repeating: 200, count: 40 * 30 * 3))))
        #expect(blank.pixels.allSatisfy { $0 == 0 })
    }

    @Test("a large photo is reduced before processing, with the same result")
    func largePhotoIsReducedFirst() {
        // 3000 x 2000: a dark 1500 x 600 bar on white. At the 1024-pixel working size it is still 28 x 11.
        let w = 3000, h = 2000
        var px = [UInt8](repeating: 255, count: w * h * 4)
        for y in 700..<1300 { for x in 750..<2250 { px[4 * (y * w + x)] = 30; px[4 * (y * w + x) + 1] = 30; px[4 * (y * w + x) + 2] = 30 } }
        let p = Preprocessor.prepare(Photo(width: w, height: h, rgba: px))
        expectGarment(p, w: 28, h: 11, inverted: true, "3000x2000")
        // The box, in the photo's pixels: the bar's edges less the 0.5% quantile trim (7.5 px of 1500, 3 of 600)
        // and at most one working pixel (3 photo pixels) of rounding.
        #expect(abs(p.box.x0 - 750) <= 11 && abs(p.box.x1 - 2250) <= 11 && abs(p.box.y0 - 700) <= 6 && abs(p.box.y1 - 1300) <= 6, "\(p.box)")
    }

    @Test func naivePreprocessingIsTheSeedsSquashAndInvert() throws {
        let photo = Photo(width: 56, height: 28, rgba: rgba(canvas(56, 28, background: 255, rect: (0, 0, 28, 28), value: 0)))
        let p = Preprocessor.prepare(photo, .naive)
        #expect(p.pixels[0] == 255 && p.pixels[13] == 255 && p.pixels[14] == 0 && p.pixels[27] == 0)
    }

    @Test func damagedForeignMissingAndHugeFilesAreRejected() throws {
        var noise = [UInt8](repeating: 0, count: 200 * 200 * 3)
        var rng = SplitMix64(seed: 1)
        for i in noise.indices { noise[i] = UInt8(truncatingIfNeeded: rng.next()) }
        let jpeg = dir + "/noise.jpg"
        #expect(fclf_test_write_jpeg(jpeg, noise, 200, 200, 0) == 0)
        var bytes = try FileIO.read(jpeg, limit: 1 << 24)
        bytes.removeLast(bytes.count / 2)
        writeBytes(bytes, to: dir + "/truncated.jpg")
        func reason(_ path: String, limit: Int = Photo.defaultPixelLimit) -> String {
            do { _ = try Photo.load(path, pixelLimit: limit); return "accepted" } catch { return error.description }
        }
        #expect(reason(dir + "/truncated.jpg").contains("truncated"))
        let png = dir + "/ok.png"
        #expect(fclf_test_write_png_rgba(png, rgba(noise), 200, 200) == 0)
        var pngBytes = try FileIO.read(png, limit: 1 << 24)
        pngBytes.removeLast(pngBytes.count / 3)
        writeBytes(pngBytes, to: dir + "/truncated.png")
        #expect(reason(dir + "/truncated.png").contains("PNG"))
        writeBytes(Array("name,label\nshirt,6\n".utf8), to: dir + "/labels.jpg")
        #expect(reason(dir + "/labels.jpg").contains("not a JPEG or PNG"))
        #expect(reason(dir + "/missing.jpg").contains("cannot open"))
        #expect(reason(jpeg, limit: 100).contains("above the limit"))
        #expect(reason(jpeg) == "accepted")
    }

    @Test func folderWalkTakesPhotosSortedAndKeepsOtherInputsAsGiven() throws {
        let folder = dir + "/walk"
        #expect(mkdir(folder, 0o755) == 0)
        #expect(mkdir(folder + "/sub.jpg", 0o755) == 0)
        for name in ["b.JPG", "a.png", "c.jpeg", "notes.txt", "d.gif", "jpg"] { writeBytes([0], to: folder + "/" + name) }
        writeBytes([0], to: folder + "/sub.jpg/inner.jpg")
        let files = try PhotoFolder.expand([folder, dir + "/missing.jpg", folder + "/notes.txt"])
        // A folder gives its .jpg/.jpeg/.png entries (any case) in name order; a folder inside is not walked
        // (an entry named like a photo is kept, and loading it reports the error).
        #expect(files == [folder + "/a.png", folder + "/b.JPG", folder + "/c.jpeg", folder + "/sub.jpg",
                          dir + "/missing.jpg", folder + "/notes.txt"])
        #expect(try PhotoFolder.expand([folder + "/"]).first == folder + "/a.png")
        #expect(try PhotoFolder.expand([dir + "/missing"]) == [dir + "/missing"])
    }

    @Test func thumbnailFitsTheBoxKeepsTheAspectAndCompositesAlphaOntoWhite() {
        // 200 x 100: left half opaque red, right half transparent (black underneath).
        var px = [UInt8](repeating: 0, count: 200 * 100 * 4)
        for y in 0..<100 { for x in 0..<100 { px.replaceSubrange(4 * (y * 200 + x)..<4 * (y * 200 + x) + 4, with: [255, 0, 0, 255]) } }
        let t = Preprocessor.thumbnail(Photo(width: 200, height: 100, rgba: px), fitting: 112)
        #expect(t.width == 112 && t.height == 56 && t.rgb.count == 112 * 56 * 3)
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(t.rgb[3 * (y * t.width + x)..<3 * (y * t.width + x) + 3]) }
        #expect(pixel(10, 28) == [255, 0, 0] && pixel(55, 0) == [255, 0, 0])
        #expect(pixel(57, 28) == [255, 255, 255] && pixel(111, 55) == [255, 255, 255])
        // A tall photo: the height fills the box; a tiny one is enlarged to it.
        let tall = Preprocessor.thumbnail(Photo(width: 50, height: 300, rgba: [UInt8](repeating: 90, count: 50 * 300 * 4)), fitting: 112)
        #expect(tall.width == 18 && tall.height == 112)
        let tiny = Preprocessor.thumbnail(Photo(width: 1, height: 1, rgba: [10, 20, 30, 255]), fitting: 112)
        #expect(tiny.width == 112 && tiny.height == 112 && tiny.rgb[0..<3] == [10, 20, 30])
    }

    @Test func samplePhotosAreLabelledSourcedAndDecodable() throws {
        let folder = packageRoot + "/examples/photos"
        let csv = String(decoding: try FileIO.read(folder + "/labels.csv", limit: 1 << 20), as: UTF8.self)
        var rows = csv.split(whereSeparator: \.isNewline).map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        #expect(rows.removeFirst() == ["file", "label_index", "label_name", "source_repo", "source_path"])
        let sources = String(decoding: try FileIO.read(folder + "/SOURCES.md", limit: 1 << 20), as: UTF8.self)
        let photos = try PhotoFolder.expand([folder]).map { String($0.split(separator: "/").last!) }
        #expect(photos.count == rows.count && !photos.isEmpty, "\(photos.count) photos, \(rows.count) labels")
        for row in rows {
            #expect(row.count == 5, "labels.csv row \(row)")
            guard row.count == 5 else { continue }
            let (file, index) = (row[0], Int(row[1]) ?? -1)
            #expect(photos.contains(file), "\(file) is labelled but missing")
            #expect((0..<10).contains(index) && FashionMNIST.classNames[max(0, min(9, index))] == row[2], "\(file): label \(row[1]) \(row[2])")
            // Only the CC0 source is allowed in the repository; SOURCES.md names each file and its origin.
            #expect(row[3] == "alexeygrigorev/clothing-dataset-small", "\(file) comes from \(row[3])")
            #expect(sources.contains("`\(file)`") && sources.contains("`\(row[4])`"), "SOURCES.md does not name \(file)")
            let photo = try Photo.load(folder + "/" + file)
            #expect(photo.width >= 28 && photo.height >= 28, "\(file): \(photo.width)x\(photo.height)")
        }
    }
}
