// swift-tools-version: 6.1
import PackageDescription

// Module map (see README "Layout"):
//   CShoalNative  – the one C target: OpenSSL 3, zstd, liburing + shims for macros.
//   ShoalCrypto   – SHA-256, Ed25519, AES-256-GCM, random bytes over OpenSSL (no I/O).
//   ShoalBundle   – the bundle format: frames, seek table, manifest, signing, zstd codec (no I/O).
//   ShoalStorage  – files and devices: bundle files, io_uring writer, resume log, apply pipeline.
//   shoal         – the command-line tool, thin over the libraries.
let package = Package(
    name: "Shoal",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "shoal", targets: ["shoal"]),
        .library(name: "ShoalBundle", targets: ["ShoalBundle"]),
        .library(name: "ShoalStorage", targets: ["ShoalStorage"]),
        .library(name: "ShoalCrypto", targets: ["ShoalCrypto"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "CShoalNative",
            cSettings: [.define("_GNU_SOURCE")],
            linkerSettings: [
                .linkedLibrary("ssl"), .linkedLibrary("crypto"),
                .linkedLibrary("zstd"), .linkedLibrary("uring"),
            ]
        ),
        .target(name: "ShoalCrypto", dependencies: ["CShoalNative"]),
        .target(name: "ShoalBundle", dependencies: ["CShoalNative", "ShoalCrypto"]),
        .target(name: "ShoalStorage", dependencies: ["CShoalNative", "ShoalCrypto", "ShoalBundle"]),
        .executableTarget(
            name: "shoal",
            dependencies: [
                "ShoalBundle", "ShoalStorage", "ShoalCrypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "ShoalBundleTests", dependencies: ["ShoalBundle", "ShoalCrypto"]),
        .testTarget(name: "ShoalStorageTests", dependencies: ["ShoalStorage", "ShoalBundle", "ShoalCrypto"]),
        .testTarget(name: "ShoalCLITests", dependencies: ["shoal", "ShoalBundle", "ShoalStorage"]),
    ]
)
