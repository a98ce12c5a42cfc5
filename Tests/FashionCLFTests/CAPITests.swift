// libfashionclf.so from the outside: the C test program and the C example are compiled with the system
// C compiler against the header and the built library, and run; the exported symbols are inspected.
// The library must be built first (the README's test command does: swift build, then swift test).
@testable import FashionCLF
import CTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The package root, from this file's path (Tests/FashionCLFTests/CAPITests.swift).
let packageRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

/// The folder holding libfashionclf.so: $FCLF_LIB_DIR, else the newest of SwiftPM's build folders.
func libraryDirectory() -> String? {
    if let env = getenv("FCLF_LIB_DIR").map({ String(cString: $0) }) { return env }
    let candidates = [".build/debug", ".build/release"].map { packageRoot + "/" + $0 }
    var best: (String, Int)?
    for dir in candidates {
        var st = stat()
        if stat(dir + "/libfashionclf.so", &st) == 0, best == nil || st.st_mtim.tv_sec > best!.1 { best = (dir, st.st_mtim.tv_sec) }
    }
    return best?.0
}

/// The C compiler for the C programs: $FCLF_CC, else cc. A library built with a sanitizer needs a program built
/// with it too (scripts/sanitize.sh sets clang -fsanitize=...).
let cCompiler = getenv("FCLF_CC").map { String(cString: $0) } ?? "cc"

