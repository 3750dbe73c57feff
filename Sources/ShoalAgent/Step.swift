/// The steps operations are made of. The step tables in `docs/AGENT.md` list them per kind.
public enum StepID: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case preflight
    case captureProfile
    case renderProfileIntoStaging
    case armStagingBoot
    case rebootIntoStaging
    case verifyStaging
    case makeStagingDefault
    case growPartition
    case wipeOriginalDisk
    case writeImage
    case renderProfileIntoTarget
    case armTargetBoot
    case rebootIntoTarget
    case healthCheck
    case commitTarget
    case stageMaintenanceImage
    case armMaintenanceBoot
    case rebootIntoMaintenance
    case monitorMaintenance
    case restoreOriginalBoot
    case rebootIntoOriginal
    case verifyOriginal
    case captureBundle
    case publishBundle
    // Recovery steps, appended after a failure to leave the host in a bootable system.
    case disarmBoot
    case setDefaultBoot
    case returnReboot

    public var description: String { rawValue }
}

/// One step of an operation's plan, as persisted in the record.
///
/// The plan is stored with the operation (not recomputed), so an agent in the staging OS and one
/// in the target OS — possibly different builds — follow the same list.
public struct PlannedStep: Codable, Sendable, Equatable {
    /// What the step does.
    public var id: StepID
    /// The system the agent must be running in to execute it.
    public var runsIn: HostSystem
    /// For reboot steps: the system the host must come back in.
    public var bootsInto: HostSystem?
    /// If the host is found running this system when the step is next, the step's purpose is
    /// already reached (a power loss did the reboot the step was preparing), so it is marked done.
    public var goal: HostSystem?
    /// The boot entry a boot, render, write or grow step acts on.
    public var entry: BootEntry?
    /// How long the step may take. For reboot steps: how long the host may stay silent before the
    /// coordinator considers it lost (the agent cannot time itself out while the host is down).
    public var timeoutSeconds: Double
    /// A reboot armed as a one-shot: coming back in ``runsIn`` means the trial did not take.
    public var isTrialBoot: Bool
    /// A check of the boot itself (verify staging, health): re-run after every trial boot.
    public var isBootCheck: Bool
    /// Added after a failure, to leave the host in a bootable system.
    public var isRecovery: Bool

    public init(
        _ id: StepID, in runsIn: HostSystem, bootsInto: HostSystem? = nil, goal: HostSystem? = nil,
        entry: BootEntry? = nil, timeout: Double, trialBoot: Bool = false, bootCheck: Bool = false,
        recovery: Bool = false
    ) {
        self.id = id
        self.runsIn = runsIn
        self.bootsInto = bootsInto
        self.goal = goal ?? bootsInto
        self.entry = entry
        self.timeoutSeconds = timeout
        self.isTrialBoot = trialBoot
        self.isBootCheck = bootCheck
        self.isRecovery = recovery
    }

    /// True for steps that reboot the host.
    public var isReboot: Bool { bootsInto != nil }
}

/// Where a step stands.
public enum StepStatus: String, Codable, Sendable, CustomStringConvertible {
    /// Not begun.
    case pending
    /// Begun (persisted before the action); found at startup, it is re-run, or for a reboot,
    /// resolved by looking at which system booted.
    case started
    /// Finished.
    case done
    /// Failed; the record's ``OperationRecord/failure`` says why.
    case failed
    /// Not run: the operation failed before it, or a trial boot was re-armed around it.
    case skipped

    public var description: String { rawValue }
    /// Done, failed or skipped.
    public var isFinished: Bool { self == .done || self == .failed || self == .skipped }
}
