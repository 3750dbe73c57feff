// swift-tools-version: 6.1
import PackageDescription

// Module map (see README "Layout"):
//   CShoalNative  – the one C target: OpenSSL 3, zstd, liburing + shims for macros.
//   ShoalCrypto   – SHA-256, Ed25519, AES-256-GCM, random bytes over OpenSSL (no I/O).
//   ShoalBundle   – the bundle format: frames, seek table, manifest, signing, zstd codec (no I/O).
//   ShoalStorage  – files and devices: bundle files, io_uring writer, resume log, apply pipeline.
//   ShoalTopology – sites, hosts, links (YAML), and the distribution lower bound (no I/O).
//   ShoalWire     – peer protocol frames and their codec (no I/O).
//   ShoalTLS      – fleet CA, host certificates, TLS 1.3 with mutual auth over memory BIOs (NIO handler).
//   ShoalSwarm    – the swarm's scheduling core: WAN plan (one copy per site), piece picker (no I/O).
//   ShoalNet      – NIO plumbing shared by nodes: framing handlers, the control-protocol client.
//   ShoalCoordinator – the tracker: registry of hosts and bundles, jobs and WAN plans (control server),
//                    and its store (SQLite through GRDB; `CoordinatorStore` leaves room for another backend).
//   ShoalPeer     – the peer/seed daemon: connections, picker, chunk store, staging.
//   ShoalLab      – the emulated datacenter: namespaces, bridges, HTB-shaped links, lab processes.
//   ShoalAgent    – the host agent's conversion state machine: steps, persisted state, driver interface (no I/O).
//   ShoalHostProfile – a host's network and security profile: capture parsing, renderers per OS format (no I/O).
//   ShoalHostLab  – emulated host hardware: disk images with GPT, ext4, GRUB env blocks, small OS trees.
//   ShoalHostDrivers – HostDriver implementations joining the agent to hosts: `lab` (LabHost disks,
//                    real GPT/ext4/grub-editenv, bundles applied with BundleApplier), the lab power loop,
//                    and `linux` (real devices: LinuxCommands through a runner, guarded by LinuxDiskGuard).
//   ShoalRollout  – fleet rollouts: waves, ramps, per-site/rack caps, failure budget, halting (no I/O).
//   ShoalAPI      – the coordinator's HTTP side (Hummingbird): bearer-token JSON API over the tracker,
//                    /metrics (swift-metrics + Prometheus) and the live dashboard page. The only
//                    library that links Hummingbird; off unless `shoal coordinator --http` is given.
//   ShoalLoadGen  – a simulated fleet over real TLS connections for load tests (`shoal bench coordinator`).
//   ShoalTestKit  – helpers for tests: temp dirs, sample images, child processes, loop devices.
//   shoal         – the command-line tool, thin over the libraries.
let package = Package(
    name: "Shoal",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "shoal", targets: ["shoal"]),
        .library(name: "ShoalBundle", targets: ["ShoalBundle"]),
        .library(name: "ShoalStorage", targets: ["ShoalStorage"]),
        .library(name: "ShoalCrypto", targets: ["ShoalCrypto"]),
        .library(name: "ShoalTestKit", targets: ["ShoalTestKit"]),
        .library(name: "ShoalTopology", targets: ["ShoalTopology"]),
        .library(name: "ShoalWire", targets: ["ShoalWire"]),
        .library(name: "ShoalTLS", targets: ["ShoalTLS"]),
        .library(name: "ShoalLab", targets: ["ShoalLab"]),
        .library(name: "ShoalSwarm", targets: ["ShoalSwarm"]),
        .library(name: "ShoalNet", targets: ["ShoalNet"]),
        .library(name: "ShoalCoordinator", targets: ["ShoalCoordinator"]),
        .library(name: "ShoalPeer", targets: ["ShoalPeer"]),
        .library(name: "ShoalAgent", targets: ["ShoalAgent"]),
        .library(name: "ShoalHostProfile", targets: ["ShoalHostProfile"]),
        .library(name: "ShoalHostLab", targets: ["ShoalHostLab"]),
        .library(name: "ShoalHostDrivers", targets: ["ShoalHostDrivers"]),
        .library(name: "ShoalRollout", targets: ["ShoalRollout"]),
        .library(name: "ShoalAPI", targets: ["ShoalAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0"),
        // Without swift-configuration (its ConfigurationSupport trait): nothing here reads config files.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0", traits: ["FullFoundation"]),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.4.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
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
        .target(name: "ShoalTopology", dependencies: [.product(name: "Yams", package: "Yams")]),
        .target(name: "ShoalWire", dependencies: ["ShoalCrypto", "ShoalRollout"]),
        .target(name: "ShoalLab", dependencies: ["ShoalTopology"]),
        .target(name: "ShoalSwarm", dependencies: ["ShoalWire"]),
        .target(
            name: "ShoalNet",
            dependencies: [
                "ShoalTLS", "ShoalWire",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "ShoalCoordinator",
            dependencies: ["ShoalNet", "ShoalTopology", "ShoalBundle", "ShoalTLS", "ShoalWire", "ShoalRollout", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .target(
            name: "ShoalPeer",
            dependencies: ["ShoalNet", "ShoalSwarm", "ShoalStorage", "ShoalBundle", "ShoalTLS", "ShoalWire", "ShoalAgent", "ShoalHostDrivers", "ShoalHostLab"]
        ),
        .target(name: "ShoalAgent", dependencies: ["ShoalCrypto"]),
        .target(name: "ShoalHostProfile", dependencies: ["ShoalCrypto"]),
        .target(name: "ShoalHostLab", dependencies: ["ShoalCrypto"]),
        .target(
            name: "ShoalHostDrivers",
            dependencies: ["ShoalAgent", "ShoalHostProfile", "ShoalHostLab", "ShoalStorage", "ShoalBundle", "ShoalCrypto"]
        ),
        .target(name: "ShoalRollout"),
        .target(
            name: "ShoalAPI",
            dependencies: [
                "ShoalCoordinator", "ShoalWire", "ShoalRollout", "ShoalCrypto",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "ShoalLoadGen",
            dependencies: [
                "ShoalNet", "ShoalTLS", "ShoalWire", "ShoalBundle", "ShoalCrypto",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "ShoalTLS",
            dependencies: ["CShoalNative", "ShoalCrypto", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .executableTarget(
            name: "shoal",
            dependencies: [
                "ShoalBundle", "ShoalStorage", "ShoalCrypto", "ShoalTLS", "ShoalNet", "ShoalCoordinator", "ShoalPeer",
                "ShoalTopology", "ShoalLab", "ShoalWire", "ShoalAgent", "ShoalHostDrivers", "ShoalRollout", "ShoalAPI", "ShoalLoadGen",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // Helpers shared by the tests (temporary directories, sample images, processes, loop
        // devices); shipped as a product so later modules test against the same kit.
        .target(name: "ShoalTestKit", dependencies: ["ShoalBundle", "ShoalStorage", "ShoalCrypto"]),
        .testTarget(name: "ShoalBundleTests", dependencies: ["ShoalBundle", "ShoalCrypto", "ShoalTestKit"]),
        .testTarget(name: "ShoalStorageTests", dependencies: ["ShoalStorage", "ShoalBundle", "ShoalCrypto", "ShoalTestKit"]),
        .testTarget(name: "ShoalTopologyTests", dependencies: ["ShoalTopology", "ShoalTestKit"]),
        .testTarget(name: "ShoalWireTests", dependencies: ["ShoalWire", "ShoalCrypto", "ShoalTestKit"]),
        .testTarget(name: "ShoalLabTests", dependencies: ["ShoalLab", "ShoalTopology"]),
        .testTarget(name: "ShoalSwarmTests", dependencies: ["ShoalSwarm", "ShoalWire", "ShoalTestKit"]),
        .testTarget(
            name: "ShoalCoordinatorTests",
            dependencies: [
                "ShoalCoordinator", "ShoalTopology", "ShoalWire", "ShoalTLS", "ShoalBundle", "ShoalCrypto", "ShoalNet", "ShoalTestKit", "ShoalRollout",
                "ShoalLoadGen",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ShoalTLSTests",
            dependencies: [
                "ShoalTLS", "ShoalCrypto", "ShoalTestKit",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ShoalAPITests",
            dependencies: [
                "ShoalAPI", "ShoalCoordinator", "ShoalTopology", "ShoalWire", "ShoalTLS", "ShoalBundle", "ShoalCrypto",
                "ShoalTestKit", "ShoalRollout", "ShoalNet", "ShoalHostLab",
                .product(name: "Yams", package: "Yams"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "ShoalAgentTests", dependencies: ["ShoalAgent", "ShoalCrypto"]),
        .testTarget(name: "ShoalRolloutTests", dependencies: ["ShoalRollout", "ShoalTestKit"]),
        .testTarget(name: "ShoalHostProfileTests", dependencies: ["ShoalHostProfile", "ShoalCrypto"]),
        .testTarget(name: "ShoalHostLabTests", dependencies: ["ShoalHostLab", "ShoalCrypto", "ShoalTestKit"]),
        .testTarget(
            name: "ShoalHostDriversTests",
            dependencies: [
                "ShoalHostDrivers", "ShoalAgent", "ShoalHostProfile", "ShoalHostLab", "ShoalStorage", "ShoalBundle",
                "ShoalCrypto", "ShoalTestKit", "ShoalPeer", "ShoalWire",
            ]
        ),
        .testTarget(name: "ShoalCLITests", dependencies: ["shoal", "ShoalBundle", "ShoalStorage", "ShoalCrypto", "ShoalTestKit"]),
    ]
)
