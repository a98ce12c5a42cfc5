// swift-tools-version: 6.1
// fashionclf's benchmarks, a package of their own so that OpenBLAS (the GEMM reference) and the benchmark
// framework never enter the product's build or CI. Run from the repository root:
//   swift run -c release --package-path Benchmarks fclf-bench all          (our figures, JSON)
//   swift run -c release --package-path Benchmarks fclf-profile cnn 32     (per-layer profile)
//   swift package --package-path Benchmarks benchmark --target TrainStep   (mallocs per training step)
//   swift run -c release --package-path Benchmarks fclf-stability MODEL PHOTOS LABELS  (an unsure-rule diagnostic)
//   python3 Benchmarks/peers/compare.py                                   (ours vs PyTorch, Keras, ORT)
import PackageDescription

let package = Package(
    name: "fashionclf-benchmarks",
    dependencies: [
        .package(name: "fashionclf", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CBenchSupport", path: "Sources/CBenchSupport"),
        .executableTarget(
            name: "fclf-bench",
            dependencies: [.product(name: "FashionCLF", package: "fashionclf"), .product(name: "CKernels", package: "fashionclf"),
                           "COpenBLAS", "CBenchSupport"],
            path: "Sources/fclf-bench"
        ),
        .executableTarget(
            name: "fclf-stability",
            dependencies: [.product(name: "FashionCLF", package: "fashionclf"), .product(name: "FashionCLFPhotos", package: "fashionclf")],
            path: "Sources/fclf-stability"
        ),
        .executableTarget(
            name: "fclf-profile",
            dependencies: [.product(name: "FashionCLF", package: "fashionclf"), .product(name: "CKernels", package: "fashionclf")],
            path: "Sources/fclf-profile"
        ),
        .executableTarget(
            name: "TrainStep",
            dependencies: [.product(name: "FashionCLF", package: "fashionclf"), .product(name: "CKernels", package: "fashionclf"),
                           .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/TrainStep",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    // Top-level benchmark scripts use global state freely; Swift 5 mode keeps them short.
    swiftLanguageModes: [.v5]
)
