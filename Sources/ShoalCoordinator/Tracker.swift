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

        public init(bundleID: String, manifest: String, chunkCount: Int, seedHost: String, targets: [String], publishedAt: Double) {
            self.bundleID = bundleID
            self.manifest = manifest
            self.chunkCount = chunkCount
            self.seedHost = seedHost
            self.targets = targets
            self.publishedAt = publishedAt
        }
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

        public init(host: String, site: String, role: String, address: String? = nil, port: Int? = nil, lastSeen: Double? = nil,
                    progress: [String: BundleProgress] = [:], operation: OperationProgress? = nil) {
            self.host = host
            self.site = site
            self.role = role
            self.address = address
            self.port = port
            self.lastSeen = lastSeen
            self.progress = progress
            self.operation = operation
        }
    }

    /// An operator's order for one host, kept until the host reports its id.
    public struct OrderRecord: Codable, Hashable, Sendable {
        public var order: OperationOrder
        public var orderedBy: String
        public var orderedAt: Double

        public init(order: OperationOrder, orderedBy: String, orderedAt: Double) {
            self.order = order
            self.orderedBy = orderedBy
            self.orderedAt = orderedAt
        }
    }

    /// What survives a restart (kept by a `CoordinatorStore`; older coordinators wrote it as one
    /// JSON file, which still decodes: every field may be missing).
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
        /// Opaque JSON documents of later features (rollouts, …): kind → id → body. Written with
        /// `Tracker.saveDocument(kind:id:body:)`, which records the change like any other; the
        /// store keeps each as one row, so a feature never needs a table of its own to start.
        public var documents: [String: [String: Data]] = [:]
        public init() {}

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            bundles = try c.decodeIfPresent([String: PublishedBundle].self, forKey: .bundles) ?? [:]
            hosts = try c.decodeIfPresent([String: HostRecord].self, forKey: .hosts) ?? [:]
            banned = try c.decodeIfPresent([String: [String]].self, forKey: .banned) ?? [:]
            badPeerReports = try c.decodeIfPresent([String].self, forKey: .badPeerReports) ?? []
            epochs = try c.decodeIfPresent([String: Epoch].self, forKey: .epochs) ?? [:]
            orders = try c.decodeIfPresent([String: OrderRecord].self, forKey: .orders)
            documents = try c.decodeIfPresent([String: [String: Data]].self, forKey: .documents) ?? [:]
        }
    }

    /// One document of `State.documents`.
    public struct DocumentKey: Hashable, Sendable, Comparable {
        public var kind: String
        public var id: String
        public init(kind: String, id: String) { self.kind = kind; self.id = id }
        public static func < (a: Self, b: Self) -> Bool { (a.kind, a.id) < (b.kind, b.id) }
    }

    /// What the requests since the last `takeChanges()` changed in `state`: the keys of the rows a
    /// store must write (it reads their values from the state), nothing else. Every mutation of
    /// `state` inside `Tracker` records itself here; code outside that assigns `state` directly
    /// must record its own changes (or use `Changes.everything(in:)`).
    public struct Changes: Hashable, Sendable {
        /// Hosts whose record changed in any way (including only `lastSeen`).
        public var hosts: Set<String> = []
        /// The subset of `hosts` with more than a new `lastSeen`: a new record, or another field
        /// (address, port, role, progress, operation) changed. The rest may be saved late.
        public var hostsBeyondLastSeen: Set<String> = []
        public var bundles: Set<String> = []
        /// Hosts whose order changed.
        public var orders: Set<String> = []
        /// Bundle ids whose ban list changed.
        public var bans: Set<String> = []
        public var epochs: Set<String> = []
        /// Lines appended at the end of `badPeerReports`.
        public var badPeerReportsAppended = 0
        public var documents: Set<DocumentKey> = []

        public init() {}

        public var isEmpty: Bool { self == Changes() }

        /// Nothing but hosts' `lastSeen` changed (empty changes included): safe to save late.
        public var isOnlyLastSeen: Bool {
            hostsBeyondLastSeen.isEmpty && bundles.isEmpty && orders.isEmpty && bans.isEmpty && epochs.isEmpty
                && badPeerReportsAppended == 0 && documents.isEmpty
        }

        public mutating func formUnion(_ other: Changes) {
            hosts.formUnion(other.hosts)
            hostsBeyondLastSeen.formUnion(other.hostsBeyondLastSeen)
            bundles.formUnion(other.bundles)
            orders.formUnion(other.orders)
            bans.formUnion(other.bans)
            epochs.formUnion(other.epochs)
            badPeerReportsAppended += other.badPeerReportsAppended
            documents.formUnion(other.documents)
        }

        /// Every row of `state` (to write a whole state into an empty store).
        public static func everything(in state: State) -> Changes {
            var c = Changes()
            c.hosts = Set(state.hosts.keys)
            c.hostsBeyondLastSeen = c.hosts
            c.bundles = Set(state.bundles.keys)
            c.orders = Set((state.orders ?? [:]).keys)
            c.bans = Set(state.banned.keys)
            c.epochs = Set(state.epochs.keys)
            c.badPeerReportsAppended = state.badPeerReports.count
            c.documents = Set(state.documents.flatMap { kind, docs in docs.keys.map { DocumentKey(kind: kind, id: $0) } })
            return c
        }
    }

    public struct Epoch: Codable, Hashable, Sendable {
        public var fingerprint: String
        public var number: Int

        public init(fingerprint: String, number: Int) {
            self.fingerprint = fingerprint
            self.number = number
        }
    }

    public let topology: Topology
    /// Assigning it directly bypasses change tracking (see `Changes`).
    public var state: State
    /// What changed since the last `takeChanges()`.
    public internal(set) var changes = Changes()
    /// A host that has not announced for this long is treated as dead (its WAN chunks move).
    public var liveTimeout: Double
    /// Hand out the links' own rates as caps too (the loopback lab, where nothing else shapes).
    public var enforceLinkRates: Bool

    /// Host name → site, seeds in the origin (`Topology.host(named:)` is a scan of the fleet, and
    /// `jobs(for:)` needs the site of every target of a bundle on every announce).
    private let siteIndex: [String: String]

    public init(topology: Topology, state: State = State(), liveTimeout: Double = 10, enforceLinkRates: Bool = false) {
        self.topology = topology
        var index: [String: String] = [:]
        for h in topology.hosts where index[h.name] == nil { index[h.name] = h.site }  // the first wins, as in host(named:)
        for s in topology.origin.seeds { index[s] = topology.origin.name }
        self.siteIndex = index
        self.state = state
        self.liveTimeout = liveTimeout
        self.enforceLinkRates = enforceLinkRates
        // Rollouts are kept as documents (kind "rollout", JSON); decoded once here and written
        // back whenever one changes. One that does not decode stays untouched in the state.
        for (id, body) in state.documents[Self.rolloutDocumentKind] ?? [:] {
            if let r = try? JSONDecoder().decode(Rollout.self, from: body) { rollouts[id] = r } else { undecodableRollouts.append(id) }
        }
    }

    /// Every rollout by id (the decoded form of the "rollout" documents).
    public internal(set) var rollouts: [String: Rollout] = [:]
    /// Ids of rollout documents this coordinator could not read (written by a newer one?).
    public internal(set) var undecodableRollouts: [String] = []
    static let rolloutDocumentKind = "rollout"

    /// Returns what changed since the last call and starts recording afresh.
    public mutating func takeChanges() -> Changes {
        defer { changes = Changes() }
        return changes
    }

    /// Stores (or replaces) one document; `body` is the feature's own encoding (JSON by convention).
    public mutating func saveDocument(kind: String, id: String, body: Data) {
        guard state.documents[kind]?[id] != body else { return }
        state.documents[kind, default: [:]][id] = body
        changes.documents.insert(DocumentKey(kind: kind, id: id))
    }

    /// Removes one document (nothing when there is none).
    public mutating func removeDocument(kind: String, id: String) {
        guard state.documents[kind]?[id] != nil else { return }
        state.documents[kind]![id] = nil
        if state.documents[kind]!.isEmpty { state.documents[kind] = nil }
        changes.documents.insert(DocumentKey(kind: kind, id: id))
    }

    public func document(kind: String, id: String) -> Data? { state.documents[kind]?[id] }

    /// The caps of `host` as the wire carries them; `nil` when it has none.
    public func rateLimits(for host: String) -> RateLimits? {
        guard let l = topology.limits(for: host, enforceLinkRates: enforceLinkRates), !l.isUnlimited else { return nil }
        return RateLimits(up: l.up, down: l.down, wanUp: l.wanUp, wanDown: l.wanDown)
    }

    /// The site a name belongs to in the topology (seeds belong to the origin).
    public func site(of host: String) -> String? { siteIndex[host] }

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
            let old = state.hosts[identity.host]
            var record = old ?? HostRecord(host: identity.host, site: site, role: identity.role.rawValue)
            record.address = listenAddress ?? remoteAddress
            record.port = port
            record.role = identity.role.rawValue
            // What the host reports now replaces what it reported before (a restarted host may
            // have lost a bundle and needs its manifest again).
            record.progress = Dictionary(bundles.map { ($0.bundleID, $0) }, uniquingKeysWith: { $1 })
            if let operation { record.operation = operation }
            let beyondLastSeen = old.map { var o = $0; o.lastSeen = nil; var r = record; r.lastSeen = nil; return o != r } ?? true
            record.lastSeen = now
            if record != old {
                state.hosts[identity.host] = record
                changes.hosts.insert(identity.host)
                if beyondLastSeen { changes.hostsBeyondLastSeen.insert(identity.host) }
            }
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
            changes.bundles.insert(id)
            return .published(bundleID: id, hosts: targets.sorted())

        case .reportBadPeer(let bundleID, let peer, let reason):
            let line = "\(Int(now)) \(identity.host) reports \(peer) for bundle \(bundleID.prefix(12)): \(reason)"
            state.badPeerReports.append(line)
            changes.badPeerReportsAppended += 1
            var list = state.banned[bundleID] ?? []
            if !list.contains(peer) {
                list.append(peer)
                state.banned[bundleID] = list
                changes.bans.insert(bundleID)
            }
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
            changes.orders.insert(host)
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
            let live = Set(liveTargets)
            let down = bundle.targets.filter { !live.contains($0) }.sorted()
            let fingerprint = down.joined(separator: ",")
            var epoch = state.epochs[id] ?? Epoch(fingerprint: fingerprint, number: 1)
            if epoch.fingerprint != fingerprint { epoch = Epoch(fingerprint: fingerprint, number: epoch.number + 1) }
            if state.epochs[id] != epoch {
                state.epochs[id] = epoch
                changes.epochs.insert(id)
            }
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
