import Foundation
import ShoalRollout

/// The control protocol between hosts (peers, seeds, operators) and the coordinator.
///
/// Runs over the same mutually authenticated TLS 1.3 as the peer protocol. Each frame is a
/// `u32` big-endian length followed by that many bytes of JSON (one `ControlRequest` from the
/// client, answered by exactly one `ControlResponse`). Who is asking is taken from the TLS
/// certificate, never from the JSON: an announce whose host or site contradicts the certificate
/// is refused.
public enum ControlProtocol {
    public static let version = 1
    /// Largest control frame (manifests of very large bundles fit easily).
    public static let maxFrameLength = 16 << 20

    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let json = try JSONEncoder().encode(value)
        var out: [UInt8] = []
        out.reserveCapacity(json.count + 4)
        let n = UInt32(json.count)
        out += [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)]
        out += json
        return out
    }

    public static func decode<T: Decodable>(_ type: T.Type, from json: some Collection<UInt8>) throws -> T {
        try JSONDecoder().decode(type, from: Data(json))
    }
}

/// A host's address for peer connections: `host:port` (IPv6 in brackets).
public struct PeerEndpoint: Codable, Hashable, Sendable {
    public var host: String
    public var site: String
    public var address: String
    public var port: Int
    public var role: String

    public init(host: String, site: String, address: String, port: Int, role: String) {
        self.host = host
        self.site = site
        self.address = address
        self.port = port
        self.role = role
    }
}

/// How far a host is with one bundle.
public struct BundleProgress: Codable, Hashable, Sendable {
    public var bundleID: String
    public var have: Int
    public var total: Int
    public var bytes: UInt64
    /// Chunks verified and stored, and (when staging) the image written, synced and checked.
    public var complete: Bool
    public var staged: Bool
    public var error: String?
    /// Chunk bytes received from peers outside this host's site (its share of the site's WAN in).
    public var wanInBytes: UInt64?
    /// Chunk bytes served to peers outside this host's site.
    public var wanOutBytes: UInt64?
    /// Chunk bytes served in all.
    public var servedBytes: UInt64?
    /// Seconds from the first job to complete (and staged), as measured by the host.
    public var seconds: Double?
    /// The chunks held, as a base64 bitfield (bit i = chunk i, most significant bit first).
    public var haveBits: String?
    /// When the bundle was complete (and staged), as Unix time by the host's clock.
    public var completedAt: Double?

    public init(bundleID: String, have: Int, total: Int, bytes: UInt64, complete: Bool, staged: Bool, error: String? = nil,
                wanInBytes: UInt64? = nil, wanOutBytes: UInt64? = nil, servedBytes: UInt64? = nil, seconds: Double? = nil) {
        self.bundleID = bundleID
        self.have = have
        self.total = total
        self.bytes = bytes
        self.complete = complete
        self.staged = staged
        self.error = error
        self.wanInBytes = wanInBytes
        self.wanOutBytes = wanOutBytes
        self.servedBytes = servedBytes
        self.seconds = seconds
    }
}

/// The WAN plan inputs the coordinator hands out: every target host by site, which of them are
/// down (dead or banned), and an epoch that changes whenever that does. Every host computes the
/// same `SwarmPlan` from it.
public struct PlanSpec: Codable, Hashable, Sendable {
    public var epoch: Int
    public var origin: String
    public var sites: [String: [String]]
    public var down: [String]

    public init(epoch: Int, origin: String, sites: [String: [String]], down: [String] = []) {
        self.epoch = epoch
        self.origin = origin
        self.sites = sites
        self.down = down
    }
}

/// The caps a host must keep its Shoal traffic under, in bits per second (`nil`: none); see
/// `HostLimits` in ShoalTopology, which the coordinator computes them from.
public struct RateLimits: Codable, Hashable, Sendable {
    public var up: UInt64?
    public var down: UInt64?
    public var wanUp: UInt64?
    public var wanDown: UInt64?

    public init(up: UInt64? = nil, down: UInt64? = nil, wanUp: UInt64? = nil, wanDown: UInt64? = nil) {
        self.up = up
        self.down = down
        self.wanUp = wanUp
        self.wanDown = wanDown
    }
}

