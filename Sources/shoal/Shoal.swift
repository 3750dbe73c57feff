import ArgumentParser

@main
struct Shoal: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shoal",
        abstract: "Peer-to-peer distribution of OS bundles to datacenter fleets.",
        discussion: """
            Bundles are single files that stock `zstd -d` decodes back into the image: independent \
            zstd frames per region, a signed manifest (SHA-256 of every frame and of the image), and a \
            zstd seekable-format seek table. `shoal bundle apply` writes one onto a staging partition with \
            io_uring, verifying every chunk, resuming after a crash.

            Exit codes: 0 success; 1 other failure; 10 not a bundle; 11 truncated bundle; 12 malformed \
            manifest or unsupported version; 13 bad signature; 14 untrusted (unsigned or unknown signer \
            while --trust is given); 15 corrupt chunk; 16 key missing or wrong; 17 image digest mismatch; \
            20 system error; 21 target mounted or in use; 22 target too small; 23 unusable target; \
            24 no space left; 25 resume file conflict; 64 usage error; 130 interrupted (progress kept).
            """,
        subcommands: [KeysCommand.self, BundleCommand.self, CACommand.self, CoordinatorCommand.self, DistributeCommand.self, StatusCommand.self, SeedCommand.self, PeerCommand.self, LabCommand.self, DemoCommand.self, HostCommand.self, RolloutCommand.self, HostsCommand.self, BenchCommand.self]
    )
}

struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Create, inspect, verify and apply bundles.",
        subcommands: [BundleCreateCommand.self, BundleInspectCommand.self, BundleVerifyCommand.self, BundleApplyCommand.self]
    )
}
