/// What an operation does to a host.
public enum OperationKind: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// Replace the OS on the original disk with the target OS, through the staging OS, carrying the
    /// host profile (network identity and keys) over.
    case convert
    /// Write the preserved target bundle onto the original disk again, through the staging OS.
    case reinstall
    /// Reclaim the host with the base OS: write the staging (base-OS copy) bundle onto the
    /// original disk, through the staging OS.
    case revert
    /// Boot a maintenance image once, monitor it, then swap the original back and reboot.
    case maintenance
    /// From the staging OS, make a bundle of the original disk's OS and publish it.
    case capture

    public var description: String { rawValue }
}

/// How the agent watches a maintenance image (the two modes of the operations-server document).
public enum MaintenanceMonitoring: Codable, Sendable, Equatable {
    /// Poll the image's job for its state every `intervalSeconds`.
    case active(intervalSeconds: Double)
    /// Wait for the image's completion signal (checked every `intervalSeconds`).
    case passive(intervalSeconds: Double)

    /// How long to wait between two looks.
    public var intervalSeconds: Double {
        switch self {
        case .active(let s), .passive(let s): return s
        }
    }
}

/// The caller's parameters of an operation. Bundles are referenced by id (the hex SHA-256 of the
/// signed manifest); the agent never opens them, it hands the references to the ``HostDriver``.
public struct OperationParameters: Codable, Sendable, Equatable {
    /// The base-OS copy on the staging partition. Required by every kind that goes through the
    /// staging OS (all but `maintenance`): it is the safety net, and the image `revert` writes.
    public var stagingBundle: String?
    /// The OS to write onto the original disk (`convert`, `reinstall`).
    public var targetBundle: String?
    /// The maintenance image (`maintenance`).
    public var maintenanceBundle: String?
    /// How to watch the maintenance image (`maintenance`).
    public var monitoring: MaintenanceMonitoring
    /// The name of the bundle to make (`capture`).
    public var captureName: String?
    /// How long a freshly booted target has to report healthy, in seconds.
    public var healthTimeoutSeconds: Double
    /// Time between two health checks, in seconds.
    public var healthPollSeconds: Double
    /// How long the maintenance image has to finish, in seconds.
    public var maintenanceTimeoutSeconds: Double
    /// How many times a trial boot (one-shot boot into staging, target or maintenance) is armed
    /// before the operation gives up. A power loss during a trial costs one attempt.
    public var bootAttempts: Int

    public init(
        stagingBundle: String? = nil,
        targetBundle: String? = nil,
        maintenanceBundle: String? = nil,
        monitoring: MaintenanceMonitoring = .passive(intervalSeconds: 10),
        captureName: String? = nil,
        healthTimeoutSeconds: Double = 600,
        healthPollSeconds: Double = 10,
        maintenanceTimeoutSeconds: Double = 3600,
        bootAttempts: Int = 3
    ) {
        self.stagingBundle = stagingBundle
        self.targetBundle = targetBundle
        self.maintenanceBundle = maintenanceBundle
        self.monitoring = monitoring
        self.captureName = captureName
        self.healthTimeoutSeconds = healthTimeoutSeconds
        self.healthPollSeconds = healthPollSeconds
        self.maintenanceTimeoutSeconds = maintenanceTimeoutSeconds
        self.bootAttempts = bootAttempts
    }
}

/// An order to run one operation on this host.
///
/// The id is chosen by the caller (the coordinator, or `shoal host` for a lone host) so both sides
/// can match the operation after restarts; sending the same request again is harmless.
///
/// ```swift
/// let request = OperationRequest(
///     id: "rollout-7/host-a1", kind: .convert,
///     parameters: OperationParameters(stagingBundle: baseCopy, targetBundle: debian13))
/// ```
public struct OperationRequest: Codable, Sendable, Equatable {
    public var id: String
    public var kind: OperationKind
    public var parameters: OperationParameters

    public init(id: String, kind: OperationKind, parameters: OperationParameters) {
        self.id = id
        self.kind = kind
        self.parameters = parameters
    }

    /// The bundle the operation writes onto the original disk, if it writes one.
    public var imageForOriginalDisk: String? {
        switch kind {
        case .convert, .reinstall: return parameters.targetBundle
        case .revert: return parameters.stagingBundle
        case .maintenance, .capture: return nil
        }
    }

    /// Checks that the parameters the kind needs are there and sane.
    ///
    /// - Throws: ``AgentError/invalidRequest(_:)`` naming what is missing.
    public func validate() throws(AgentError) {
        if id.isEmpty || id.count > 200 || id.contains(where: \.isNewline) {
            throw .invalidRequest("the operation id must be 1…200 characters on one line")
        }
        func need(_ value: String?, _ name: String) throws(AgentError) {
            guard let value, !value.isEmpty else { throw .invalidRequest("\(kind) needs \(name)") }
        }
        if kind != .maintenance {
            try need(parameters.stagingBundle, "a staging bundle (the base-OS copy on the staging partition)")
        }
        switch kind {
        case .convert, .reinstall: try need(parameters.targetBundle, "a target bundle")
        case .revert: break
        case .maintenance: try need(parameters.maintenanceBundle, "a maintenance bundle")
        case .capture: try need(parameters.captureName, "a name for the captured bundle")
        }
        guard parameters.bootAttempts >= 1 else { throw .invalidRequest("bootAttempts must be at least 1") }
        guard parameters.healthTimeoutSeconds > 0, parameters.maintenanceTimeoutSeconds > 0,
              parameters.healthPollSeconds > 0, parameters.monitoring.intervalSeconds > 0
        else { throw .invalidRequest("timeouts and poll intervals must be positive") }
    }
}
