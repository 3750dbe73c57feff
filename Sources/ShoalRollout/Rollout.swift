/// Where one host is in a rollout.
public enum HostPhase: String, Codable, Hashable, Sendable, CaseIterable {
    /// Its bundles are not complete and verified on it yet.
    case waitingForData
    /// The data is local; it can be drawn into a wave.
    case ready
    /// Its operation was ordered and has no outcome yet.
    case running
    case succeeded
    /// The operation failed, was refused, timed out, or a revert failed.
    case failed
    /// A revert was ordered and has no outcome yet.
    case reverting
    case reverted
}

/// The outcome of a host's latest convert or maintenance attempt (reverts do not change it).
public enum HostOutcome: String, Codable, Hashable, Sendable {
    case succeeded, failed
}

/// One host's state in a rollout.
public struct RolloutHostState: Codable, Hashable, Sendable {
    public var host: String
    public var site: String
    public var rack: String?
    public var phase: HostPhase
    /// 1-based; a retry adds one.
    public var attempt: Int
    /// The operation that decides this host's phase (the latest convert/maintenance or revert).
    public var operationID: String?
    /// The wave (1-based) the host's current attempt belongs to.
    public var wave: Int?
    public var orderedAt: Double?
    public var finishedAt: Double?
    public var message: String?
    /// Drawn as its site's canary (the site had no succeeded host yet).
    public var canary: Bool
    /// Reverts ordered for this host so far (the `n` of `…-revert-n`).
    public var reverts: Int
    /// Outcome of the latest convert/maintenance attempt; nil until it has one.
    public var lastOutcome: HostOutcome?
    /// The system the agent reported leaving the host in (`base`, `staging`, `target`, `maintenance`).
    public var leftIn: String?

    public init(
        host: String, site: String, rack: String?, phase: HostPhase = .waitingForData, attempt: Int = 1,
        operationID: String? = nil, wave: Int? = nil, orderedAt: Double? = nil, finishedAt: Double? = nil,
        message: String? = nil, canary: Bool = false, reverts: Int = 0, lastOutcome: HostOutcome? = nil,
        leftIn: String? = nil
    ) {
        self.host = host
        self.site = site
        self.rack = rack
        self.phase = phase
        self.attempt = attempt
        self.operationID = operationID
        self.wave = wave
        self.orderedAt = orderedAt
        self.finishedAt = finishedAt
        self.message = message
        self.canary = canary
        self.reverts = reverts
        self.lastOutcome = lastOutcome
        self.leftIn = leftIn
    }

    /// An operation of the rollout is out on this host.
    public var inFlight: Bool { phase == .running || phase == .reverting }

    /// Counts against the site and rack caps: an operation is out, or a failure left the host
    /// outside its base system (or somewhere unknown).
    public var unavailable: Bool { inFlight || (phase == .failed && leftIn != "base") }

    /// Counts against the failure budget.
    var countsAsFailure: Bool { phase == .failed || lastOutcome == .failed }

    /// Counts as finished for the failure budget: its latest attempt has an outcome.
    var countsAsFinished: Bool { phase == .failed || lastOutcome != nil }
}

/// One wave: the hosts ordered together.
public struct Wave: Codable, Hashable, Sendable {
    /// 1-based.
    public var index: Int
    public var hosts: [String]
    public var startedAt: Double
    /// Set when every host of the wave has finished.
    public var endedAt: Double?
    public var converted: Int
    public var failed: Int
    public var reverted: Int

    public init(index: Int, hosts: [String], startedAt: Double, endedAt: Double? = nil, converted: Int = 0, failed: Int = 0, reverted: Int = 0) {
        self.index = index
        self.hosts = hosts
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.converted = converted
        self.failed = failed
        self.reverted = reverted
    }
}

public enum RolloutStatus: String, Codable, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case running, paused, halted, aborted, completed
    public var description: String { rawValue }
}

/// A rollout's whole state. The coordinator stores it after every engine call; the engine is a
/// deterministic function of (rollout, facts, now).
public struct Rollout: Codable, Hashable, Sendable {
    public var spec: RolloutSpec
    public var status: RolloutStatus
    /// In spec order.
    public var hosts: [RolloutHostState]
    public var waves: [Wave]
    public var createdAt: Double
    public var updatedAt: Double
    public var haltReason: String?
    /// No new wave starts before this time.
    public var soakUntil: Double?
    /// `time message` lines, the last ``Rollout/maxEvents`` kept.
    public var events: [String]
    /// Failures the operator accepted by resuming a halted rollout: the budget halts it again
    /// only when the failure count goes beyond this.
    public var acceptedFailures: Int

    public static let maxEvents = 200

    public init(
        spec: RolloutSpec, status: RolloutStatus, hosts: [RolloutHostState], waves: [Wave], createdAt: Double,
        updatedAt: Double, haltReason: String? = nil, soakUntil: Double? = nil, events: [String] = [],
        acceptedFailures: Int = 0
    ) {
        self.acceptedFailures = acceptedFailures
        self.spec = spec
        self.status = status
        self.hosts = hosts
        self.waves = waves
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.haltReason = haltReason
        self.soakUntil = soakUntil
        self.events = events
    }

    /// The wave that has not ended yet, if any.
    public var currentWave: Wave? {
        if let w = waves.last, w.endedAt == nil { return w }
        return nil
    }

    mutating func log(_ now: Double, _ message: String) {
        events.append("\(formatUTC(now)) \(message)")
        if events.count > Self.maxEvents { events.removeFirst(events.count - Self.maxEvents) }
    }
}

/// `2026-11-22T05:30:00Z` without Foundation (the module does no date I/O).
func formatUTC(_ t: Double) -> String {
    guard t.isFinite, abs(t) < 1e13 else { return "\(t)" }
    let secs = Int(t.rounded(.down))
    let days = Int((Double(secs) / 86_400).rounded(.down))
    let sod = secs - days * 86_400
    // Civil-from-days (H. Hinnant).
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
    func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    return "\(y)-\(two(m))-\(two(d))T\(two(sod / 3600)):\(two(sod % 3600 / 60)):\(two(sod % 60))Z"
}
