import Foundation
import ShoalAgent
import ShoalHostDrivers
import ShoalHostLab
import ShoalWire

/// The host agent inside `shoal peer`: takes the operations the coordinator orders, runs them
/// with the host's driver off the event loop, and keeps the progress the announces report.
///
/// Idempotent by operation id: an order whose id this host already has (running, finished, or
/// in the store's history) starts nothing again; its record is what gets reported. Without a
/// driver every order is reported `refused` with the reason.
public final class PeerAgent: @unchecked Sendable {
    // Invariant: `snapshot` and `running` are only touched with `lock` held.
    public enum Driver: Sendable {
        /// The emulated lab host in `hostDirectory` (docs/AGENT.md, "The lab driver").
        case lab(hostDirectory: String, writeMethod: LabDriver.WriteMethod)
    }

    private let lock = NSLock()
    private let driver: Driver?
    private let stateDirectory: String?
    private let log: @Sendable (String) -> Void
    private var snapshot: OperationProgress?
    private var running: String?
    private var onFinish: (@Sendable () -> Void)?

    /// Called (on the agent's task) whenever an operation reaches its outcome, so the peer can
    /// report it at once instead of at its next announce.
    public func whenFinished(_ body: @escaping @Sendable () -> Void) { lock.withLock { onFinish = body } }

    /// - Parameter stateDirectory: the staging disk's data directory (the agent's state goes in
    ///   `DIR/agent`); `nil`: the driver's default (`HOSTDIR/state` for the lab).
    public init(driver: Driver?, stateDirectory: String?, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.driver = driver
        self.stateDirectory = stateDirectory
        self.log = log
    }

    /// What the next announce reports.
    public var progress: OperationProgress? { lock.withLock { snapshot } }

