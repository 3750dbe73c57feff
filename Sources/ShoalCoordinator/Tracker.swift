import Foundation
import ShoalBundle
import ShoalTLS
import ShoalTopology
import ShoalWire

/// The coordinator's first job: who is in the fleet, which bundles go where, who has what, and
/// which peers (and which WAN plan) each host should use. Pure logic: time comes in as values;
/// `CoordinatorServer` carries requests in and responses out.
public struct Tracker: Sendable {
    public struct PublishedBundle: Codable, Hashable, Sendable {
        public var bundleID: String
        public var manifest: String
        public var chunkCount: Int
        public var seedHost: String
        public var targets: [String]
        public var publishedAt: Double
    }

    public struct HostRecord: Codable, Hashable, Sendable {
        public var host: String
        public var site: String
        public var role: String
        public var address: String?
        public var port: Int?
        public var lastSeen: Double?
        public var progress: [String: BundleProgress] = [:]
    }

    /// What survives a restart (written to `--state`).
    public struct State: Codable, Hashable, Sendable {
        public var bundles: [String: PublishedBundle] = [:]
        public var hosts: [String: HostRecord] = [:]
        /// bundle id → hosts banned for sending bad chunks.
        public var banned: [String: [String]] = [:]
        public var badPeerReports: [String] = []
        /// bundle id → (live-set fingerprint, epoch).
        public var epochs: [String: Epoch] = [:]
        public init() {}
    }

    public struct Epoch: Codable, Hashable, Sendable {
        public var fingerprint: String
        public var number: Int
    }

    public let topology: Topology
    public var state: State
    /// A host that has not announced for this long is treated as dead (its WAN chunks move).
    public var liveTimeout: Double
    /// Hand out the links' own rates as caps too (the loopback lab, where nothing else shapes).
    public var enforceLinkRates: Bool

    public init(topology: Topology, state: State = State(), liveTimeout: Double = 10, enforceLinkRates: Bool = false) {
        self.topology = topology
        self.state = state
        self.liveTimeout = liveTimeout
        self.enforceLinkRates = enforceLinkRates
    }

    /// The caps of `host` as the wire carries them; `nil` when it has none.
    public func rateLimits(for host: String) -> RateLimits? {
        guard let l = topology.limits(for: host, enforceLinkRates: enforceLinkRates), !l.isUnlimited else { return nil }
        return RateLimits(up: l.up, down: l.down, wanUp: l.wanUp, wanDown: l.wanDown)
    }

    /// The site a name belongs to in the topology (seeds belong to the origin).
    public func site(of host: String) -> String? {
        if topology.origin.seeds.contains(host) { return topology.origin.name }
        return topology.host(named: host)?.site
    }

    /// Handles one request from an authenticated peer.
    /// - Parameters:
    ///   - identity: from the peer's certificate.
    ///   - remoteAddress: the connection's source IP (used when the announce gives none).
    public mutating func handle(_ request: ControlRequest, from identity: FleetIdentity, remoteAddress: String?, now: Double) -> ControlResponse {
        switch request {
        case .announce(let port, let listenAddress, let bundles), .announceAndWait(let port, let listenAddress, let bundles, _):
            guard identity.role == .peer || identity.role == .seed else {
                return .refused("only peers and seeds announce (certificate role \(identity.role.rawValue))")
            }
            guard let site = site(of: identity.host) else {
                return .refused("host \(identity.host) is not in the topology")
            }
            guard site == identity.site else {
                return .refused("certificate says site \(identity.site), the topology puts \(identity.host) in \(site)")
            }
            var record = state.hosts[identity.host] ?? HostRecord(host: identity.host, site: site, role: identity.role.rawValue)
            record.address = listenAddress ?? remoteAddress
            record.port = port
            record.lastSeen = now
            record.role = identity.role.rawValue
            // What the host reports now replaces what it reported before (a restarted host may
            // have lost a bundle and needs its manifest again).
            record.progress = Dictionary(bundles.map { ($0.bundleID, $0) }, uniquingKeysWith: { $1 })
            state.hosts[identity.host] = record
            return .jobs(jobs(for: identity.host, now: now))

        case .publish(let manifestB64, let requestedSeed, let selector):
            let seedHost = requestedSeed.isEmpty ? (topology.origin.seeds.first ?? "") : requestedSeed
            guard identity.role == .operator_ || identity.role == .coordinator else {
                return .refused("only operators publish bundles (certificate role \(identity.role.rawValue))")
            }
            guard let payload = Data(base64Encoded: manifestB64) else { return .refused("the manifest is not base64") }
            let signed: SignedManifest
            do { signed = try SignedManifest.decode(payload: Array(payload)) } catch { return .refused("bad manifest: \(error)") }
            guard topology.origin.seeds.contains(seedHost) else { return .refused("\(seedHost) is not a seed of the topology's origin") }
            let targets: [String]
            do { targets = try topology.hosts(matching: selector).map(\.name) } catch { return .refused("\(error)") }
            let id = signed.bundleID.hex
            state.bundles[id] = PublishedBundle(
                bundleID: id, manifest: manifestB64, chunkCount: signed.manifest.frames.count, seedHost: seedHost,
                targets: targets.sorted(), publishedAt: now)
            return .published(bundleID: id, hosts: targets.sorted())

        case .reportBadPeer(let bundleID, let peer, let reason):
            let line = "\(Int(now)) \(identity.host) reports \(peer) for bundle \(bundleID.prefix(12)): \(reason)"
            state.badPeerReports.append(line)
            var list = state.banned[bundleID] ?? []
            if !list.contains(peer) { list.append(peer) }
            state.banned[bundleID] = list
            return .ok

        case .status:
            return .status(status(now: now))
        }
    }

