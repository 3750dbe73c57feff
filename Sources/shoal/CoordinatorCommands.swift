import ArgumentParser
import Foundation
import NIOCore
import NIOPosix
import ShoalAPI
import ShoalBundle
import ShoalCoordinator
import ShoalNet
import ShoalStorage
import ShoalTLS
import ShoalTopology
import ShoalWire

/// Loads a `--tls DIR` into a TLS context, with a clear message when it is incomplete.
func loadTLS(_ dir: String) throws -> TLSContext {
    do {
        return try TLSContext(files: try TLSFiles.load(directory: dir))
    } catch let error as TLSError {
        throw CLIError(message: "\(dir): \(error.message) (make it with `shoal ca issue --out \(dir)`)")
    }
}

struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Run the coordinator: tracker of hosts, bundles and progress; hands out peers and WAN plans.",
        discussion: """
            Hosts (peers and seeds) connect with mutually authenticated TLS 1.3 using certificates \
            from the fleet CA; a host must be in the topology, in the site its certificate names. \
            State (published bundles, hosts, progress, bans, epochs, orders) is kept in the SQLite \
            database --state: every change an answer depends on is committed before the answer is \
            sent (hosts' last-seen times at most every 5 s), and read back on start, so a \
            coordinator killed at any moment continues where it was. A JSON state file of an older \
            coordinator at that path is imported once (the old file is kept as PATH.imported.json).

            Traffic caps: the operator's limits in the topology (origin uplink_limit; per site \
            wan_limit / wan_limit_up / wan_limit_down and host_limit; per host limit) are handed to \
            each host with its jobs, a site's WAN cap split equally over the site's hosts, and the \
            peers enforce them. --enforce-link-rates adds the links' own rates as caps (the \
            loopback lab uses it, as nothing else shapes loopback traffic).

            HTTP API, dashboard and /metrics (docs/API.md): off unless --http HOST:PORT and \
            --http-token-file FILE are both given. Every request but the dashboard page needs \
            `Authorization: Bearer TOKEN`; make the token file with `shoal coordinator token \
            --out FILE`. Listen on 127.0.0.1 (the default host) or put a TLS terminator in front: \
            on any other address the token travels in clear.
            """,
        subcommands: [CoordinatorToken.self]
    )
    // --topology, --tls and --state are required to run the coordinator; they are optional to
    // the parser only so that `shoal coordinator token` works without them (a parent's options
    // are parsed and checked for its subcommands too). `run()` checks them.
    @Option(help: "Topology file (YAML; see topology/README.md). Required.") var topology: String?
    @Option(help: "Address to listen on, HOST:PORT.") var listen = "0.0.0.0:7700"
    @Option(help: "TLS directory with the coordinator's certificate (role coordinator). Required.") var tls: String?
    @Option(help: ArgumentHelp("State database (SQLite, created if missing), kept across restarts; an old JSON state file there is imported. Required.", valueName: "PATH"))
    var state: String?
    @Option(help: "Seconds without an announce after which a host counts as dead.") var liveTimeout: Double = 10
    @Flag(help: "Also cap every host at its topology link rates (for loopback labs, where nothing else shapes).")
    var enforceLinkRates = false
    @Option(help: ArgumentHelp("Also serve the HTTP API, dashboard and /metrics here (HOST:PORT, or PORT for 127.0.0.1); needs --http-token-file.", valueName: "HOST:PORT"))
    var http: String?
    @Option(help: ArgumentHelp("File holding the HTTP API's bearer token (mode 0600; make it with `shoal coordinator token --out FILE`).", valueName: "FILE"))
    var httpTokenFile: String?

    func validate() throws {
        if (http == nil) != (httpTokenFile == nil) {
            throw ValidationError("--http and --http-token-file go together: the HTTP API never runs without a token")
        }
    }

    func run() throws {
        let missing = [("--topology", topology), ("--tls", tls), ("--state", state)].filter { $0.1 == nil }.map(\.0)
        if !missing.isEmpty {
            throw ValidationError("missing \(missing.joined(separator: ", ")) (or run `shoal coordinator token --out FILE`)")
        }
        let topology = self.topology!, tls = self.tls!, state = self.state!
        try reportingErrors {
            let text: String
            do { text = try String(contentsOfFile: topology, encoding: .utf8) } catch { throw CLIError(message: "cannot read \(topology)") }
            let topo: Topology
            do { topo = try Topology.parse(yaml: text) } catch { throw CLIError(message: "\(topology): \(error)") }
            let context = try loadTLS(tls)
            guard context.identity.role == .coordinator else {
                throw CLIError(message: "\(tls)/host.pem has role \(context.identity.role.rawValue); the coordinator needs a certificate issued with --role coordinator")
            }
            guard let (host, port) = parseHostPort(listen, defaultHost: "0.0.0.0") else { throw CLIError(message: "bad --listen \(listen)") }
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let server: CoordinatorServer
            do {
                server = try CoordinatorServer(topology: topo, tls: context, statePath: state, group: group, liveTimeout: liveTimeout,
                                                enforceLinkRates: enforceLinkRates, log: { Terminal.note($0) })
            } catch { throw CLIError(message: "\(error)") }
            var httpServer: APIServer?
            var httpAddress: (String, Int)?
            var token = ""
            if let http, let httpTokenFile {
                guard let hp = parseHostPort(http, defaultHost: "127.0.0.1") else { throw CLIError(message: "bad --http \(http)") }
                httpAddress = hp
                do { token = try APIToken.load(path: httpTokenFile) } catch { throw CLIError(message: "\(error)") }
            }
            let bound = try server.start(host: host, port: port)
            Terminal.note("coordinator listening on \(bound) (\(topo.hosts.count) hosts in \(topo.sites.count) sites; state \(state)\(topo.hasLimits ? "; operator traffic caps set" : "")\(enforceLinkRates ? "; link rates enforced by the peers" : ""))")
            if let (httpHost, httpPort) = httpAddress {
                let api = APIServer(api: CoordinatorAPI(server: server, token: token))
                let boundPort: Int
                do { boundPort = try api.startBlocking(host: httpHost, port: httpPort) } catch {
                    server.stop()
                    throw CLIError(message: "cannot serve HTTP on \(httpHost):\(httpPort): \(error)")
                }
                httpServer = api
                let loopback = httpHost == "127.0.0.1" || httpHost == "::1" || httpHost == "localhost"
                Terminal.note("HTTP API and dashboard on http://\(httpHost):\(boundPort)/dashboard#token=… (token in \(httpTokenFile ?? ""))\(loopback ? "" : "; not loopback: the token travels in clear unless a TLS terminator is in front")")
            }
            waitForTerminationSignal()
            httpServer?.stopBlocking()
            server.stop()
            try? group.syncShutdownGracefully()
        }
    }
}

