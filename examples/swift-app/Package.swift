// swift-tools-version: 6.2
// An app that uses fashionclf as a versioned dependency, as any Swift package would:
// .package(url:from:) on a tagged release. scripts/swift-app.sh builds and runs it against a tagged clone
// of this repository (FASHIONCLF_URL); point the URL at wherever your copy of fashionclf lives.
import PackageDescription

let fashionclf = Context.environment["FASHIONCLF_URL"] ?? "https://github.com/fashionclf/fashionclf"

let package = Package(
    name: "swift-app",
    dependencies: [
        .package(url: fashionclf, from: "1.0.0"),
    ],
    targets: [
        .executableTarget(
            name: "fclf-swift-app",
            dependencies: [
                .product(name: "FashionCLF", package: "fashionclf"),
                .product(name: "FashionCLFPhotos", package: "fashionclf"),
            ]
        ),
    ]
)
