// swift-tools-version: 6.1
// fashionclf's libFuzzer targets, a package of their own that depends on the main package by path, so the
// main package's build and CI never see the fuzzing flags. Why this layout:
// - The harnesses are Swift (@_cdecl("LLVMFuzzerTestOneInput")) so that libFuzzer sees coverage in our Swift
//   and C code; a C harness calling libfashionclf.so would mutate blindly.
// - They must be built with -sanitize=fuzzer, which links libFuzzer's main(): as executable targets of the
//   main package they would fail to link in its plain `swift build`. Here every target gets the flags from
//   the command line (scripts/fuzz.sh: -Xswiftc -sanitize=fuzzer,address, -Xcc -fsanitize=fuzzer-no-link,...),
//   the dependency's targets included. A local path dependency may use unsafeFlags (the main package does).
// - Each harness is a main.swift that calls LLVMFuzzerRunDriver (FuzzSupport.runFuzzer): SwiftPM defines an
//   executable's main() as the target's own entry point (measured: also with no main.swift and in release
//   builds), so libFuzzer's main() never runs and a bare @_cdecl("LLVMFuzzerTestOneInput") is never called.
// Run: scripts/fuzz.sh [model|model-crc|idx|photo|checkpoint|all] [SECONDS]
import PackageDescription

let package = Package(
    name: "fashionclf-fuzz",
    dependencies: [
        .package(name: "fashionclf", path: ".."),
    ],
    targets: [
        // zlib (CRC-32, gzip seeds), libFuzzer's mutator, JPEG/PNG writers for the photo seeds.
        .target(
            name: "CFuzzSupport",
            path: "Sources/CFuzzSupport",
            linkerSettings: [.linkedLibrary("z"), .linkedLibrary("jpeg"), .linkedLibrary("png16")]
        ),
        .target(
            name: "FuzzSupport",
            dependencies: ["CFuzzSupport", .product(name: "FashionCLF", package: "fashionclf"),
                           .product(name: "FashionCLFPhotos", package: "fashionclf")],
            path: "Sources/FuzzSupport"
        ),
        // The CRC-fixing custom mutator, for the executables whose inputs end in a CRC-32.
        .target(name: "CRCFixingMutator", dependencies: ["CFuzzSupport", "FuzzSupport"], path: "Sources/CRCFixingMutator"),
        .executableTarget(name: "fuzz-model", dependencies: ["FuzzSupport"], path: "Sources/fuzz-model"),
        .executableTarget(name: "fuzz-model-crc", dependencies: ["FuzzSupport", "CRCFixingMutator"], path: "Sources/fuzz-model-crc"),
        .executableTarget(name: "fuzz-idx", dependencies: ["FuzzSupport"], path: "Sources/fuzz-idx"),
        .executableTarget(name: "fuzz-photo", dependencies: ["FuzzSupport"], path: "Sources/fuzz-photo"),
        .executableTarget(name: "fuzz-checkpoint", dependencies: ["FuzzSupport", "CRCFixingMutator"], path: "Sources/fuzz-checkpoint"),
    ]
)
