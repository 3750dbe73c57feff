/// The step lists of every kind, and the recovery steps added after a failure.
///
/// `convert`, `reinstall` and `revert` share one plan — "replace the original disk through the
/// staging OS" — and differ only in the image written (the target bundle, or the staging bundle
/// for a revert) and in the bundles preflight checks. Starting in the staging OS (a host left there
/// by an earlier failure) drops the steps that get it there.
public enum OperationPlan {
    /// Default step timeouts, in seconds.
    public enum Timeout {
        public static let preflight = 300.0
        public static let captureProfile = 300.0
        public static let render = 300.0
        public static let bootEntry = 60.0
        public static let reboot = 900.0
        public static let verify = 120.0
        public static let grow = 300.0
        public static let wipe = 900.0
        public static let writeImage = 7200.0
        public static let captureBundle = 7200.0
        public static let publish = 3600.0
    }

    /// The plan of `request` for a host running from `start`.
    ///
    /// - Throws: ``AgentError/wrongStartingSystem(kind:booted:)`` when the kind cannot start there
    ///   (`convert`, `maintenance` and `capture` start from the original disk; `reinstall` and
    ///   `revert` from the original disk or the staging OS).
    public static func steps(for request: OperationRequest, startingIn start: BootEntry) throws(AgentError) -> [PlannedStep] {
        let p = request.parameters
        switch (request.kind, start) {
        case (.convert, .original), (.reinstall, .original), (.revert, .original):
            return intoStaging(capture: true) + replaceOriginal(health: p.healthTimeoutSeconds)
        case (.reinstall, .staging), (.revert, .staging):
            return [
                PlannedStep(.preflight, in: .staging, timeout: Timeout.preflight),
                PlannedStep(.verifyStaging, in: .staging, timeout: Timeout.verify, bootCheck: true),
            ] + replaceOriginal(health: p.healthTimeoutSeconds)
        case (.maintenance, .original):
            return [
                PlannedStep(.preflight, in: .base, timeout: Timeout.preflight),
                PlannedStep(.stageMaintenanceImage, in: .base, entry: .maintenance, timeout: Timeout.writeImage),
                PlannedStep(.armMaintenanceBoot, in: .base, goal: .maintenance, entry: .maintenance, timeout: Timeout.bootEntry),
                PlannedStep(.rebootIntoMaintenance, in: .base, bootsInto: .maintenance, timeout: Timeout.reboot, trialBoot: true),
                PlannedStep(.monitorMaintenance, in: .maintenance, timeout: p.maintenanceTimeoutSeconds),
            ] + backToOriginal(from: .maintenance)
        case (.capture, .original):
            return intoStaging(capture: true) + [
                PlannedStep(.captureBundle, in: .staging, entry: .original, timeout: Timeout.captureBundle),
                PlannedStep(.publishBundle, in: .staging, timeout: Timeout.publish),
            ] + backToOriginal(from: .staging)
        default:
            throw .wrongStartingSystem(kind: request.kind, booted: start)
        }
    }

    /// From the original disk into the staging OS, by a one-shot boot (the default stays on the
    /// original disk, so a staging OS that does not come up falls back to it).
    static func intoStaging(capture: Bool) -> [PlannedStep] {
        [
            PlannedStep(.preflight, in: .base, timeout: Timeout.preflight),
            PlannedStep(.captureProfile, in: .base, timeout: Timeout.captureProfile),
            PlannedStep(.renderProfileIntoStaging, in: .base, entry: .staging, timeout: Timeout.render),
            PlannedStep(.armStagingBoot, in: .base, goal: .staging, entry: .staging, timeout: Timeout.bootEntry),
            PlannedStep(.rebootIntoStaging, in: .base, bootsInto: .staging, timeout: Timeout.reboot, trialBoot: true),
            PlannedStep(.verifyStaging, in: .staging, timeout: Timeout.verify, bootCheck: true),
        ]
    }

