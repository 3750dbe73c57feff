/// What the coordinator knows about a host when it calls ``RolloutEngine/advance(_:facts:now:)``.
public struct HostFacts: Codable, Hashable, Sendable {
    /// The rollout's bundles are complete and verified on the host.
    public var dataLocal: Bool
    /// The host's peer is connected; hosts that are not alive are not drawn into new waves.
    public var alive: Bool
    /// The operation the host last reported, if any.
    public var operation: ReportedOperation?

    public init(dataLocal: Bool, alive: Bool = true, operation: ReportedOperation? = nil) {
        self.dataLocal = dataLocal
        self.alive = alive
        self.operation = operation
    }
}

/// An operation as the host's agent reported it.
public struct ReportedOperation: Codable, Hashable, Sendable {
    public enum Status: String, Codable, Hashable, Sendable, CaseIterable {
        case running, succeeded, failed, refused
    }

    public var id: String
    public var status: Status
    /// `base`, `staging`, `target` or `maintenance` once finished.
    public var hostLeftIn: String?
    public var message: String?

    public init(id: String, status: Status, hostLeftIn: String? = nil, message: String? = nil) {
        self.id = id
        self.status = status
        self.hostLeftIn = hostLeftIn
        self.message = message
    }
}

/// An operation the coordinator must have placed on a host. Orders are deterministic: the same
/// order is returned again until the host reports its id, and placing it twice is a no-op.
public struct RolloutOrder: Codable, Hashable, Sendable {
    public var host: String
    public var operationID: String
    /// `convert`, `maintenance` or `revert`.
    public var kind: String
    public var stagingBundle: String?
    public var targetBundle: String?
    public var maintenanceBundle: String?
    public var healthTimeoutSeconds: Double?
    public var healthPollSeconds: Double?
    public var bootAttempts: Int?

    public init(
        host: String, operationID: String, kind: String, stagingBundle: String? = nil, targetBundle: String? = nil,
        maintenanceBundle: String? = nil, healthTimeoutSeconds: Double? = nil, healthPollSeconds: Double? = nil,
        bootAttempts: Int? = nil
    ) {
        self.host = host
        self.operationID = operationID
        self.kind = kind
        self.stagingBundle = stagingBundle
        self.targetBundle = targetBundle
        self.maintenanceBundle = maintenanceBundle
        self.healthTimeoutSeconds = healthTimeoutSeconds
        self.healthPollSeconds = healthPollSeconds
        self.bootAttempts = bootAttempts
    }
}

/// A wave of a dry run.
public struct PlannedWave: Codable, Hashable, Sendable {
    public var index: Int
    public var hosts: [String]
    public init(index: Int, hosts: [String]) {
        self.index = index
        self.hosts = hosts
    }
}

/// The dry run of a spec: the waves if every host succeeded at once and no soak or window held
/// it back; the hosts that would wait for their data; notes on what the plan leaves out.
public struct RolloutPlan: Codable, Hashable, Sendable {
    public var waves: [PlannedWave]
    public var waitingForData: [String]
    public var notes: [String]
    public init(waves: [PlannedWave], waitingForData: [String], notes: [String]) {
        self.waves = waves
        self.waitingForData = waitingForData
        self.notes = notes
    }
}
