import Foundation
import ShoalBundle
import ShoalRollout
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
        /// The host agent's operation as the host last reported it.
        public var operation: OperationProgress?
    }

    /// An operator's order for one host, kept until the host reports its id.
    public struct OrderRecord: Codable, Hashable, Sendable {
        public var order: OperationOrder
        public var orderedBy: String
        public var orderedAt: Double
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
        /// host → its last order (optional: state files from before orders decode as none).
        public var orders: [String: OrderRecord]?
        /// rollout id → the rollout (optional: state from before rollouts decodes as none).
        public var rollouts: [String: Rollout]?
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
        case .announce(let port, let listenAddress, let bundles, let operation),
             .announceAndWait(let port, let listenAddress, let bundles, _, let operation):
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
            if let operation { record.operation = operation }
            state.hosts[identity.host] = record
            return jobsAnswer(for: identity.host, now: now)

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

        case .orderOperation(let host, let order):
            guard identity.role == .operator_ else {
                return .refused("only operators order operations (certificate role \(identity.role.rawValue))")
            }
            guard site(of: host) != nil else { return .refused("host \(host) is not in the topology") }
            guard !order.id.isEmpty, order.id.count <= 200, !order.id.contains(where: \.isNewline) else {
                return .refused("the operation id must be 1…200 characters on one line")
            }
            if let existing = state.orders?[host] {
                if existing.order == order { return .operation(operationStatus(of: host)) }
                if existing.order.id == order.id {
                    return .refused("operation \(order.id) was already ordered on \(host) with other parameters; use a new id")
                }
                let progress = state.hosts[host]?.operation
                let finished = progress?.id == existing.order.id && progress?.isFinished == true
                if !finished {
                    let at = progress?.id == existing.order.id ? "at \(progress!.step)" : "not yet taken by the host"
                    return .refused("\(host) has an unfinished operation \(existing.order.id) (\(existing.order.kind), \(at)); wait for its outcome")
                }
            }
            if let progress = state.hosts[host]?.operation, progress.id == order.id {
                return .refused("\(host) already ran an operation \(order.id); use a new id")
            }
            var orders = state.orders ?? [:]
            orders[host] = OrderRecord(order: order, orderedBy: identity.host, orderedAt: now)
            state.orders = orders
            return .operation(operationStatus(of: host))

        case .operationStatus(let host):
            guard site(of: host) != nil else { return .refused("host \(host) is not in the topology") }
            return .operation(operationStatus(of: host))

        case .rolloutStatus:
            return handleRollout(request, now: now)

        case .rolloutCreate, .rolloutPlan, .rolloutControl:
            guard identity.role == .operator_ else {
                return .refused("only operators manage rollouts (certificate role \(identity.role.rawValue))")
            }
            return handleRollout(request, now: now)
        }
    }

    /// The orders `host` has not reported yet (at most one).
    public func pendingOrders(for host: String) -> [OperationOrder] {
        guard let o = state.orders?[host] else { return [] }
        return state.hosts[host]?.operation?.id == o.order.id ? [] : [o.order]
    }

    /// What an announce of `host` is answered with: its jobs, and its pending orders if any.
    public mutating func jobsAnswer(for host: String, now: Double) -> ControlResponse {
        let jobs = jobs(for: host, now: now)
        let orders = pendingOrders(for: host)
        return orders.isEmpty ? .jobs(jobs) : .jobsAndOrders(jobs: jobs, orders: orders)
    }

    public func operationStatus(of host: String) -> HostOperationStatus {
        let o = state.orders?[host]
        let progress = state.hosts[host]?.operation
        return HostOperationStatus(host: host, order: o?.order, orderedBy: o?.orderedBy, pending: !pendingOrders(for: host).isEmpty,
                                   progress: progress)
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
                lastSeenSecondsAgo: r?.lastSeen.map { now - $0 }, bundles: r.map { Array($0.progress.values).sorted { $0.bundleID < $1.bundleID } } ?? [],
                operation: state.orders?[name] != nil || r?.operation != nil ? operationStatus(of: name) : nil)
        }
        return StatusReport(bundles: state.bundles.keys.sorted(), hosts: hosts, badPeerReports: state.badPeerReports)
    }
}