/// One bundle a host should fetch (or serve).
public struct Job: Codable, Hashable, Sendable {
    public var bundleID: String
    /// The signed manifest payload, base64 (see docs/BUNDLE-FORMAT.md); empty when the host
    /// already reported this bundle (it has the manifest).
    public var manifest: String
    public var seeds: [PeerEndpoint]
    public var peers: [PeerEndpoint]
    public var plan: PlanSpec
    /// Hosts this host must not use (they sent bad chunks).
    public var banned: [String]
    /// The host's traffic caps (the same in every job of one answer); `nil`: none.
    public var limits: RateLimits?

    public init(bundleID: String, manifest: String, seeds: [PeerEndpoint], peers: [PeerEndpoint], plan: PlanSpec, banned: [String],
                limits: RateLimits? = nil) {
        self.bundleID = bundleID
        self.manifest = manifest
        self.seeds = seeds
        self.peers = peers
        self.plan = plan
        self.banned = banned
        self.limits = limits
    }
}

/// An operator's order to run one host-agent operation (docs/AGENT.md, "Orders from the
/// coordinator"). The host's agent maps it to its `OperationRequest`; ShoalWire does not know the
/// agent's types, so the kind is its name (`convert`, `reinstall`, `revert`, `maintenance`,
/// `capture`) and bundles are ids (hex SHA-256 of the signed manifest) in the host's packed store.
/// Absent tunables take the agent's defaults.
public struct OperationOrder: Codable, Hashable, Sendable {
    /// Chosen by the operator; the host runs an id at most once (a re-sent order is harmless).
    public var id: String
    public var kind: String
    public var stagingBundle: String?
    public var targetBundle: String?
    public var maintenanceBundle: String?
    public var captureName: String?
    public var healthTimeoutSeconds: Double?
    public var healthPollSeconds: Double?
    public var bootAttempts: Int?

    public init(id: String, kind: String, stagingBundle: String? = nil, targetBundle: String? = nil, maintenanceBundle: String? = nil,
                captureName: String? = nil, healthTimeoutSeconds: Double? = nil, healthPollSeconds: Double? = nil, bootAttempts: Int? = nil) {
        self.id = id
        self.kind = kind
        self.stagingBundle = stagingBundle
        self.targetBundle = targetBundle
        self.maintenanceBundle = maintenanceBundle
        self.captureName = captureName
        self.healthTimeoutSeconds = healthTimeoutSeconds
        self.healthPollSeconds = healthPollSeconds
        self.bootAttempts = bootAttempts
    }
}

/// Where a host's operation stands, as the host reports it in its announces.
public struct OperationProgress: Codable, Hashable, Sendable {
    public enum Status: String, Codable, Hashable, Sendable {
        /// Accepted and running (or waiting for the next boot).
        case running
        case succeeded
        case failed
        /// Not accepted by the host (no driver, invalid, another operation holds the host):
        /// nothing changed; `message` says why.
        case refused
    }

    public var id: String
    public var kind: String
    /// The step that runs next (`id#attempt`), or `finished`.
    public var step: String
    public var status: Status
    /// The last lines of the step log (`time code step status: message`).
    public var log: [String]
    /// The outcome's (or the refusal's) message; the system the host was left in.
    public var message: String?
    public var hostLeftIn: String?
    public var code: Int?

    public init(id: String, kind: String, step: String, status: Status, log: [String] = [], message: String? = nil,
                hostLeftIn: String? = nil, code: Int? = nil) {
        self.id = id
        self.kind = kind
        self.step = step
        self.status = status
        self.log = log
        self.message = message
        self.hostLeftIn = hostLeftIn
        self.code = code
    }

    public var isFinished: Bool { status != .running }
}

/// A host's operation as the coordinator knows it: the order (if one came through it) and the
/// last progress the host reported.
public struct HostOperationStatus: Codable, Hashable, Sendable {
    public var host: String
    public var order: OperationOrder?
    public var orderedBy: String?
    /// True until the host reports the order's id (the order goes out with its jobs until then).
    public var pending: Bool
    public var progress: OperationProgress?

    public init(host: String, order: OperationOrder?, orderedBy: String?, pending: Bool, progress: OperationProgress?) {
        self.host = host
        self.order = order
        self.orderedBy = orderedBy
        self.pending = pending
        self.progress = progress
    }
}

public struct HostStatus: Codable, Hashable, Sendable {
    public var host: String
    public var site: String
    public var alive: Bool
    public var lastSeenSecondsAgo: Double?
    public var bundles: [BundleProgress]
    /// The host's operation (absent from coordinators before operations existed).
    public var operation: HostOperationStatus?

