// swift-tools-version: 6.1
//
// Micro-benchmarks for Shoal, kept in their own package so the root package does not
// depend on package-benchmark (and its malloc interposer). See README.md for how to run.
import PackageDescription

let benchmarkPlugins: [Target.PluginUsage] = [
    .plugin(name: "BenchmarkPlugin", package: "package-benchmark"),
]

let package = Package(
    name: "ShoalBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // The root package. `name:` pins the identity used by `.product(package:)` below,
        // so the benchmarks build whatever the checkout's directory is called.
        .package(name: "Shoal", path: "../"),
        .package(url: "https://github.com/ordo-one/package-benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Helpers shared by the suites (byte-rate metric, deterministic data, temp dirs).
        .target(
            name: "BenchmarkSupport",
            dependencies: [.product(name: "Benchmark", package: "package-benchmark")],
            path: "Support/BenchmarkSupport"
        ),
        .executableTarget(
            name: "HashingBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                "BenchmarkSupport",
                .product(name: "ShoalCrypto", package: "Shoal"),
                .product(name: "ShoalStorage", package: "Shoal"),
            ],
            path: "Benchmarks/HashingBenchmarks",
            plugins: benchmarkPlugins
        ),
        .executableTarget(
            name: "ZstdBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                "BenchmarkSupport",
                .product(name: "ShoalBundle", package: "Shoal"),
                .product(name: "ShoalStorage", package: "Shoal"),
            ],
            path: "Benchmarks/ZstdBenchmarks",
            plugins: benchmarkPlugins
        ),
        .executableTarget(
            name: "StagingBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "package-benchmark"),
                "BenchmarkSupport",
                .product(name: "ShoalBundle", package: "Shoal"),
                .product(name: "ShoalStorage", package: "Shoal"),
                .product(name: "ShoalCrypto", package: "Shoal"),
            ],
            path: "Benchmarks/StagingBenchmarks",
            plugins: benchmarkPlugins
        ),
    ]
)
