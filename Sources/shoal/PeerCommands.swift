import ArgumentParser
import Foundation
import ShoalCrypto
import ShoalHostDrivers
import ShoalNet
import ShoalPeer
import ShoalTLS
import ShoalTopology

/// `--max-rate` in bits per second.
func parseMaxRate(_ text: String?) throws -> UInt64? {
    guard let text else { return nil }
    do { return try Rate.parse(text).bitsPerSecond } catch { throw CLIError(message: "bad --max-rate \(text): \(error)") }
}

/// Runs a node until SIGINT/SIGTERM.
func runNode(_ configuration: PeerNode.Configuration, tls: TLSContext) throws {
    let node = PeerNode(configuration: configuration, tls: tls)
    do { try node.start() } catch { throw CLIError(message: "\(error)") }
    waitForTerminationSignal()
    node.stop()
}

/// The settings peer and seed share: where to listen, what to advertise, the coordinator.
func nodeConfiguration(listen: String, advertise: String?, coordinator: String) throws -> PeerNode.Configuration {
    guard let (host, port) = parseHostPort(listen, defaultHost: "0.0.0.0") else { throw CLIError(message: "bad --listen \(listen)") }
    var config = PeerNode.Configuration(coordinator: coordinator)
    config.listenHost = host
    config.listenPort = port
    config.advertisedAddress = advertise
    return config
}

struct PeerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "The daemon on every host: learns from the coordinator what to fetch, swarms it, stages it.",
        discussion: """
            Chunks are fetched from peers of the same site and, for the chunks the WAN plan assigns to \
            this host, from the origin or another site; each is checked against the signed manifest \
            before it is stored (in --store, a bundle file kept for reinstall and reversal), staged \
            (--stage: the image written with io_uring, resumable) or served to others. A peer that \
            sends a bad chunk is disconnected, banned and reported. Restarted after a crash, the peer \
            continues from what it had verified.
            """
    )
    @Option(help: "Address to listen on for peers, HOST:PORT.") var listen = "0.0.0.0:7701"
    @Option(help: "Address peers should dial (default: what the coordinator sees).") var advertise: String?
    @Option(help: "Coordinator address HOST:PORT.") var coordinator: String
    @Option(help: "TLS directory (host.pem, host.key, ca.pem).") var tls: String
    @Option(help: "Directory of the packed chunk store.") var store: String
    @Option(help: "Write the image onto this file or block device (the staging partition).") var stage: String?
    @Option(name: .long, help: "Trusted Ed25519 public key (PEM); repeatable. Unsigned bundles are then refused.") var trust: [String] = []
    @Option(help: "Key file for encrypted bundles (needed only to stage them).") var key: String?
    @Option(help: "Seconds between announces to the coordinator.") var announceInterval: Double = 1
    @Option(help: "Cap on this host's Shoal traffic, each direction (e.g. 200Mbit/s); the coordinator's caps from the topology also apply, the tighter wins.")
    var maxRate: String?
    @Option(name: .customLong("lab"), help: ArgumentHelp("Run the operations the coordinator orders on the emulated lab host in this directory (the lab driver).", valueName: "HOSTDIR"))
    var lab: String?
    @Option(name: .customLong("agent-state"), help: ArgumentHelp("The staging disk's data directory for the host agent (its state in DIR/agent). Default: HOSTDIR/state.", valueName: "DIR"))
    var agentState: String?
    @Option(name: .customLong("lab-write"), help: ArgumentHelp("How the lab driver writes images (imageFile or loopDevice).", valueName: "METHOD"))
    var labWrite: LabDriver.WriteMethod = .imageFile
    @Option(help: .hidden) var fault: String?

    func run() throws {
        try reportingErrors {
            let context = try loadTLS(tls)
            var config = try nodeConfiguration(listen: listen, advertise: advertise, coordinator: coordinator)
            let log = config.log
            if let lab {
                guard FileManager.default.fileExists(atPath: lab + "/grubenv"), FileManager.default.fileExists(atPath: lab + "/bootmenu") else {
                    throw CLIError(message: "\(lab) is not a lab host directory (no grubenv or bootmenu)", code: 64)
                }
                config.agent = PeerAgent(driver: .lab(hostDirectory: lab, writeMethod: labWrite), stateDirectory: agentState,
                                         log: { log("[\(context.identity.host)] \($0)") })
            } else {
                if agentState != nil { throw CLIError(message: "--agent-state needs a driver (--lab HOSTDIR)", code: 64) }
                config.agent = PeerAgent(driver: nil, stateDirectory: nil, log: { log("[\(context.identity.host)] \($0)") })
            }
            config.storeDirectory = store
            config.stageTarget = stage
            config.trustedKeys = try trust.map(KeyFiles.publicKey)
            if let key { config.key = try KeyFiles.symmetricKey(key) }
            config.announceInterval = announceInterval
            config.maxRate = try parseMaxRate(maxRate)
            switch fault {
            case nil: break
            case "corrupt-serving": config.corruptServing = true  // test fault injection: serve corrupt blocks
            case let f?: throw CLIError(message: "unknown --fault \(f)")
            }
            try runNode(config, tls: context)
        }
    }
}

struct SeedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Serve bundle files to the swarm (the origin of a distribution).")
    @Argument(help: "Bundle files to serve (one or more).") var bundles: [String]
    @Option(help: "Address to listen on, HOST:PORT.") var listen = "0.0.0.0:7701"
    @Option(help: "Address peers should dial (default: what the coordinator sees).") var advertise: String?
    @Option(help: "Coordinator address HOST:PORT.") var coordinator: String
    @Option(help: "TLS directory with a certificate of role seed.") var tls: String
    @Option(name: .long, help: "Trusted Ed25519 public key (PEM); the bundle must be signed by it.") var trust: [String] = []
    @Option(help: "Cap on what this seed sends (e.g. 500Mbit/s); the topology's uplink_limit also applies, the tighter wins.")
    var maxRate: String?

    func run() throws {
        try reportingErrors {
            let context = try loadTLS(tls)
            var config = try nodeConfiguration(listen: listen, advertise: advertise, coordinator: coordinator)
            guard !bundles.isEmpty else { throw CLIError(message: "give at least one bundle file to serve", code: 64) }
            config.seedBundles = bundles
            config.maxRate = try parseMaxRate(maxRate)
            config.trustedKeys = try trust.map(KeyFiles.publicKey)
            try runNode(config, tls: context)
        }
    }
}
