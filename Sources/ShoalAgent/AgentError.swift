/// Why the agent refused or failed an operation, or could not use its state.
///
/// Every case has a numeric ``code`` (written into the step log, mapped to these messages by
/// `shoal host status`) and an operator-facing ``description`` that says what happened and in
/// which state the host is.
///
/// - 4xx: refused before anything changed on the host (request, lock, preflight).
/// - 5xx: failed while running; the log and the outcome say where the host was left.
/// - 6xx: the agent's own state store.
public enum AgentError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The request lacks something its kind needs, or a value is out of range.
    case invalidRequest(String)
    /// A bundle the operation needs is not on the host.
    case bundleMissing(bundle: String)
    /// A bundle is only partly on the host (still being distributed).
    case bundleIncomplete(bundle: String, detail: String)
    /// A bundle failed verification (signature, manifest or chunk hashes).
    case bundleCorrupt(bundle: String, detail: String)
    /// The disks or partitions are not the layout the agent expects.
    case unexpectedLayout(String)
    /// The image does not fit its partition and there is not enough free space to grow into.
    case imageTooBig(bundle: String, imageBytes: UInt64, partitionBytes: UInt64, growableBytes: UInt64)
    /// There is no intact stored profile to carry over (needed when starting in the staging OS).
    case profileMissing(String)
    /// The operation cannot start from the system the host is running.
    case wrongStartingSystem(kind: OperationKind, booted: BootEntry)
    /// Another operation holds the host. Only one operation runs on a host at a time.
    case operationInProgress(id: String, kind: OperationKind, step: String)

    /// A driver action failed.
    case actionFailed(step: StepID, detail: String)
    /// A step took longer than its timeout.
    case stepTimedOut(step: StepID, seconds: Double)
    /// The one-shot boot into the staging OS did not take: the host came back in the base OS.
    case stagingBootFailed(attempts: Int)
    /// The target did not report healthy before its deadline; the host fell back to staging.
    case targetNotHealthy(attempts: Int, detail: String)
    /// The maintenance image reported failure, did not finish in time, or kept losing power.
    case maintenanceFailed(String)
    /// The host runs a system the next step did not expect and no rule explains it.
    case unexpectedSystem(step: StepID, expected: BootEntry, found: BootEntry)
    /// A reboot that should have changed the system came back in the same one.
    case rebootDidNotTake(step: StepID, stillIn: BootEntry)
    /// The stored profile failed its checksum.
    case profileCorrupt(String)

    /// The state file exists but cannot be read as an operation record. It is left in place.
    case corruptState(path: String, detail: String)
    /// Reading or writing the state failed.
    case stateIO(String)
    /// The agent was stopped mid-step (cancellation, or the process is going away). Nothing was
    /// recorded for the step; it re-runs on the next start.
    case interrupted(String)
    /// There is no operation to run or show.
    case noOperation

    /// The numeric status code written into the step log.
    public var code: Int {
        switch self {
        case .invalidRequest: return 400
        case .bundleMissing: return 401
        case .bundleIncomplete: return 402
        case .bundleCorrupt: return 403
        case .unexpectedLayout: return 404
        case .imageTooBig: return 405
        case .profileMissing: return 406
        case .wrongStartingSystem: return 407
        case .operationInProgress: return 409
        case .actionFailed: return 500
        case .stepTimedOut: return 501
        case .stagingBootFailed: return 502
        case .targetNotHealthy: return 503
        case .maintenanceFailed: return 504
        case .unexpectedSystem: return 505
        case .rebootDidNotTake: return 506
        case .profileCorrupt: return 507
        case .corruptState: return 600
        case .stateIO: return 601
        case .interrupted: return 602
        case .noOperation: return 603
        }
    }

    /// True for refusals: nothing on the host was changed.
    public var isRefusal: Bool { (400..<500).contains(code) }

    public var description: String {
        switch self {
        case .invalidRequest(let s): return "invalid request: \(s)"
        case .bundleMissing(let b): return "bundle \(b) is not on this host; distribute it first"
        case .bundleIncomplete(let b, let d): return "bundle \(b) is incomplete (\(d)); wait for the distribution to finish"
        case .bundleCorrupt(let b, let d): return "bundle \(b) failed verification (\(d)); it will not be used"
        case .unexpectedLayout(let s): return "unexpected disk layout: \(s)"
        case .imageTooBig(let b, let image, let part, let free):
            return "image of bundle \(b) needs \(image) bytes but its partition has \(part) and only \(free) bytes of free space follow it"
        case .profileMissing(let s): return "no intact host profile to carry over: \(s)"
        case .wrongStartingSystem(let kind, let booted):
            return "\(kind) cannot start while the host runs from the \(booted) entry"
        case .operationInProgress(let id, let kind, let step):
            return "operation \(id) (\(kind)) is still running on this host (at step \(step)); one operation at a time"
        case .actionFailed(let step, let d): return "step \(step) failed: \(d)"
        case .stepTimedOut(let step, let s): return "step \(step) did not finish within its \(Int(s)) s timeout"
        case .stagingBootFailed(let n):
            return "the staging OS did not boot (\(n) attempt(s)): the host came back in the base OS, which is untouched"
        case .targetNotHealthy(let n, let d):
            return "the target did not come up healthy (\(n) attempt(s); \(d)); the host fell back to the staging OS"
        case .maintenanceFailed(let s): return "maintenance failed: \(s)"
        case .unexpectedSystem(let step, let expected, let found):
            return "step \(step) must run from the \(expected) entry but the host booted from \(found)"
        case .rebootDidNotTake(let step, let entry): return "reboot step \(step) came back in the same system (\(entry))"
        case .profileCorrupt(let s): return "stored host profile is corrupt: \(s)"
        case .corruptState(let path, let d):
            return "agent state \(path) is corrupt (\(d)); it was left untouched: inspect it, then move it away to start over"
        case .stateIO(let s): return "agent state: \(s)"
        case .interrupted(let s): return "interrupted: \(s)"
        case .noOperation: return "no operation on this host"
        }
    }
}
