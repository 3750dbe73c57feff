/// Operations the rollout orders on each host.
public enum RolloutKind: String, Codable, Hashable, Sendable, CaseIterable {
    case convert, maintenance
}

/// What a wave size counts: hosts per site, or hosts in the whole fleet.
public enum WaveScope: String, Codable, Hashable, Sendable, CaseIterable {
    case perSite, fleet
}

/// The order hosts are considered in for each wave.
public enum HostOrder: String, Codable, Hashable, Sendable, CaseIterable {
    /// `a1, b1, c1, a2, b2, …`: sites in the order they first appear, hosts in the given order.
    case interleaveSites
    /// All hosts of the first site (in the given order), then the next site, …
    case bySite
}

/// What happens to a host whose convert fails.
public enum FailureAction: String, Codable, Hashable, Sendable, CaseIterable {
    /// Nothing more: the agent has left the host in staging (or base); the operator decides.
    case leaveInStaging
    /// Order a revert to the base OS at once.
    case revert
}

/// How a rollout proceeds: the ramp of wave sizes, the caps that keep sites and racks up, the
/// failure budget and the timing. See `docs/ROLLOUTS.md` for the table of knobs.
///
/// Decoding JSON fills every missing key with its default and rejects unknown keys:
///
/// ```swift
/// let p = try JSONDecoder().decode(RolloutPolicy.self, from: Data(#"{"waves": [1, "50%", "100%"]}"#.utf8))
/// try p.validate()
/// ```
public struct RolloutPolicy: Codable, Hashable, Sendable {
    /// Wave sizes in order; the last one repeats.
    public var waves: [Amount] = [1, 5, "10%", "50%", "100%"]
    public var waveScope: WaveScope = .perSite
    public var canaryPerSite: Bool = true
    public var maxUnavailablePerSite: Amount = "10%"
    public var maxUnavailablePerRack: Amount = 1
    public var maxConcurrent: Int = 50
    public var failureBudget: Amount = "5%"
    public var minHostsBeforeJudging: Int = 10
    public var healthDeadlineSeconds: Double = 3600
    public var soakSeconds: Double = 300
    public var windows: [MaintenanceWindow] = []
    public var order: HostOrder = .interleaveSites
    public var onFailure: FailureAction = .leaveInStaging
    public var agentHealthTimeoutSeconds: Double? = nil
    public var agentHealthPollSeconds: Double? = nil
    public var agentBootAttempts: Int? = nil

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case waves, waveScope, canaryPerSite, maxUnavailablePerSite, maxUnavailablePerRack, maxConcurrent
        case failureBudget, minHostsBeforeJudging, healthDeadlineSeconds, soakSeconds, windows, order, onFailure
        case agentHealthTimeoutSeconds, agentHealthPollSeconds, agentBootAttempts
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Missing keys take their defaults; an unknown key is an error that names it.
    public init(from decoder: any Decoder) throws {
        let any = try decoder.container(keyedBy: AnyKey.self)
        let unknown = any.allKeys.map(\.stringValue).filter { CodingKeys(stringValue: $0) == nil }.sorted()
        if let first = unknown.first {
            let known = CodingKeys.allCases.map(\.rawValue).joined(separator: ", ")
            throw RolloutError.invalidPolicy(
                "unknown key \"\(first)\"\(unknown.count > 1 ? " (and \(unknown.dropFirst().joined(separator: ", ")))" : ""); known keys: \(known)"
            )
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var p = RolloutPolicy()
        func take<T: Decodable>(_ key: CodingKeys, _ into: inout T) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { into = v }
        }
        func takeOptional<T: Decodable>(_ key: CodingKeys, _ into: inout T?) throws {
            if let v = try c.decodeIfPresent(T.self, forKey: key) { into = v }
        }
        try take(.waves, &p.waves)
        try take(.waveScope, &p.waveScope)
        try take(.canaryPerSite, &p.canaryPerSite)
        try take(.maxUnavailablePerSite, &p.maxUnavailablePerSite)
        try take(.maxUnavailablePerRack, &p.maxUnavailablePerRack)
        try take(.maxConcurrent, &p.maxConcurrent)
        try take(.failureBudget, &p.failureBudget)
        try take(.minHostsBeforeJudging, &p.minHostsBeforeJudging)
        try take(.healthDeadlineSeconds, &p.healthDeadlineSeconds)
        try take(.soakSeconds, &p.soakSeconds)
        try take(.windows, &p.windows)
        try take(.order, &p.order)
        try take(.onFailure, &p.onFailure)
        try takeOptional(.agentHealthTimeoutSeconds, &p.agentHealthTimeoutSeconds)
        try takeOptional(.agentHealthPollSeconds, &p.agentHealthPollSeconds)
        try takeOptional(.agentBootAttempts, &p.agentBootAttempts)
        self = p
    }

    /// Checks every value's range.
    ///
    /// - Throws: ``RolloutError/invalidPolicy(_:)`` naming the first bad field.
    public func validate() throws(RolloutError) {
        if waves.isEmpty { throw .invalidPolicy("waves: the ramp is empty; give at least one wave size such as [1, \"100%\"]") }
        for (i, w) in waves.enumerated() { try w.check("waves[\(i)]") }
        try maxUnavailablePerSite.check("maxUnavailablePerSite")
        try maxUnavailablePerRack.check("maxUnavailablePerRack")
        try failureBudget.check("failureBudget", zeroAllowed: true)
        if maxConcurrent < 1 { throw .invalidPolicy("maxConcurrent: \(maxConcurrent) must be at least 1") }
        if minHostsBeforeJudging < 0 {
            throw .invalidPolicy("minHostsBeforeJudging: \(minHostsBeforeJudging) must be 0 or more")
        }
        if !(healthDeadlineSeconds.isFinite && healthDeadlineSeconds > 0) {
            throw .invalidPolicy("healthDeadlineSeconds: \(healthDeadlineSeconds) must be more than 0")
        }
        if !(soakSeconds.isFinite && soakSeconds >= 0) {
            throw .invalidPolicy("soakSeconds: \(soakSeconds) must be 0 or more")
        }
        for (i, w) in windows.enumerated() { try w.validate("windows[\(i)]") }
        for (name, v) in [("agentHealthTimeoutSeconds", agentHealthTimeoutSeconds), ("agentHealthPollSeconds", agentHealthPollSeconds)] {
            if let v, !(v.isFinite && v > 0) { throw .invalidPolicy("\(name): \(v) must be more than 0") }
        }
        if let n = agentBootAttempts, n < 1 { throw .invalidPolicy("agentBootAttempts: \(n) must be at least 1") }
    }

    /// The ramp entry for wave `index` (1-based); the last entry repeats.
    func waveSize(_ index: Int) -> Amount { waves[min(max(index - 1, 0), waves.count - 1)] }

    /// True when new waves may start at `now`.
    func windowOpen(_ now: Double) -> Bool { windows.isEmpty || windows.contains { $0.contains(now) } }
}
