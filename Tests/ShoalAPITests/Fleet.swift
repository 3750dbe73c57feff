import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import NIOCore
import NIOPosix
import ShoalAPI
import ShoalBundle
import ShoalCoordinator
import ShoalCrypto
import ShoalNet
import ShoalTLS
import ShoalTestKit
import ShoalTopology
import ShoalWire

/// A real coordinator for the API tests: TLS control server and SQLite store in a temporary
/// directory, the HTTP API on 127.0.0.1, peers that announce over TLS, and an operator that
/// publishes over TLS (the same paths production uses).
final class Fleet: @unchecked Sendable {
    // Invariant: immutable after init.
    static let yaml = """
        origin: { name: origin, uplink: 100Mbit, seeds: [seed] }
        sites:
          - { name: a, wan: 50Mbit, host_link: 100Mbit }
          - { name: b, wan: 50Mbit, host_link: 100Mbit }
        hosts:
          - { name: a1, site: a }
          - { name: a2, site: a }
          - { name: b1, site: b }
        """

    let dir = TemporaryDirectory("shoal-api")
    let ca: FleetCA
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let server: CoordinatorServer
    let http: APIServer
    let token = APIToken.generate()
    let controlPort: Int
    let httpPort: Int
    let ops: ControlClient
    /// The two published bundles (staging, target).
    var staging = ""
    var target = ""

    init() async throws {
        ca = try FleetCA.create()
        server = try CoordinatorServer(topology: try Topology.parse(yaml: Self.yaml),
                                       tls: try Self.context(ca, FleetIdentity(host: "coordinator", site: "origin", role: .coordinator)),
                                       statePath: dir.file("state.sqlite"), group: group, log: { _ in })
        controlPort = try server.start(host: "127.0.0.1", port: 0).port!
        http = APIServer(api: CoordinatorAPI(server: server, token: token))
        httpPort = try await http.start(host: "127.0.0.1", port: 0)
        ops = try await ControlClient.connect(to: "127.0.0.1:\(controlPort)",
                                        tls: try Self.context(ca, FleetIdentity(host: "ops", site: "origin", role: .operator_)), group: group).get()
    }

    /// Synchronous (for `defer`): the HTTP server's graceful stop runs on its own.
    func shutdown() {
        ops.close()
        let http = self.http
        Task { await http.stop() }
        server.stop()
        try? group.syncShutdownGracefully()
        dir.remove()
    }

    static func context(_ ca: FleetCA, _ identity: FleetIdentity) throws -> TLSContext {
        let (cert, key) = try ca.issue(identity)
        return try TLSContext(files: TLSFiles(ca: ca.certificate, certificate: cert, key: key))
    }

    static func manifestB64(name: String) throws -> (String, String) {
        let m = Manifest(flags: [], name: name, createdAt: 0, imageSize: 8192, regionSize: 4096, compressionLevel: 3,
                         imageDigest: SHA256.hash([1]), frames: [
                            .init(offset: 32, storedLength: 10, decodedLength: 4096, storedDigest: SHA256.hash([2]), decodedDigest: SHA256.hash([3])),
                            .init(offset: 42, storedLength: 10, decodedLength: 4096, storedDigest: SHA256.hash([4]), decodedDigest: SHA256.hash([5])),
                         ])
        let signed = try SignedManifest(manifest: m, signingKey: nil)
        return (Data(signed.encodedPayload()).base64EncodedString(), signed.bundleID.hex)
    }

    /// Publishes two bundles to every host through the operator's TLS connection.
    func publishTwoBundles() async throws {
        for name in ["staging", "target"] {
            let (b64, id) = try Self.manifestB64(name: name)
            guard case .published = try await ops.send(.publish(manifest: b64, seedHost: "", selector: "all")).get() else {
                throw TestFailure("publish of \(name) refused")
            }
            if name == "staging" { staging = id } else { target = id }
        }
    }

    /// Every host announces over its own TLS connection: a1 and b1 hold both bundles, a2 half of
    /// the staging bundle; some WAN and swarm bytes are reported.
    func announceHosts(a1Operation: OperationProgress? = nil) async throws {
        for (host, site) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
            let client = try await ControlClient.connect(to: "127.0.0.1:\(controlPort)",
                                                         tls: try Self.context(ca, FleetIdentity(host: host, site: site, role: .peer)), group: group).get()
            defer { client.close() }
            let bundles: [BundleProgress] = host == "a2"
                ? [BundleProgress(bundleID: staging, have: 1, total: 2, bytes: 10, complete: false, staged: false, wanInBytes: 100, servedBytes: 5)]
                : [staging, target].map { BundleProgress(bundleID: $0, have: 2, total: 2, bytes: 20, complete: true, staged: false,
                                                          wanInBytes: 1000, wanOutBytes: 200, servedBytes: 300) }
            let operation = host == "a1" ? a1Operation : nil
            let answer = try await client.send(.announce(listenPort: 7701, listenAddress: "127.0.0.1", bundles: bundles, operation: operation)).get()
            switch answer {
            case .jobs, .jobsAndOrders: break
            default:
                throw TestFailure("announce of \(host) refused: \(answer)")
            }
        }
    }

    struct Reply {
        var status: Int
        var body: Data
        var contentType: String?
        var text: String { String(decoding: body, as: UTF8.self) }
        func json() throws -> Any { try JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }
    }

    static let session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.requestCachePolicy = .reloadIgnoringLocalCacheData
        return URLSession(configuration: c)
    }()

    /// One HTTP request to the API; `token` nil sends no Authorization header.
    func request(_ method: String, _ path: String, token: String?, body: String? = nil) async throws -> Reply {
        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(httpPort)\(path)")!)
        r.httpMethod = method
        if let token { r.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            r.httpBody = Data(body.utf8)
            r.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await Self.session.data(for: r)
        let http = response as! HTTPURLResponse
        return Reply(status: http.statusCode, body: data, contentType: http.value(forHTTPHeaderField: "Content-Type"))
    }

    func get(_ path: String) async throws -> Reply { try await request("GET", path, token: token) }
    func post(_ path: String, _ body: String? = nil) async throws -> Reply { try await request("POST", path, token: token, body: body ?? "") }

    /// A rollout request as JSON, converting every host with a policy that does not wait.
    func rolloutJSON(id: String, policy: String = #"{"soakSeconds": 0, "maxUnavailablePerSite": "100%", "maxUnavailablePerRack": "100%", "minHostsBeforeJudging": 1}"#) -> String {
        #"{"id": "\#(id)", "kind": "convert", "stagingBundle": "\#(staging)", "targetBundle": "\#(target)", "selector": "all", "policy": \#(policy)}"#
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