    /// Maps an order from the wire onto the agent's request (absent tunables: the agent's defaults).
    public static func request(from order: OperationOrder) throws(AgentError) -> OperationRequest {
        guard let kind = OperationKind(rawValue: order.kind) else {
            throw .invalidRequest("unknown operation kind \(order.kind) (want one of \(OperationKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let defaults = OperationParameters()
        let parameters = OperationParameters(
            stagingBundle: order.stagingBundle, targetBundle: order.targetBundle, maintenanceBundle: order.maintenanceBundle,
            captureName: order.captureName, healthTimeoutSeconds: order.healthTimeoutSeconds ?? defaults.healthTimeoutSeconds,
            healthPollSeconds: order.healthPollSeconds ?? defaults.healthPollSeconds, bootAttempts: order.bootAttempts ?? defaults.bootAttempts)
        let request = OperationRequest(id: order.id, kind: kind, parameters: parameters)
        try request.validate()
        return request
    }

    /// What a record looks like in an announce.
    public static func progress(of record: OperationRecord, logLines: Int = 6) -> OperationProgress {
        let status: OperationProgress.Status
        switch record.outcome?.result {
        case nil: status = .running
        case .succeeded?: status = .succeeded
        case .failed?: status = .failed
        }
        let formatter = ISO8601DateFormatter()
        let lines = record.log.suffix(logLines).map { e in
            "\(formatter.string(from: e.at)) \(e.code) \(e.step)\(e.attempt > 1 ? " #\(e.attempt)" : "") \(e.status.rawValue): \(e.message)"
        }
        return OperationProgress(
            id: record.id, kind: record.kind.rawValue, step: record.currentStepName, status: status, log: lines,
            message: record.outcome?.message, hostLeftIn: record.outcome.map { "\($0.hostLeftIn)" }, code: record.outcome?.code)
    }

    func machine() throws -> LabMachine {
        guard case .lab(let directory, let writeMethod)? = driver else {
            throw AgentError.invalidRequest("no driver")
        }
        let host = LabHost(directory: directory)
        return try LabMachine(host: host, labDriver: LabDriver(host: host, stateDirectory: stateDirectory, writeMethod: writeMethod))
    }

    /// At the peer's start: report the host's current (or last) operation, and carry an
    /// unfinished one on (as the agent does at every boot).
    public func start() {
        guard driver != nil, let machine = try? machine() else { return }
        guard let record = try? machine.store.load() else { return }
        lock.withLock { snapshot = Self.progress(of: record) }
        if !record.isFinished {
            log("agent: resuming operation \(record.id) (\(record.kind)) at \(record.currentStepName)")
            lock.withLock { running = record.id }
            Task.detached { [self] in await run(nil, on: machine) }
        }
    }

    /// Takes an order (from the coordinator's connection, already checked by the caller). Returns
    /// at once; the operation runs on a background task, never on the caller's thread.
    /// - Returns: true when something new was started or refused (worth announcing at once).
    @discardableResult
    public func take(_ order: OperationOrder) -> Bool {
        let decision: (start: Bool, refusal: String?) = lock.withLock {
            if snapshot?.id == order.id || running == order.id { return (false, nil) }
            if let running {
                return (false, "operation \(running) is running on this host")
            }
            guard driver != nil else {
                return (false, "no driver: this peer was started without --lab HOSTDIR (the linux driver for real hosts is not built yet)")
            }
            running = order.id
            return (true, nil)
        }
        if let refusal = decision.refusal {
            refuse(order, refusal)
            return true
        }
        guard decision.start else { return false }
        let machine: LabMachine
        let request: OperationRequest
        do {
            machine = try self.machine()
            request = try Self.request(from: order)
        } catch {
            lock.withLock { running = nil }
            refuse(order, "\(error)")
            return true
        }
        log("agent: taking operation \(order.id) (\(order.kind)) from the coordinator")
        lock.withLock { snapshot = OperationProgress(id: order.id, kind: order.kind, step: "accepting", status: .running) }
        Task.detached { [self] in await run(request, on: machine) }
        return true
    }

    private func refuse(_ order: OperationOrder, _ why: String) {
        log("agent: refusing operation \(order.id): \(why)")
        lock.withLock {
            // A refused second order does not hide the running operation's progress.
            if running == nil { snapshot = OperationProgress(id: order.id, kind: order.kind, step: "refused", status: .refused, message: why) }
        }
    }

    /// Accepts `request` (nil: resume the current operation) and runs it to its outcome.
    private func run(_ request: OperationRequest?, on machine: LabMachine) async {
        let id = request?.id ?? lock.withLock { running } ?? "?"
        let done = Flag()
        // Progress between reboots: the store is read twice a second while the operation runs.
        let poller = Task.detached { [self] in
            while !done.isSet {
                try? await Task.sleep(nanoseconds: 500_000_000)
                if let r = try? machine.store.record(id: id) { lock.withLock { if running == id { snapshot = Self.progress(of: r) } } }
            }
        }
        defer {
            done.set()
            poller.cancel()
        }
        do {
            try machine.powerOnIfOff()
            if let request {
                try installStagingIfNeeded(request, on: machine)
                let accepted = try await machine.agent().accept(request)
                if accepted.isFinished {
                    finish(id, Self.progress(of: accepted))
                    return
                }
            }
            let record = try await machine.resume { [log] boot in log("agent: the firmware booted \(boot.entry) (\(boot.source)): \(boot.osRelease)") }
            log("agent: operation \(record.id) \(record.outcome?.result.rawValue ?? "?"): \(record.outcome?.message ?? "")")
            finish(id, Self.progress(of: record))
        } catch let error as AgentError where error.isRefusal {
            finish(id, OperationProgress(id: id, kind: request?.kind.rawValue ?? "?", step: "refused", status: .refused,
                                         message: error.description, code: error.code))
        } catch {
            // The run stopped without an outcome (the store or the lab failed): say so; the
            // record (if any) is resumed at the peer's next start.
            var p = (try? machine.store.record(id: id)).flatMap { $0.map { Self.progress(of: $0) } }
                ?? OperationProgress(id: id, kind: request?.kind.rawValue ?? "?", step: "accepting", status: .failed)
            p.status = .failed
            p.message = "the agent stopped: \(error)"
            finish(id, p)
        }
    }

    /// A host leaving its original disk boots the staging OS from its staging partition: when
    /// the order names a staging bundle (delivered by the swarm into the packed store) that the
    /// partition does not hold yet, it is written there first, before the agent accepts anything.
    /// Idempotent: a peer killed mid-write writes again when the order comes back (no marker is
    /// left until the write is complete). Refused (nothing accepted) when the bundle is not
    /// verified in the store.
    private func installStagingIfNeeded(_ request: OperationRequest, on machine: LabMachine) throws {
        guard [.convert, .maintenance].contains(request.kind), let id = request.parameters.stagingBundle else { return }
        let lab = machine.labDriver
        guard lab.installedStagingBundle != id else { return }
        if try machine.host.bootedOS().entry == "staging" { return }  // the boot menu's entry names (LabHost.defaultMenu)
        guard case .verified = lab.bundleState(id) else {
            throw AgentError.bundleIncomplete(bundle: id, detail: "the staging bundle is not complete and verified in \(lab.bundleDirectory): \(lab.bundleState(id))")
        }
        log("agent: writing staging bundle \(id.prefix(12)) onto the staging partition")
        try lab.installStagingBundle(id)
    }

    private func finish(_ id: String, _ progress: OperationProgress) {
        let notify = lock.withLock { () -> (@Sendable () -> Void)? in
            snapshot = progress
            running = nil
            return onFinish
        }
        notify?()
    }
}

/// A set-once flag shared between tasks.
final class Flag: @unchecked Sendable {
    // Invariant: `value` only touched with `lock` held.
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
