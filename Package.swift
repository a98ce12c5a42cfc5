// swift-tools-version: 6.2
import PackageDescription

// Why these flags:
// - OpenMP comes from LLVM's libomp (Debian libomp-dev); clang's __kmpc_* calls need it and the package
//   installs libomp5.so, hence linkedLibrary("omp5") (-lomp does not link; libgomp runs clang's loops on 1 thread).
// - No -march=native and no -ffast-math: the kernels pick AVX2/AVX-512 at run time (CKernels/dispatch.c)
//   and -ffp-contract=off keeps the portable paths from fusing differently per build. -fno-math-errno only
//   lets sqrtf vectorise (nothing reads errno); it changes no result. -mprefer-vector-width=512 only
//   affects the AVX-512 clones (x86-64-v4 defaults to 256-bit vectors).
let kernelC: [CSetting] = [
    .unsafeFlags(["-fopenmp", "-ffp-contract=off", "-fno-math-errno", "-mprefer-vector-width=512"]),
    // Optimised in debug builds too: `swift test` builds debug, and -O0 kernels made it 3x slower.
    .unsafeFlags(["-O3"]),
]

let package = Package(
    name: "fashionclf",
    products: [
        // MARK: - Public API
        .executable(name: "fclf-train", targets: ["fclf-train"]),
        .executable(name: "fclf-classify", targets: ["fclf-classify"]),
        .executable(name: "fclf-export", targets: ["fclf-export"]),
        // The Swift API: FashionCLF (models, training, Classifier) and FashionCLFPhotos (JPEG/PNG/frames).
        // Tools version 6.2: SwiftPM accepts the kernels' unsafe flags in a versioned dependency from 6.2 on.
        .library(name: "FashionCLF", targets: ["FashionCLF"]),
        .library(name: "FashionCLFPhotos", targets: ["FashionCLFPhotos"]),
        // libfashionclf.so, the C API (header: Sources/CFashionCLF/include/fashionclf.h). For a library that
        // needs no Swift toolchain at run time: swift build -c release -Xswiftc -static-stdlib --product fashionclf
        .library(name: "fashionclf", type: .dynamic, targets: ["FashionCLFCAPI"]),
        // For the benchmark package in Benchmarks/ only: the kernels have no stable API.
        .library(name: "CKernels", targets: ["CKernels"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // ONNX export (fclf-export): the ONNX messages are generated from Sources/FashionCLFONNX/onnx.proto.
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // MARK: - Implementation details
        .target(
            name: "CKernels",
            path: "CKernels",
            cSettings: kernelC,
            linkerSettings: [.linkedLibrary("omp5")]
        ),
        .systemLibrary(
            name: "CZlib",
            path: "Sources/CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // The built-in model's bytes and the class names, shared by the Swift library and the C API.
        .target(name: "CModelData", path: "Sources/CModelData", exclude: ["builtin-model.fclf"]),
        // fclf-train's Ctrl-C handling (a SIGINT handler that only counts) and the temporary file it removes.
        .target(name: "CSignal", path: "Sources/CSignal"),
        .target(name: "FashionCLF", dependencies: ["CKernels", "CZlib", "CModelData", "CSignal"]),
        .target(name: "CFashionCLF", dependencies: ["CModelData"], path: "Sources/CFashionCLF"),
        // Photo decoding: libjpeg-turbo and libpng from Debian (headers in /usr/include).
        .target(
            name: "CImageIO",
            path: "Sources/CImageIO",
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]
        ),
        .target(name: "FashionCLFPhotos", dependencies: ["FashionCLF", "CImageIO"]),
        // Text for fclf-classify's contact sheet: FreeType from Debian (libfreetype-dev; font fonts-dejavu-core).
        .target(
            name: "CRender",
            path: "Sources/CRender",
            cSettings: [.unsafeFlags(["-I/usr/include/freetype2"])],
            linkerSettings: [.linkedLibrary("freetype")]
        ),
        .target(
            name: "FashionCLFCAPI",
            dependencies: ["FashionCLF", "FashionCLFPhotos", "CFashionCLF", "CKernels"],
            path: "Sources/fashionclf",
            exclude: ["exports.map"],
            // Export exactly the header's functions (the map lists them).
            // The SONAME carries the C API's major version (scripts/install.sh makes the links).
            linkerSettings: [.unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/fashionclf/exports.map",
                                           "-Xlinker", "-soname=libfashionclf.so.1"])]
        ),
        // The visual training report (HTML, SVG, PNG figures).
        .target(name: "FashionCLFReport", dependencies: ["FashionCLF", "CImageIO", "CRender"]),
        .executableTarget(
            name: "fclf-train",
            dependencies: ["FashionCLF", "FashionCLFReport", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // ONNX export: onnx.proto's generated messages (onnx.pb.swift, committed) and the graph writer.
        .target(
            name: "FashionCLFONNX",
            dependencies: ["FashionCLF", "CFashionCLF", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["onnx.proto"]
        ),
        .executableTarget(
            name: "fclf-export",
            dependencies: ["FashionCLF", "FashionCLFONNX", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "fclf-classify",
            dependencies: ["FashionCLF", "FashionCLFPhotos", "FashionCLFReport",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // MARK: - Unit test bundles
        // Writers for the photo tests' synthetic files (JPEG with an EXIF orientation, 16-bit PNG).
        .target(
            name: "CTestSupport",
            path: "Tests/CTestSupport",
            linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png16")]
        ),
        .testTarget(
            name: "FashionCLFTests",
            dependencies: ["FashionCLF", "FashionCLFPhotos", "FashionCLFReport", "FashionCLFONNX", "CKernels", "CZlib", "CTestSupport"],
            exclude: ["Fixtures"]
        ),
    ]
)