    public init(host: String, site: String, alive: Bool, lastSeenSecondsAgo: Double?, bundles: [BundleProgress],
                operation: HostOperationStatus? = nil) {
        self.host = host
        self.site = site
        self.alive = alive
        self.lastSeenSecondsAgo = lastSeenSecondsAgo
        self.bundles = bundles
        self.operation = operation
    }
}

public struct StatusReport: Codable, Hashable, Sendable {
    public var bundles: [String]
    public var hosts: [HostStatus]
    public var badPeerReports: [String]

    public init(bundles: [String], hosts: [HostStatus], badPeerReports: [String]) {
        self.bundles = bundles
        self.hosts = hosts
        self.badPeerReports = badPeerReports
    }
}

public enum ControlRequest: Codable, Hashable, Sendable {
    /// Periodic, from every peer and seed: where it listens and how far it is.
    /// `operation`: the host agent's current operation, if any (optional: older peers omit it).
    case announce(listenPort: Int, listenAddress: String?, bundles: [BundleProgress], operation: OperationProgress? = nil)
    /// An announce that may be held: when the jobs are the same as those last sent on this
    /// connection, the coordinator answers only when they change (a bundle published, a peer
    /// joined or died) or after `waitSeconds`, whichever is first. Peers send the next one as soon
    /// as the answer arrives, so jobs reach them at once instead of at their next poll. A newer
    /// request on the same connection releases a held one.
    case announceAndWait(listenPort: Int, listenAddress: String?, bundles: [BundleProgress], waitSeconds: Double,
                         operation: OperationProgress? = nil)
    /// From an operator: publish a bundle (its signed manifest, base64) served by `seed`, for the
    /// hosts matching `selector`.
    case publish(manifest: String, seedHost: String, selector: String)
    /// A peer sent a chunk that failed its check.
    case reportBadPeer(bundleID: String, peer: String, reason: String)
    case status
    /// From an operator: order an operation on `host`; it goes out with the host's jobs until the
    /// host reports the id. Refused while another order for the host is unfinished.
    case orderOperation(host: String, request: OperationOrder)
    /// The operation of `host` as last reported (any fleet certificate).
    case operationStatus(host: String)
    /// From an operator: start a rollout (docs/ROLLOUTS.md). Creating the same rollout again is
    /// answered with it; another spec under an existing id is refused.
    case rolloutCreate(RolloutRequest)
    /// From an operator: the wave plan a rollout would follow now (a dry run; nothing changes).
    case rolloutPlan(RolloutRequest)
    /// One rollout, or all of them (`id` nil).
    case rolloutStatus(id: String?)
    /// From an operator: pause, resume, abort, retry (failed hosts, all or `hosts`) or revert
    /// (`hosts`) a rollout.
    case rolloutControl(id: String, action: RolloutAction, hosts: [String]?)
}

/// An operator's rollout as it travels to the coordinator: the hosts as a selector (the
/// coordinator resolves it against its topology) and the policy.
public struct RolloutRequest: Codable, Hashable, Sendable {
    public var id: String
    public var kind: RolloutKind
    public var stagingBundle: String
    public var targetBundle: String?
    public var maintenanceBundle: String?
    public var selector: String
    public var policy: RolloutPolicy

    public init(id: String, kind: RolloutKind, stagingBundle: String, targetBundle: String? = nil, maintenanceBundle: String? = nil,
                selector: String = "all", policy: RolloutPolicy = RolloutPolicy()) {
        self.id = id
        self.kind = kind
        self.stagingBundle = stagingBundle
        self.targetBundle = targetBundle
        self.maintenanceBundle = maintenanceBundle
        self.selector = selector
        self.policy = policy
    }
}

public enum RolloutAction: String, Codable, Hashable, Sendable, CaseIterable {
    case pause, resume, abort, retry, revert
}

public enum ControlResponse: Codable, Hashable, Sendable {
    case jobs([Job])
    /// The answer to an announce when operations are ordered for the host: its jobs as in
    /// `.jobs`, and the orders it has not reported yet. Sent only when `orders` is not empty, so
    /// hosts that never get orders see only `.jobs`.
    case jobsAndOrders(jobs: [Job], orders: [OperationOrder])
    /// `.orderOperation` accepted (or the same order again): what the coordinator holds now.
    case operation(HostOperationStatus)
    case published(bundleID: String, hosts: [String])
    case ok
    case status(StatusReport)
    case refused(String)
    /// Rollouts as the coordinator holds them now.
    case rollouts([Rollout])
    case rolloutPlan(RolloutPlan)
}