    /// In the staging OS: make it the default, then replace the original disk and trial-boot it.
    static func replaceOriginal(health: Double) -> [PlannedStep] {
        [
            // Before the wipe: from here on a power loss or a failed target boots the staging OS,
            // never the half-written original disk.
            PlannedStep(.makeStagingDefault, in: .staging, entry: .staging, timeout: Timeout.bootEntry),
            PlannedStep(.growPartition, in: .staging, entry: .original, timeout: Timeout.grow),
            PlannedStep(.wipeOriginalDisk, in: .staging, entry: .original, timeout: Timeout.wipe),
            PlannedStep(.writeImage, in: .staging, entry: .original, timeout: Timeout.writeImage),
            PlannedStep(.renderProfileIntoTarget, in: .staging, entry: .original, timeout: Timeout.render),
            PlannedStep(.armTargetBoot, in: .staging, goal: .target, entry: .original, timeout: Timeout.bootEntry),
            PlannedStep(.rebootIntoTarget, in: .staging, bootsInto: .target, timeout: Timeout.reboot, trialBoot: true),
            PlannedStep(.healthCheck, in: .target, timeout: health, bootCheck: true),
            PlannedStep(.commitTarget, in: .target, entry: .original, timeout: Timeout.bootEntry),
        ]
    }

    /// Swap the original back (default on the original disk, no one-shot armed) and reboot into it.
    static func backToOriginal(from system: HostSystem) -> [PlannedStep] {
        [
            PlannedStep(.restoreOriginalBoot, in: system, goal: .base, entry: .original, timeout: Timeout.bootEntry),
            PlannedStep(.rebootIntoOriginal, in: system, bootsInto: .base, timeout: Timeout.reboot),
            PlannedStep(.verifyOriginal, in: .base, timeout: Timeout.verify, bootCheck: true),
        ]
    }

    /// The steps that leave the host bootable after a failure, given the system it runs now.
    /// None when preflight refused (nothing was changed).
    ///
    /// - In the base OS: clear a one-shot that may still be armed.
    /// - In the staging OS, before the original disk was touched, when the operation started there:
    ///   point the default back at the original disk and reboot into it (the host ends in OS A as
    ///   it was). Otherwise stay in the staging OS, the default, with no one-shot armed.
    /// - In the target (unhealthy, or could not be made the default): make the staging OS the
    ///   default and reboot into it; the agent there records the failure.
    /// - In the maintenance image: swap the original back and reboot into it.
    static func recovery(for record: OperationRecord, in system: HostSystem) -> [PlannedStep] {
        // A refusal by preflight changed nothing, so there is nothing to undo.
        let changedSomething = record.steps.contains { $0.step.id != .preflight && $0.status != .pending && $0.status != .skipped }
        guard changedSomething else { return [] }
        switch system {
        case .base:
            return [PlannedStep(.disarmBoot, in: .base, timeout: Timeout.bootEntry, recovery: true)]
        case .staging:
            let originalTouched = record.steps.contains {
                [.growPartition, .wipeOriginalDisk, .writeImage].contains($0.step.id) && $0.status != .pending && $0.status != .skipped
            }
            if record.startedIn == .original && !originalTouched {
                return [
                    PlannedStep(.setDefaultBoot, in: .staging, goal: .base, entry: .original, timeout: Timeout.bootEntry, recovery: true),
                    PlannedStep(.disarmBoot, in: .staging, goal: .base, timeout: Timeout.bootEntry, recovery: true),
                    PlannedStep(.returnReboot, in: .staging, bootsInto: .base, timeout: Timeout.reboot, recovery: true),
                ]
            }
            return [PlannedStep(.disarmBoot, in: .staging, timeout: Timeout.bootEntry, recovery: true)]
        case .target:
            return [
                PlannedStep(.setDefaultBoot, in: .target, goal: .staging, entry: .staging, timeout: Timeout.bootEntry, recovery: true),
                PlannedStep(.disarmBoot, in: .target, goal: .staging, timeout: Timeout.bootEntry, recovery: true),
                PlannedStep(.returnReboot, in: .target, bootsInto: .staging, timeout: Timeout.reboot, recovery: true),
            ]
        case .maintenance:
            return [
                PlannedStep(.restoreOriginalBoot, in: .maintenance, goal: .base, entry: .original, timeout: Timeout.bootEntry, recovery: true),
                PlannedStep(.returnReboot, in: .maintenance, bootsInto: .base, timeout: Timeout.reboot, recovery: true),
            ]
        }
    }
}
