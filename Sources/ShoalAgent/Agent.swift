import Foundation

/// What one run of the agent ended with.
public enum AgentRunResult: Sendable, Equatable {
    /// There is no operation on this host.
    case idle
    /// The current operation has its outcome (reached now, or earlier).
    case finished(OperationRecord)
    /// The agent asked the host to reboot; it continues when the next system starts it.
    case rebooting(OperationRecord)
}

/// The host agent: runs one operation at a time, step by step, across reboots and power losses.
///
/// Call ``resume()`` at every start of the agent (in every system: base, staging, target,
/// maintenance). It loads the current record, looks at which system booted, and carries on:
///
/// - each step is persisted `started` before its action and `done` after it;
/// - a step found `started` is run again (steps are idempotent), except a reboot, which is
///   resolved by looking at the system that booted — a host is never rebooted twice for one step;
/// - a trial boot (a one-shot into staging, target or maintenance) that comes back in the system it
///   left — the trial did not take, or a power loss interrupted it — is re-armed up to
///   ``OperationParameters/bootAttempts`` times, then the operation fails;
/// - a failure appends the recovery steps of ``OperationPlan`` so the host ends bootable.
///
/// ```swift
/// let agent = Agent(driver: LinuxDriver(), store: try FileOperationStore(directory: stateDir))
/// _ = try await agent.accept(request)          // refused if another operation holds the host
/// switch try await agent.resume() {
/// case .rebooting: break                      // the next boot continues
/// case .finished(let record): report(record.outcome!)
/// case .idle: break
/// }
/// ```
public actor Agent {
    let driver: any HostDriver
    let store: any OperationStore
    let clock: any AgentClock

    public init(driver: any HostDriver, store: any OperationStore, clock: any AgentClock = SystemAgentClock()) {
        self.driver = driver
        self.store = store
        self.clock = clock
    }

    /// The current (or last) operation record.
    public func status() throws(AgentError) -> OperationRecord? {
        try store.load()
    }

    /// Accepts an operation: checks the request, plans it for the system the host runs now and
    /// takes the host lock. Runs nothing (call ``resume()``).
    ///
    /// Sending the request of an operation again (running or finished) returns its record
    /// unchanged and runs nothing; the same id with other parameters is refused.
    ///
    /// - Returns: the operation's record.
    /// - Throws: ``AgentError/operationInProgress(id:kind:step:)`` when another operation holds the
    ///   host; ``AgentError/invalidRequest(_:)``; ``AgentError/wrongStartingSystem(kind:booted:)``;
    ///   ``AgentError/corruptState(path:detail:)`` when the state cannot be read.
    public func accept(_ request: OperationRequest) async throws(AgentError) -> OperationRecord {
        if let existing = try store.record(id: request.id) {
            guard existing.request == request else {
                throw .invalidRequest("operation \(request.id) already exists with other parameters; use a new id")
            }
            return existing
        }
        if let current = try store.load(), !current.isFinished {
            throw .operationInProgress(id: current.id, kind: current.kind, step: current.currentStepName)
        }
        try request.validate()
        let booted = try await call(.preflight) { try await $0.bootedEntry() }
        let plan = try OperationPlan.steps(for: request, startingIn: booted)
        return try store.begin(OperationRecord(request: request, startedIn: booted, plan: plan, at: clock.now()))
    }

    /// Runs the current operation from where it stands until it finishes or reboots the host.
    ///
    /// - Throws: ``AgentError/interrupted(_:)`` when cancelled mid-step (the step re-runs on the
    ///   next start); store errors. Step failures are not thrown: they are recorded in the
    ///   operation, whose outcome says where the host was left.
    public func resume() async throws(AgentError) -> AgentRunResult {
        guard var record = try store.load() else { return .idle }
        if record.isFinished { return .finished(record) }
        let booted = try await call(record.steps[record.currentIndex ?? 0].step.id) { try await $0.bootedEntry() }

        while true {
            guard let i = record.currentIndex else {
                record.conclude(in: record.system(bootedFrom: booted), at: clock.now())
                try store.save(record)
                return .finished(record)
            }
            let state = record.steps[i]
            let step = state.step

            // A reboot that was issued: resolve it by where the host came back.
            if step.isReboot && state.status == .started {
                let into = step.bootsInto!
                if booted == into.bootEntry {
                    record.complete(i, "booted into \(into) (\(booted) entry)", at: clock.now())
                } else if booted == step.runsIn.bootEntry && step.isTrialBoot && !step.isRecovery {
                    trialFellBack(&record, at: i, trialReboot: i, booted: booted)
                } else if booted == step.runsIn.bootEntry {
                    failOperation(&record, at: i, .rebootDidNotTake(step: step.id, stillIn: booted), booted: booted)
                } else {
                    failOperation(&record, at: i, .unexpectedSystem(step: step.id, expected: into.bootEntry, found: booted), booted: booted)
                }
                try store.save(record)
                continue
            }

            // Not in the system the step needs: explain it, or fail.
            if booted != step.runsIn.bootEntry {
                if reachGoal(&record, from: i, booted: booted) {
                    // A power loss did the reboot these steps were preparing.
                } else if !step.isRecovery, let r = trialReboot(for: i, in: record), record.steps[r].step.runsIn.bootEntry == booted {
                    trialFellBack(&record, at: i, trialReboot: r, booted: booted)
                } else {
                    failOperation(&record, at: i, .unexpectedSystem(step: step.id, expected: step.runsIn.bootEntry, found: booted), booted: booted)
                }
                try store.save(record)
                continue
            }

            record.start(i, at: clock.now())
            try store.save(record)

            if step.isReboot {
                do {
                    try await driver.reboot()
                } catch is CancellationError {
                    throw .interrupted("stopped before rebooting at \(step.id); the next start resolves it")
                } catch {
                    failOperation(&record, at: i, .actionFailed(step: step.id, detail: "\(error)"), booted: booted)
                    try store.save(record)
                    continue
                }
                return .rebooting(record)
            }

            let deadline = clock.now().addingTimeInterval(step.timeoutSeconds)
            do {
                let message = try await perform(step, attempt: state.attempt, record: &record, deadline: deadline)
                if clock.now() > deadline { throw AgentError.stepTimedOut(step: step.id, seconds: step.timeoutSeconds) }
                record.complete(i, message, at: clock.now())
            } catch let error as AgentError {
                if case .interrupted = error { throw error }
                failOperation(&record, at: i, error, booted: booted)
            } catch is CancellationError {
                throw .interrupted("stopped during \(step.id); it re-runs on the next start")
            } catch {
                failOperation(&record, at: i, .actionFailed(step: step.id, detail: "\(error)"), booted: booted)
            }
            try store.save(record)
        }
    }

    /// Accepts `request` and runs it until it finishes or reboots the host.
    public func run(_ request: OperationRequest) async throws(AgentError) -> AgentRunResult {
        _ = try await accept(request)
        return try await resume()
    }

    // MARK: Resolution at startup

    /// When the host already runs the system that step `i` and the ones after it were leading to
    /// (a power loss consumed the one-shot they armed, or booted the default they restored), marks
    /// them done. Returns false when that does not explain where the host is.
    func reachGoal(_ record: inout OperationRecord, from i: Int, booted: BootEntry) -> Bool {
        var j = i
        while j < record.steps.count, record.steps[j].step.runsIn.bootEntry != booted,
            record.steps[j].step.goal?.bootEntry == booted
        {
            j += 1
        }
        guard j > i, j == record.steps.count || record.steps[j].step.runsIn.bootEntry == booted else { return false }
        let now = clock.now()
        for k in i..<j {
            record.complete(k, "already reached: the host booted from the \(booted) entry (after a power loss)", reached: true, at: now)
        }
        return true
    }

    /// The trial reboot that brought the host into the system step `i` needs.
    func trialReboot(for i: Int, in record: OperationRecord) -> Int? {
        let entry = record.steps[i].step.runsIn.bootEntry
        guard let r = record.steps[..<i].lastIndex(where: { $0.step.isReboot }) else { return nil }
        let s = record.steps[r]
        guard s.step.isTrialBoot, !s.step.isRecovery, s.status == .done, s.step.bootsInto?.bootEntry == entry else { return nil }
        return r
    }

    /// The host came back in the system a trial boot left (the one-shot did not take, or a power
    /// loss ended the trial). Re-arms the trial if attempts remain, else fails the operation.
    func trialFellBack(_ record: inout OperationRecord, at i: Int, trialReboot r: Int, booted: BootEntry) {
        let reboot = record.steps[r].step
        let attempts = record.steps.filter { $0.step.id == reboot.id && !$0.step.isRecovery }.count
        let into = reboot.bootsInto!
        let error: AgentError
        switch into {
        case .staging: error = .stagingBootFailed(attempts: attempts)
        case .maintenance: error = .maintenanceFailed("the host left the maintenance image before it finished (\(attempts) attempt(s))")
        case .base, .target: error = .targetNotHealthy(attempts: attempts, detail: "the host came back in the \(reboot.runsIn) system")
        }
        guard attempts < record.parameters.bootAttempts, r >= 1, record.steps[r - 1].step.goal == into else {
            failOperation(&record, at: i, error, booted: booted)
            return
        }
        let now = clock.now()
        let message = "the host came back in the \(reboot.runsIn) system; re-arming the boot into \(into) (attempt \(attempts + 1) of \(record.parameters.bootAttempts))"
        var copies = [record.steps[r - 1].step, reboot]
        if i == r {
            record.note(i, .failed, code: error.code, message, at: now)
        } else {
            copies += record.steps[(r + 1)..<i].map(\.step).filter(\.isBootCheck)
            copies.append(record.steps[i].step)
            record.note(i, .skipped, code: StepLogCode.requeued, "interrupted; " + message, at: now)
        }
        record.steps.insert(contentsOf: copies.map { StepState(step: $0, attempt: attempts + 1) }, at: i + 1)
    }

    /// Fails step `i` (and with it the operation) and, unless it was a recovery step, appends the
    /// recovery steps for the system the host runs.
    func failOperation(_ record: inout OperationRecord, at i: Int, _ error: AgentError, booted: BootEntry) {
        let wasRecovery = record.steps[i].step.isRecovery
        record.fail(i, error, at: clock.now())
        guard !wasRecovery else { return }
        let recovery = OperationPlan.recovery(for: record, in: record.system(bootedFrom: booted))
        record.steps += recovery.map { StepState(step: $0) }
    }

    // MARK: Actions

    /// Runs the action of a non-reboot step. Returns the log message.
    func perform(_ step: PlannedStep, attempt: Int, record: inout OperationRecord, deadline: Date) async throws -> String {
        let request = record.request
        switch step.id {
        case .preflight:
            let facts = try await driver.preflightFacts(bundles: Preflight.bundles(for: request))
            switch Preflight.decide(request: request, startingIn: record.startedIn, facts: facts) {
            case .refuse(let why): throw why
            case .proceed: record.growth = nil
            case .proceedAfterGrowing(let growth): record.growth = growth
            }
            if record.startedIn == .staging { record.profile = facts.storedProfile }
            if let g = record.growth { return "bundles verified; the \(g.entry) partition will grow to \(g.toBytes) bytes" }
            return "bundles verified; disks as expected; the image fits"
        case .captureProfile:
            let profile = try await driver.captureProfile()
            record.profile = profile
            return "profile stored at \(profile.location) (sha256 \(profile.checksum.prefix(12)))"
        case .renderProfileIntoStaging, .renderProfileIntoTarget:
            let profile = try requireProfile(record, step)
            let system = step.id == .renderProfileIntoStaging ? request.parameters.stagingBundle : request.imageForOriginalDisk
            try await driver.renderProfile(profile, into: step.entry!, system: system)
            return "profile rendered into the \(step.entry!) partition"
        case .armStagingBoot, .armTargetBoot, .armMaintenanceBoot:
            try await driver.setOneShotBoot(step.entry!)
            return "one-shot boot armed: \(step.entry!)"
        case .verifyStaging:
            let booted = try await driver.bootedEntry()
            guard booted == .staging else {
                throw AgentError.unexpectedSystem(step: step.id, expected: .staging, found: booted)
            }
            let profile = try requireProfile(record, step)
            switch try await driver.checkProfile(profile) {
            case .intact: return "running from the staging partition; stored profile intact"
            case .missing: throw AgentError.profileMissing("\(profile.location) is gone")
            case .corrupt(let why): throw AgentError.profileCorrupt(why)
            }
        case .makeStagingDefault:
            try await driver.setDefaultBoot(.staging)
            return "staging is the default boot; the original disk can be wiped safely"
        case .growPartition:
            guard let g = record.growth, g.entry == step.entry else { return "no growth needed" }
            try await driver.growPartition(g.entry, toBytes: g.toBytes)
            return "\(g.entry) partition grown to \(g.toBytes) bytes"
        case .wipeOriginalDisk:
            try await driver.wipeOriginalDisk()
            return "original disk wiped"
        case .writeImage:
            let bundle = request.imageForOriginalDisk!
            try await driver.writeImage(bundle: bundle, to: .original, deadline: deadline)
            return "image of bundle \(bundle.prefix(12)) written to the original disk"
        case .healthCheck:
            while true {
                let report = try await driver.checkHealth()
                if report.healthy { return "target healthy" + (report.detail.isEmpty ? "" : ": \(report.detail)") }
                let remaining = deadline.timeIntervalSince(clock.now())
                if remaining <= 0 {
                    throw AgentError.targetNotHealthy(
                        attempts: attempt, detail: "not healthy within \(Int(step.timeoutSeconds)) s: \(report.detail)")
                }
                try await clock.sleep(seconds: min(request.parameters.healthPollSeconds, remaining))
            }
        case .commitTarget:
            try await driver.setDefaultBoot(.original)
            return "target is the default boot"
        case .stageMaintenanceImage:
            if let g = record.growth, g.entry == .maintenance { try await driver.growPartition(g.entry, toBytes: g.toBytes) }
            try await driver.writeImage(bundle: request.parameters.maintenanceBundle!, to: .maintenance, deadline: deadline)
            return "maintenance image written"
        case .monitorMaintenance:
            let monitoring = request.parameters.monitoring
            while true {
                switch try await driver.maintenanceStatus(monitoring: monitoring) {
                case .succeeded: return "maintenance finished"
                case .failed(let why): throw AgentError.maintenanceFailed(why)
                case .running: break
                }
                let remaining = deadline.timeIntervalSince(clock.now())
                if remaining <= 0 {
                    throw AgentError.maintenanceFailed("no completion within \(Int(step.timeoutSeconds)) s")
                }
                try await clock.sleep(seconds: min(monitoring.intervalSeconds, remaining))
            }
        case .restoreOriginalBoot:
            try await driver.setDefaultBoot(.original)
            try await driver.clearOneShotBoot()
            return "original disk is the default boot again"
        case .verifyOriginal:
            let booted = try await driver.bootedEntry()
            guard booted == .original else { throw AgentError.unexpectedSystem(step: step.id, expected: .original, found: booted) }
            return "running from the original disk"
        case .captureBundle:
            let bundle = try await driver.captureBundle(of: .original, name: request.parameters.captureName!, deadline: deadline)
            record.capturedBundle = bundle
            return "bundle \(bundle) made from the original disk"
        case .publishBundle:
            guard let bundle = record.capturedBundle else { throw AgentError.actionFailed(step: step.id, detail: "no captured bundle") }
            try await driver.publishBundle(bundle)
            return "bundle \(bundle) published"
        case .disarmBoot:
            try await driver.clearOneShotBoot()
            return "no one-shot boot armed"
        case .setDefaultBoot:
            try await driver.setDefaultBoot(step.entry!)
            return "default boot: \(step.entry!)"
        case .rebootIntoStaging, .rebootIntoTarget, .rebootIntoMaintenance, .rebootIntoOriginal, .returnReboot:
            preconditionFailure("reboot steps are run by resume()")
        }
    }

    func requireProfile(_ record: OperationRecord, _ step: PlannedStep) throws(AgentError) -> ProfileReference {
        guard let profile = record.profile else { throw .profileMissing("no profile was captured before \(step.id)") }
        return profile
    }

    /// Calls the driver outside a step (nothing is persisted around it).
    func call<T: Sendable>(_ step: StepID, _ body: (any HostDriver) async throws -> T) async throws(AgentError) -> T {
        do { return try await body(driver) } catch let error as AgentError { throw error } catch is CancellationError {
            throw .interrupted("stopped while asking the host where it booted from")
        } catch { throw .actionFailed(step: step, detail: "\(error)") }
    }
}
