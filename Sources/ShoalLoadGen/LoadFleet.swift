import Foundation
import Glibc
import ShoalBundle
import ShoalCrypto
import ShoalTLS
import ShoalWire

/// A simulated fleet for load tests: `sites` × `hostsPerSite` hosts (`sNNN` / `sNNN-hNNNNN`), one
/// seed in the origin, a fleet CA and one certificate per host, issued in memory (the coordinator
/// takes a host's identity from its TLS certificate, so every simulated host needs its own).
public struct LoadFleet: Sendable {
    public struct SimulatedHost: Sendable {
        public let identity: FleetIdentity
        public let tls: TLSContext
    }

    public let sites: Int
    public let hostsPerSite: Int
    public let ca: FleetCA
    public let hosts: [SimulatedHost]
    /// The operator's TLS (asks `.status`, publishes).
    public let operatorTLS: TLSContext
    /// Wall seconds to issue every host's key and certificate and build its TLS context.
    public let certificateSeconds: Double

    /// The topology as YAML (what `shoal coordinator --topology` reads).
    public var topologyYAML: String {
        var out = "origin: { name: origin, uplink: 10Gbit, seeds: [seed] }\nsites:\n"
        for s in 0..<sites { out += "  - { name: \(Self.siteName(s)), wan: 1Gbit, host_link: 10Gbit }\n" }
        out += "hosts:\n"
        for h in hosts { out += "  - { name: \(h.identity.host), site: \(h.identity.site) }\n" }
        return out
    }

    public static func siteName(_ s: Int) -> String { "s" + String(format: "%03d", s) }

    /// Issues the CA and `totalHosts` host certificates spread evenly over `sites` sites.
    /// - Parameter threads: certificates are issued on this many threads.
    public static func make(hosts totalHosts: Int, sites: Int, threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> LoadFleet {
        precondition(totalHosts > 0 && sites > 0)
        let ca = try FleetCA.create(name: "Shoal load-test CA", days: 2)
        let perSite = (totalHosts + sites - 1) / sites
        var identities: [FleetIdentity] = []
        identities.reserveCapacity(totalHosts)
        for i in 0..<totalHosts {
            identities.append(FleetIdentity(host: "\(siteName(i / perSite))-h" + String(format: "%05d", i), site: siteName(i / perSite), role: .peer))
        }
        let start = Date()
        let slots = LockedBox<[SimulatedHost?]>(Array(repeating: nil, count: totalHosts))
        let ids = identities
        let failure = LockedBox<(any Error)?>(nil)
        let workers = max(1, min(threads, totalHosts))
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var i = w
            while i < totalHosts {
                do {
                    let (cert, key) = try ca.issue(ids[i], days: 2)
                    let host = SimulatedHost(identity: ids[i], tls: try TLSContext(files: TLSFiles(ca: ca.certificate, certificate: cert, key: key)))
                    slots.withLock { $0[i] = host }
                } catch {
                    failure.withLock { $0 = $0 ?? error }
                    return
                }
                i += workers
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        let seconds = Date().timeIntervalSince(start)
        let (opCert, opKey) = try ca.issue(FleetIdentity(host: "ops", site: "origin", role: .operator_), days: 2)
        return LoadFleet(
            sites: sites, hostsPerSite: perSite, ca: ca, hosts: slots.withLock { $0.map { $0! } },
            operatorTLS: try TLSContext(files: TLSFiles(ca: ca.certificate, certificate: opCert, key: opKey)), certificateSeconds: seconds)
    }

    /// The coordinator's `--tls DIR` (role coordinator, host `coordinator` in the origin).
    public func writeCoordinatorTLS(into directory: String) throws {
        try ca.issue(FleetIdentity(host: "coordinator", site: "origin", role: .coordinator), into: directory, days: 2)
    }

    /// The coordinator's TLS context, in memory (for a coordinator run in-process).
    public func coordinatorTLS() throws -> TLSContext {
        let (cert, key) = try ca.issue(FleetIdentity(host: "coordinator", site: "origin", role: .coordinator), days: 2)
        return try TLSContext(files: TLSFiles(ca: ca.certificate, certificate: cert, key: key))
    }

    /// A small unsigned manifest to publish (base64 of its signed payload) and its bundle id.
    public static func sampleManifest(name: String = "load-test") throws -> (base64: String, bundleID: String) {
        let m = Manifest(flags: [], name: name, createdAt: 0, imageSize: 8192, regionSize: 4096, compressionLevel: 3,
                         imageDigest: SHA256.hash([1]), frames: [
                            .init(offset: 32, storedLength: 10, decodedLength: 4096, storedDigest: SHA256.hash([2]), decodedDigest: SHA256.hash([3])),
                            .init(offset: 42, storedLength: 10, decodedLength: 4096, storedDigest: SHA256.hash([4]), decodedDigest: SHA256.hash([5])),
                         ])
        let signed = try SignedManifest(manifest: m, signingKey: nil)
        return (Data(signed.encodedPayload()).base64EncodedString(), signed.bundleID.hex)
    }
}

/// Raises this process's open-file limit (soft, and hard when allowed) to at least `count`;
/// children started afterwards inherit it. Returns the soft limit now in force.
@discardableResult
public func raiseOpenFileLimit(to count: Int) -> Int {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
    let want = rlim_t(count)
    if limit.rlim_cur >= want { return Int(limit.rlim_cur) }
    var raised = limit
    raised.rlim_cur = want
    if raised.rlim_max < want { raised.rlim_max = want }
    if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) != 0 {
        raised.rlim_cur = limit.rlim_max
        raised.rlim_max = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised)
    }
    _ = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    return Int(limit.rlim_cur)
}

/// A value behind a lock.
final class LockedBox<Value>: @unchecked Sendable {
    // Invariant: `value` is only touched with `lock` held.
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
