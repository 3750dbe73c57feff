import Foundation

/// Status codes written into the step log besides the ``AgentError/code`` of a failure.
public enum StepLogCode {
    /// The step began (persisted before its action).
    public static let started = 100
    /// The step finished.
    public static let done = 200
    /// The step's purpose was found already reached (the host is in the system it was leading to).
    public static let reached = 201
    /// The step was not run.
    public static let skipped = 204
    /// The step was interrupted and is queued to run again (after a trial boot is re-armed).
    public static let requeued = 300
}

/// One step of an operation and where it stands.
public struct StepState: Codable, Sendable, Equatable {
    public var step: PlannedStep
    /// 1 for the first trial of a boot; re-armed trial steps count up.
    public var attempt: Int
    public var status: StepStatus
    public var startedAt: Date?
    public var finishedAt: Date?
    /// The last message about it (the failure, what was found).
    public var message: String?

    public init(step: PlannedStep, attempt: Int = 1) {
        self.step = step
        self.attempt = attempt
        self.status = .pending
    }
}

/// One line of the step log: a step transition with its status code, time and message.
public struct StepLogEntry: Codable, Sendable, Equatable {
    /// The step's position in ``OperationRecord/steps``.
    public var index: Int
    public var step: StepID
    public var attempt: Int
    public var status: StepStatus
    /// ``StepLogCode`` for ordinary transitions, ``AgentError/code`` for failures.
    public var code: Int
    public var at: Date
    public var message: String
}

/// The first failure of an operation.
public struct OperationFailure: Codable, Sendable, Equatable {
    public var index: Int
    public var step: StepID
    public var code: Int
    public var message: String
}

/// How an operation ended.
public struct OperationOutcome: Codable, Sendable, Equatable {
    public enum Result: String, Codable, Sendable {
        case succeeded
        case failed
    }

    public var result: Result
    /// 0 on success, else the ``AgentError/code`` of the first failure.
    public var code: Int
    public var message: String
    /// The system the host was running when the operation ended (it is bootable).
    public var hostLeftIn: HostSystem
    public var finishedAt: Date
}

/// The persisted state of one operation: the plan, each step's status, the step log, the outcome.
///
/// Stored as JSON by an ``OperationStore``. The plan is part of the record, so any agent build
/// that reads it follows the same list. While ``outcome`` is nil the operation holds the host.
public struct OperationRecord: Codable, Sendable, Equatable {
    /// The version of this format; a newer one is refused rather than misread.
    public static let currentFormat = 1

    public var format: Int
    /// The caller's id (the coordinator's, or one given to `shoal host`).
    public var id: String
    public var kind: OperationKind
    public var parameters: OperationParameters
    /// The boot entry the host ran from when the operation was accepted.
    public var startedIn: BootEntry
    public var createdAt: Date
    public var updatedAt: Date
    public var steps: [StepState]
    public var log: [StepLogEntry]
    /// Set by preflight when the image needs a larger partition.
    public var growth: PartitionGrowth?
    /// The captured (or, starting in staging, the stored) profile.
    public var profile: ProfileReference?
    /// The bundle made by a capture.
    public var capturedBundle: String?
    /// The first failure; once set, only recovery steps run.
    public var failure: OperationFailure?
    /// Set when the operation has ended; the host lock is released.
    public var outcome: OperationOutcome?

    public init(request: OperationRequest, startedIn: BootEntry, plan: [PlannedStep], at now: Date) {
        self.format = Self.currentFormat
        self.id = request.id
        self.kind = request.kind
        self.parameters = request.parameters
        self.startedIn = startedIn
        self.createdAt = now
        self.updatedAt = now
        self.steps = plan.map { StepState(step: $0) }
        self.log = []
    }

    /// The request this record was made from.
    public var request: OperationRequest { OperationRequest(id: id, kind: kind, parameters: parameters) }

    /// True once the operation has an outcome.
    public var isFinished: Bool { outcome != nil }

    /// The index of the step to run next: the first one not finished.
    public var currentIndex: Int? { steps.firstIndex { !$0.status.isFinished } }

    /// A short name of where the operation stands, for messages.
    public var currentStepName: String {
        guard let i = currentIndex else { return isFinished ? "finished" : "concluding" }
        return "\(steps[i].step.id)#\(steps[i].attempt)"
    }

    /// What decoding cannot check: the format and the consistency of the step list. Nil when
    /// the record is sound.
    public var inconsistency: String? {
        guard format == Self.currentFormat else { return "format \(format) is not the supported \(Self.currentFormat)" }
        guard !steps.isEmpty else { return "the operation has no steps" }
        guard steps.filter({ $0.status == .started }).count <= 1 else { return "more than one step is started" }
        if let bad = log.first(where: { !steps.indices.contains($0.index) }) { return "the log names step \(bad.index)" }
        return nil
    }

    // MARK: Transitions (each one logged)

    mutating func note(_ index: Int, _ status: StepStatus, code: Int, _ message: String, at now: Date) {
        steps[index].status = status
        steps[index].message = message
        if status == .started { steps[index].startedAt = now }
        if status.isFinished { steps[index].finishedAt = now }
        log.append(
            StepLogEntry(
                index: index, step: steps[index].step.id, attempt: steps[index].attempt, status: status,
                code: code, at: now, message: message))
        updatedAt = now
    }

    mutating func start(_ index: Int, at now: Date) {
        let s = steps[index].step
        let where_ = s.bootsInto.map { "\(s.runsIn) → \($0)" } ?? "in \(s.runsIn)"
        note(index, .started, code: StepLogCode.started, "\(s.id) \(where_)", at: now)
    }

    mutating func complete(_ index: Int, _ message: String, reached: Bool = false, at now: Date) {
        note(index, .done, code: reached ? StepLogCode.reached : StepLogCode.done, message, at: now)
    }

    /// Fails the step, records the operation's first failure and skips the steps still pending.
    mutating func fail(_ index: Int, _ error: AgentError, at now: Date) {
        note(index, .failed, code: error.code, error.description, at: now)
        if failure == nil {
            failure = OperationFailure(index: index, step: steps[index].step.id, code: error.code, message: error.description)
        }
        for i in steps.indices where steps[i].status == .pending {
            note(i, .skipped, code: StepLogCode.skipped, "not run: the operation failed at \(steps[index].step.id)", at: now)
        }
    }

    mutating func requeue(_ index: Int, _ message: String, at now: Date) {
        note(index, .pending, code: StepLogCode.requeued, message, at: now)
    }

    mutating func conclude(in system: HostSystem, at now: Date) {
        if let failure {
            outcome = OperationOutcome(
                result: .failed, code: failure.code, message: failure.message, hostLeftIn: system, finishedAt: now)
        } else {
            outcome = OperationOutcome(
                result: .succeeded, code: 0, message: "\(kind) finished; host runs the \(system) system",
                hostLeftIn: system, finishedAt: now)
        }
        updatedAt = now
    }

    /// The system the host runs, judged from the boot entry and the reboots done so far (the
    /// original entry holds the base OS until a reboot into the target has been seen).
    public func system(bootedFrom entry: BootEntry) -> HostSystem {
        if let last = steps.last(where: { $0.step.isReboot && $0.status == .done }),
            let into = last.step.bootsInto, into.bootEntry == entry
        {
            return into
        }
        if entry == .original, let last = steps.last(where: { $0.step.isReboot && $0.status == .done }),
            last.step.runsIn == .target
        {
            return .target
        }
        switch entry {
        case .original: return .base
        case .staging: return .staging
        case .maintenance: return .maintenance
        }
    }
}