/// Runs a shell command; returns (exit status, combined output).
func shell(_ command: String) -> (status: Int32, output: String) {
    guard let pipe = popen(command + " 2>&1", "r") else { return (-1, "popen failed") }
    var output = ""
    var buffer = [CChar](repeating: 0, count: 4096)
    while fgets(&buffer, Int32(buffer.count), pipe) != nil {
        output += String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    let status = pclose(pipe)
    return ((status >> 8) & 0xff, output)
}

/// A 64x48 PNG: a dark garment-like rectangle on a white background.
func writePhoto(_ path: String) {
    var rgba = [UInt8](repeating: 255, count: 64 * 48 * 4)
    for y in 8..<40 { for x in 20..<44 { for c in 0..<3 { rgba[4 * (y * 64 + x) + c] = 40 } } }
    _ = fclf_test_write_png_rgba(path, rgba, 64, 48)
}

let testImages = FashionMNIST.resolveDirectory(nil) + "/t10k-images-idx3-ubyte.gz"
let defaultModelFile = packageRoot + "/Sources/CModelData/builtin-model.fclf"

@Suite("C API (libfashionclf.so)", .serialized)
struct CAPITests {
    let work = temporaryDirectory()

    /// The build folder holding libfashionclf.so, with the link its SONAME names (programs linked with
    /// -lfashionclf load libfashionclf.so.1; scripts/install.sh makes the same link when installing).
    func library() throws -> String {
        let dir = try #require(libraryDirectory(), "libfashionclf.so not found: run `swift build` before `swift test` (or set FCLF_LIB_DIR)")
        if access(dir + "/libfashionclf.so.1", F_OK) != 0 { _ = symlink("libfashionclf.so", dir + "/libfashionclf.so.1") }
        return dir
    }

    @Test("the C test program: every bad-input status, 8 threads, batch = single, predictions = Swift's")
    func cProgram() throws {
        let lib = try library()
        let exe = work + "/capi_test"
        let build = shell("\(cCompiler) -std=c11 -O2 -Wall -Werror -I '\(packageRoot)/Sources/CFashionCLF/include' '\(packageRoot)/Tests/capi/capi_test.c' -L '\(lib)' -Wl,-rpath,'\(lib)' -lfashionclf -lz -lpthread -o '\(exe)'")
        try #require(build.status == 0, "compiling capi_test.c failed:\n\(build.output)")
        writePhoto(work + "/photo.png")
        // Finite weights whose products overflow float on a bright image (the audit's NaN model).
        let huge = ModelKind.mlp.build(seed: 1)
        for i in 0..<huge.parameters[0].count { huge.parameters[0].value[i] = 1e37 }
        try ModelFile.save(huge, to: work + "/huge-weights.fclf")
        let haveData = access(testImages, R_OK) == 0
        let predictions = work + "/predictions.txt"
        let run = shell("'\(exe)' '\(defaultModelFile)' '\(work)'" + (haveData ? " '\(testImages)' '\(predictions)'" : ""))
        print(run.output)
        #expect(run.status == 0, "capi_test failed:\n\(run.output)")
        #expect(run.output.contains(" 0 failed"))
        guard haveData else { return }
        // The library's labels for all 10,000 test images equal the Swift Classifier's for the same file (the same
        // inference plan, BatchNorm folded).
        let data = try FashionMNIST(directory: FashionMNIST.resolveDirectory(nil))
        let classifier = try Classifier(contentsOf: defaultModelFile)
        var swiftLabels = [Int32](repeating: -1, count: data.test.count)
        try data.test.withPixels { try classifier.predict($0.baseAddress!, count: data.test.count, probabilities: nil, labels: &swiftLabels) }
        let text = try FileIO.read(predictions, limit: 1 << 20)
        let cSide = String(decoding: text, as: UTF8.self).split(separator: "\n").compactMap { Int($0) }
        #expect(cSide.count == 10000)
        #expect(cSide == swiftLabels.map(Int.init), "C and Swift predictions differ")
        // The default model's accuracy through the C API is the one the README states.
        let right = (0..<cSide.count).filter { cSide[$0] == Int(data.test.label($0)) }.count
        let readme = String(decoding: try FileIO.read(packageRoot + "/README.md", limit: 1 << 20), as: UTF8.self)
        let stated = "Default model test accuracy: \(Text.fixed(Double(right) / Double(cSide.count) * 100, 2))%"
        #expect(readme.contains(stated), "README should say \"\(stated)\"")
    }

    @Test("the retail example builds and classifies test images with the default model",
          .enabled(if: access(testImages, R_OK) == 0, "Fashion-MNIST is not installed"))
    func retailExample() throws {
        let lib = try library()
        let exe = work + "/retail"
        let build = shell("\(cCompiler) -std=c11 -O2 -Wall -Werror -I '\(packageRoot)/Sources/CFashionCLF/include' '\(packageRoot)/examples/retail/retail.c' -L '\(lib)' -Wl,-rpath,'\(lib)' -lfashionclf -lz -o '\(exe)'")
        try #require(build.status == 0, "compiling retail.c failed:\n\(build.output)")
        let run = shell("'\(exe)' --idx '\(testImages)' --count 5")
        print(run.output)
        #expect(run.status == 0)
        let lines = run.output.split(separator: "\n")
        #expect(lines.count == 5)
        #expect(lines.first?.split(separator: "\t").count == 4)
        // Photos: one good, one missing; the good one is classified, the missing one is one error line.
        writePhoto(work + "/photo.png")
        let photos = shell("'\(exe)' '\(work)/photo.png' '\(work)/no-such-photo.jpg'")
        #expect(photos.status == 1)
        #expect(photos.output.contains("photo.png\t"), "\(photos.output)")
        #expect(photos.output.contains("no-such-photo.jpg") && photos.output.contains("I/O error"), "\(photos.output)")
    }

    @Test("the till example: model and photo from memory, a BGRA camera frame, metadata, version number")
    func tillExample() throws {
        let lib = try library()
        let exe = work + "/till"
        let build = shell("\(cCompiler) -std=c11 -O2 -Wall -Werror -I '\(packageRoot)/Sources/CFashionCLF/include' '\(packageRoot)/examples/till/till.c' -L '\(lib)' -Wl,-rpath,'\(lib)' -lfashionclf -o '\(exe)'")
        try #require(build.status == 0, "compiling till.c failed:\n\(build.output)")
        let run = shell("'\(exe)' '\(defaultModelFile)' '\(packageRoot)/examples/photos/1-trouser-1.jpg'")
        print(run.output)
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("fashionclf 1.") && run.output.contains("\"architecture\": \""))
        #expect(run.output.contains("1-trouser-1.jpg: Trouser") && run.output.contains("camera frame (BGRA): "))
    }

    @Test("the Python example (fashionclf package)", .enabled(if: shell("python3 -c 'import numpy'").status == 0 && access(testImages, R_OK) == 0))
    func pythonExample() throws {
        let lib = try library()
        let run = shell("python3 '\(packageRoot)/examples/python/classify.py' --lib '\(lib)/libfashionclf.so' --count 200")
        print(run.output.split(separator: "\n").suffix(2).joined(separator: "\n"))
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("accuracy 0.9") || run.output.contains("accuracy 0.8"), "\(run.output)")
    }

    @Test("fclf-classify: a broken photo is reported and the others are still classified")
    func classifyContinuesPastBadPhotos() throws {
        let exe = try library() + "/fclf-classify"
        try #require(access(exe, X_OK) == 0, "fclf-classify not built: run `swift build` first")
        writePhoto(work + "/a.png")
        writePhoto(work + "/c.png")
        writeBytes(Array("not a photo".utf8), to: work + "/b.jpg")
        writeBytes(Array("file,label_index\na.png,0\nc.png,3\n".utf8), to: work + "/labels.csv")
        let run = shell("'\(exe)' '\(work)' --labels '\(work)/labels.csv' --json '\(work)/out.json' --sheet '\(work)/sheet.png'")
        print(run.output)
        #expect(run.status == 1)
        #expect(run.output.contains("b.jpg: not a JPEG or PNG file"))
        #expect(run.output.contains("a.png\t") && run.output.contains("c.png\t"))
        #expect(run.output.contains("top-1") && run.output.contains("/2 ="))
        let json = String(decoding: try FileIO.read(work + "/out.json", limit: 1 << 20), as: UTF8.self)
        #expect(json.contains("\"error\"") && json.ranges(of: "\"file\"").count == 3)
        #expect(json.hasPrefix("{\"schema_version\": 2, "))
        #expect(!json.contains("mirror_agrees"), "mirror_agrees only with --flip-average")
        #expect(access(work + "/sheet.png", R_OK) == 0)
        // With flip averaging each photo says whether its mirror image got the same class, and one that did
        // not is marked unsure whatever its probability.
        let flip = shell("'\(exe)' '\(work)/a.png' --flip-average --json '\(work)/flip.json'")
        #expect(flip.status == 0, "\(flip.output)")
        let flipJSON = String(decoding: try FileIO.read(work + "/flip.json", limit: 1 << 20), as: UTF8.self)
        #expect(flipJSON.contains("\"mirror_agrees\": "))
        #expect(!flipJSON.contains("\"mirror_agrees\": false") || flipJSON.contains("\"unsure\": true"))
    }

    @Test("fclf-classify: bad flags, outputs in missing folders and empty folders fail up front, with the reason")
    func classifyRefusesBadInputUpFront() throws {
        let exe = try library() + "/fclf-classify"
        try #require(access(exe, X_OK) == 0, "fclf-classify not built: run `swift build` first")
        writePhoto(work + "/a.png")
        _ = mkdir(work + "/empty", 0o755)
        let cases: [(args: String, status: Int32, says: String)] = [
            ("'\(work)/a.png' --top 11", 64, "--top must be in 1...10"),
            ("'\(work)/a.png' --max-pixels 0", 64, "--max-pixels must be positive"),
            ("", 64, "Missing expected argument"),
            ("'\(work)/a.png' --sheet '\(work)/no/such/dir/s.png'", 1, "--sheet: the folder"),
            ("'\(work)/a.png' --json '\(work)/no/x.json'", 1, "--json: the folder"),
            ("'\(work)/empty'", 1, "no photos (.jpg, .jpeg, .png files) in this folder"),
            ("'\(work)/missing.jpg'", 1, "No such file or directory"),
            ("'\(work)/a.png' --model '\(work)/a.png'", 1, "bad magic"),
            ("'\(work)/a.png' --labels '\(work)/a.png'", 1, "not a UTF-8 text file"),
        ]
        for c in cases {
            let run = shell("'\(exe)' \(c.args)")
            #expect(run.status == c.status && run.output.contains(c.says), "fclf-classify \(c.args): exit \(run.status)\n\(run.output)")
            // Up front: no photo was classified before the refusal.
            if c.args.contains("--sheet") || c.args.contains("--json") { #expect(!run.output.contains("a.png\t")) }
        }
    }

    @Test("the library exports exactly the header's functions, under the SONAME libfashionclf.so.1")
    func exports() throws {
        let lib = try library()
        let soname = shell("readelf -d '\(lib)/libfashionclf.so' | grep SONAME")
        #expect(soname.output.contains("[libfashionclf.so.1]"), "\(soname.output)")
        // Uppercase types are global symbols; the lowercase entries are local Swift metadata that the
        // linker leaves in .dynsym but that no one can bind to.
        let nm = shell("nm -D --defined-only '\(lib)/libfashionclf.so' | awk '$2 ~ /[A-Z]/ {print $3}' | sort")
        #expect(nm.status == 0)
        let names = Set(nm.output.split(separator: "\n").map(String.init))
        // The header's declarations: every "FCLF_API ... fclf_name(".
        let header = try String(contentsOfFile: packageRoot + "/Sources/CFashionCLF/include/fashionclf.h", encoding: .utf8)
        let declared = header.components(separatedBy: "FCLF_API ").dropFirst().compactMap { decl -> String? in
            guard let open = decl.firstIndex(of: "(") else { return nil }
            return decl[..<open].split(whereSeparator: { !$0.isLetter && !$0.isNumber && $0 != "_" }).last.map(String.init)
        }
        let expected = Set(declared.filter { $0.hasPrefix("fclf_") })
        #expect(expected.count >= 20 && expected.contains("fclf_classify_pixels") && expected.contains("fclf_predict"), "\(expected.sorted())")
        #expect(names == expected, "unexpected exports: \(names.subtracting(expected).sorted().prefix(10)); missing: \(expected.subtracting(names).sorted())")
    }
}