/// `shoal coordinator token --out FILE`: the HTTP API's bearer token.
struct CoordinatorToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Make a bearer token for the coordinator's HTTP API (32 random bytes, hex, in a new file of mode 0600).")
    @Option(help: ArgumentHelp("The token file to create (an existing one is not overwritten).", valueName: "FILE")) var out: String

    func run() throws {
        try reportingErrors {
            do { _ = try APIToken.create(at: out) } catch { throw CLIError(message: "\(error)") }
            print("wrote a new HTTP API token to \(out); start the coordinator with --http 127.0.0.1:7780 --http-token-file \(out)")
        }
    }
}

struct DistributeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distribute",
        abstract: "Publish a bundle to the coordinator and target hosts; peers start fetching it.",
        discussion: "SELECTOR: all, site=NAME, rack=NAME, name=GLOB, label=KEY=VALUE; comma means AND.")
    @Argument(help: "Bundle file (its signed manifest is published; the seed serves the file).") var bundle: String
    @Option(help: "Coordinator address HOST:PORT.") var coordinator: String
    @Option(help: "TLS directory with an operator certificate.") var tls: String
    @Option(help: "Hosts to target.") var hosts = "all"
    @Option(help: "Seed host serving the bundle (default: the topology origin's first seed).") var seed: String?

    func run() throws {
        try reportingErrors {
            let file = try BundleFile(path: bundle)
            let context = try loadTLS(tls)
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { try? group.syncShutdownGracefully() }
            let response = try controlRequest(
                .publish(manifest: Data(file.signedManifest.encodedPayload()).base64EncodedString(), seedHost: seed ?? "", selector: hosts),
                coordinator: coordinator, tls: context, group: group)
            switch response {
            case .published(let id, let targets):
                print("published \(id)")
                print("targets:  \(targets.count) hosts: \(targets.joined(separator: " "))")
            case .refused(let why): throw CLIError(message: "refused by the coordinator: \(why)")
            default: throw CLIError(message: "unexpected answer from the coordinator")
            }
        }
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Per-site and per-host progress, from the coordinator.")
    @Option(help: "Coordinator address HOST:PORT.") var coordinator: String
    @Option(help: "TLS directory (any fleet certificate).") var tls: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try reportingErrors {
            let context = try loadTLS(tls)
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { try? group.syncShutdownGracefully() }
            guard case .status(let report) = try controlRequest(.status, coordinator: coordinator, tls: context, group: group) else {
                throw CLIError(message: "unexpected answer from the coordinator")
            }
            if json {
                let data = try JSONEncoder().encode(report)
                print(String(decoding: data, as: UTF8.self))
                return
            }
            print("bundles: \(report.bundles.map { String($0.prefix(12)) }.joined(separator: ", "))")
            print("host        site     alive  progress")
            for h in report.hosts {
                let progress = h.bundles.map { b in "\(b.bundleID.prefix(8)) \(b.have)/\(b.total)\(b.complete ? " done" : "")\(b.staged ? " staged" : "")\(b.error.map { " ERROR \($0)" } ?? "")" }.joined(separator: "; ")
                print("\(h.host.padding(toLength: 11, withPad: " ", startingAt: 0)) \(h.site.padding(toLength: 8, withPad: " ", startingAt: 0)) \(h.alive ? "yes  " : "no   ")  \(progress)")
            }
            let operations = report.hosts.compactMap { h in h.operation.map { (h.host, $0) } }
            if !operations.isEmpty {
                print("operations:")
                for (host, op) in operations { print("  \(host.padding(toLength: 11, withPad: " ", startingAt: 0)) \(operationSummary(op))") }
            }
            for line in report.badPeerReports { print("bad peer: \(line)") }
        }
    }
}

func controlRequest(_ request: ControlRequest, coordinator: String, tls: TLSContext, group: any EventLoopGroup) throws -> ControlResponse {
    do {
        let client = try ControlClient.connect(to: coordinator, tls: tls, group: group).wait()
        defer { client.close() }
        return try client.send(request).wait()
    } catch let error as CLIError {
        throw error
    } catch {
        throw CLIError(message: "coordinator \(coordinator): \(error)")
    }
}