    func isAlive(_ host: String, now: Double) -> Bool {
        guard let seen = state.hosts[host]?.lastSeen else { return false }
        return now - seen <= liveTimeout
    }

    func endpoint(_ host: String) -> PeerEndpoint? {
        guard let r = state.hosts[host], let address = r.address, let port = r.port else { return nil }
        return PeerEndpoint(host: host, site: r.site, address: address, port: port, role: r.role)
    }

    /// The jobs of `host`: every bundle that targets it, or that it seeds.
    public mutating func jobs(for host: String, now: Double) -> [Job] {
        var out: [Job] = []
        for id in state.bundles.keys.sorted() {
            let bundle = state.bundles[id]!
            guard bundle.targets.contains(host) || bundle.seedHost == host else { continue }
            let banned = Set(state.banned[id] ?? [])
            let liveTargets = bundle.targets.filter { isAlive($0, now: now) && !banned.contains($0) }
            var sites: [String: [String]] = [:]
            for t in bundle.targets { sites[site(of: t) ?? "?", default: []].append(t) }
            for k in sites.keys { sites[k]!.sort() }
            let down = bundle.targets.filter { !liveTargets.contains($0) }.sorted()
            let fingerprint = down.joined(separator: ",")
            var epoch = state.epochs[id] ?? Epoch(fingerprint: fingerprint, number: 1)
            if epoch.fingerprint != fingerprint { epoch = Epoch(fingerprint: fingerprint, number: epoch.number + 1) }
            state.epochs[id] = epoch
            let seeds = isAlive(bundle.seedHost, now: now) ? [endpoint(bundle.seedHost)].compactMap { $0 } : []
            let peers = liveTargets.filter { $0 != host }.compactMap(endpoint)
            // The manifest travels once: a host that reports the bundle already has it.
            let known = state.hosts[host]?.progress[id] != nil
            out.append(Job(
                bundleID: id, manifest: known ? "" : bundle.manifest, seeds: seeds, peers: peers,
                plan: PlanSpec(epoch: epoch.number, origin: topology.origin.name, sites: sites, down: down), banned: Array(banned).sorted(),
                limits: rateLimits(for: host)))
        }
        return out
    }

    public func status(now: Double) -> StatusReport {
        let names = topology.origin.seeds + topology.hosts.map(\.name)
        let hosts = names.map { name -> HostStatus in
            let r = state.hosts[name]
            return HostStatus(
                host: name, site: site(of: name) ?? "?", alive: isAlive(name, now: now),
                lastSeenSecondsAgo: r?.lastSeen.map { now - $0 }, bundles: r.map { Array($0.progress.values).sorted { $0.bundleID < $1.bundleID } } ?? [])
        }
        return StatusReport(bundles: state.bundles.keys.sorted(), hosts: hosts, badPeerReports: state.badPeerReports)
    }
}
