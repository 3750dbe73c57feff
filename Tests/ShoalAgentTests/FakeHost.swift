import Foundation
import Synchronization

@testable import ShoalAgent

/// What a partition holds in the fake host.
enum FakeContent: Equatable, Sendable, CustomStringConvertible {
    case os(String)
    case wiped
    case empty

    var isBootable: Bool { if case .os = self { return true } else { return false } }
    var description: String {
        switch self {
        case .os(let name): return name
        case .wiped: return "(wiped)"
        case .empty: return "(empty)"
        }
    }
}

/// A bundle the fake host knows.
struct FakeBundle: Sendable {
    var os: String
    var imageBytes: UInt64
    var state: BundleState
}

/// How the fake target behaves after it boots.
enum FakeHealth: Sendable {
    case healthy
    case healthyAfter(checks: Int)
    case never
}

/// A simulated host: firmware (a default entry and a one-shot consumed at boot), three partitions,
/// a stored profile, bundles, and the OS currently booted. Implements ``HostDriver``.
///
/// The power switch: once `killArmed` is set, the next driver call throws `CancellationError`
/// without doing anything (the process died before the action).
final class FakeHost: HostDriver, @unchecked Sendable {
    // Invariant: all mutable state is inside `state`, guarded by the mutex.
    struct State {
        var content: [BootEntry: FakeContent] = [.original: .os("osA"), .staging: .os("osA-copy"), .maintenance: .empty]
        var size: [BootEntry: UInt64] = [.original: 1000, .staging: 1000, .maintenance: 200]
        var growable: [BootEntry: UInt64] = [.original: 0, .staging: 0, .maintenance: 0]
        var defaultEntry: BootEntry = .original
        var oneShot: BootEntry?
        var booted: BootEntry = .original
        /// One-shot entries the firmware ignores (the "staging boot does not take" fault).
        var firmwareIgnoresOneShot: Set<BootEntry> = []
        /// OSes that boot but never run the agent (they hang); a watchdog power-cycles them.
        var hangingOS: Set<String> = []
        /// The stored profile turns corrupt when the host boots this entry (a bad staging disk).
        var profileCorruptsOnBooting: BootEntry?
        /// Driver calls that take this long (seconds on the manual clock).
        var slow: [String: Double] = [:]
        var clock: ManualClock?
        var bundles: [String: FakeBundle] = [:]
        var identity = "host-a1 10.0.0.11 ssh-ed25519 AAAA"
        var storedProfile: ProfileReference?
        var storedProfileCorrupt = false
        var rendered: [BootEntry: String] = [:]
        var health: FakeHealth = .healthy
        var healthChecks = 0
        var maintenanceScript: [MaintenanceStatus] = [.running, .running, .succeeded]
        var maintenanceLooks = 0
        var layoutProblem: String?
        var captured: [String] = []
        var published: Set<String> = []
        var failOn: [String: String] = [:]
        var rebootCalls = 0
        var powerCycles = 0
        var mutations: [String] = []
        var killArmed = false
        var bootHistory: [BootEntry] = [.original]
    }

    let state: Mutex<State>

    init(_ configure: (inout State) -> Void = { _ in }) {
        var s = State()
        s.bundles = [
            "staging-b": FakeBundle(os: "osA-copy", imageBytes: 800, state: .verified(imageBytes: 800)),
            "target-b": FakeBundle(os: "osB", imageBytes: 900, state: .verified(imageBytes: 900)),
            "maint-b": FakeBundle(os: "maint", imageBytes: 100, state: .verified(imageBytes: 100)),
        ]
        configure(&s)
        state = Mutex(s)
    }

    func with<T, E: Error>(_ body: (inout State) throws(E) -> T) throws(E) -> T {
        try state.withLock { (s: inout State) throws(E) -> T in try body(&s) }
    }
    var snapshot: State { with { $0 } }

    // MARK: Firmware

    /// Power cycles the host (a reboot, a power loss): the firmware boots the one-shot entry once
    /// if one is armed and bootable, else the default; the one-shot is consumed either way.
    func powerCycle() {
        with { s in
            s.powerCycles += 1
            s.killArmed = false
            var entry = s.defaultEntry
            if let once = s.oneShot {
                s.oneShot = nil
                if !s.firmwareIgnoresOneShot.contains(once), s.content[once]?.isBootable == true { entry = once }
            }
            if s.content[entry]?.isBootable != true {
                entry = [BootEntry.staging, .original].first { s.content[$0]?.isBootable == true } ?? entry
            }
            s.booted = entry
            s.bootHistory.append(entry)
            if s.profileCorruptsOnBooting == entry { s.storedProfileCorrupt = true }
            s.healthChecks = 0
        }
    }

    /// True when the booted system starts the agent (false for a hung system).
    var agentRuns: Bool { with { !$0.hangingOS.contains($0.content[$0.booted]?.description ?? "") } }

    /// Bootable: whatever the firmware would boot next holds an OS.
    var isBootable: Bool {
        with { s in
            let next = s.oneShot.flatMap { s.content[$0]?.isBootable == true ? $0 : nil } ?? s.defaultEntry
            return s.content[next]?.isBootable == true && s.content[s.booted]?.isBootable == true
        }
    }

    // MARK: Driver

    private func enter(_ name: String, mutating: Bool = false) throws {
        try with { s in
            if s.killArmed {
                s.killArmed = false
                throw CancellationError()
            }
            if let why = s.failOn[name] { throw FakeFailure(message: why) }
            if let seconds = s.slow[name] { s.clock?.advance(seconds) }
            if mutating { s.mutations.append(name) }
        }
    }

    func bootedEntry() async throws -> BootEntry {
        try enter("bootedEntry")
        return with { $0.booted }
    }

    func preflightFacts(bundles: [String]) async throws -> PreflightFacts {
        try enter("preflightFacts")
        return with { s in
            var states: [String: BundleState] = [:]
            for b in bundles { if let fb = s.bundles[b] { states[b] = fb.state } }
            var parts: [BootEntry: PartitionFacts] = [:]
            for (e, size) in s.size { parts[e] = PartitionFacts(sizeBytes: size, growableBytes: s.growable[e] ?? 0) }
            return PreflightFacts(
                bundles: states, partitions: parts, layoutProblem: s.layoutProblem, storedProfile: s.storedProfile,
                storedProfileCheck: s.storedProfile == nil ? .missing : (s.storedProfileCorrupt ? .corrupt("checksum mismatch") : .intact))
        }
    }

    func captureProfile() async throws -> ProfileReference {
        try enter("captureProfile", mutating: true)
        return with { s in
            precondition(s.booted == .original, "profiles are captured from the original disk's OS")
            let ref = ProfileReference(location: "staging:/var/lib/shoal/profile.json", checksum: Self.checksum(s.identity))
            s.storedProfile = ref
            s.storedProfileCorrupt = false
            return ref
        }
    }

    func checkProfile(_ profile: ProfileReference) async throws -> ProfileCheck {
        try enter("checkProfile")
        return with { s in
            guard let stored = s.storedProfile, stored == profile else { return .missing }
            return s.storedProfileCorrupt ? .corrupt("checksum mismatch") : .intact
        }
    }

    func renderProfile(_ profile: ProfileReference, into entry: BootEntry, system: String?) async throws {
        try enter("renderProfile(\(entry))", mutating: true)
        try with { s in
            guard s.content[entry]?.isBootable == true else { throw FakeFailure(message: "no OS to render into on \(entry)") }
            guard s.storedProfile == profile, !s.storedProfileCorrupt else { throw FakeFailure(message: "profile unreadable") }
            s.rendered[entry] = s.identity
        }
    }

    func setOneShotBoot(_ entry: BootEntry) async throws {
        try enter("setOneShotBoot(\(entry))", mutating: true)
        with { $0.oneShot = entry }
    }

    func clearOneShotBoot() async throws {
        try enter("clearOneShotBoot", mutating: true)
        with { $0.oneShot = nil }
    }

    func setDefaultBoot(_ entry: BootEntry) async throws {
        try enter("setDefaultBoot(\(entry))", mutating: true)
        with { $0.defaultEntry = entry }
    }

    func reboot() async throws {
        try enter("reboot", mutating: true)
        with { $0.rebootCalls += 1 }
    }

    func growPartition(_ entry: BootEntry, toBytes bytes: UInt64) async throws {
        try enter("growPartition(\(entry))", mutating: true)
        try with { s in
            guard s.booted != entry else { throw FakeFailure(message: "cannot grow the running partition") }
            let size = s.size[entry] ?? 0
            guard bytes > size else { return }
            guard bytes - size <= s.growable[entry] ?? 0 else { throw FakeFailure(message: "no free space") }
            s.growable[entry]! -= bytes - size
            s.size[entry] = bytes
        }
    }

    func wipeOriginalDisk() async throws {
        try enter("wipeOriginalDisk", mutating: true)
        try with { s in
            guard s.booted != .original else { throw FakeFailure(message: "refusing to wipe the running root") }
            s.content[.original] = .wiped
            s.rendered[.original] = nil
        }
    }

    func writeImage(bundle: String, to entry: BootEntry, deadline: Date) async throws {
        try enter("writeImage(\(entry))", mutating: true)
        try with { s in
            guard s.booted != entry else { throw FakeFailure(message: "cannot write the running partition") }
            guard let b = s.bundles[bundle], case .verified = b.state else { throw FakeFailure(message: "bundle \(bundle) unusable") }
            guard b.imageBytes <= s.size[entry] ?? 0 else { throw FakeFailure(message: "image larger than the partition") }
            s.content[entry] = .os(b.os)
            s.rendered[entry] = nil
        }
    }

    func checkHealth() async throws -> HealthReport {
        try enter("checkHealth")
        return with { s in
            s.healthChecks += 1
            guard s.booted == .original, s.rendered[.original] == s.identity else {
                return HealthReport(healthy: false, detail: "identity not rendered")
            }
            switch s.health {
            case .healthy: return HealthReport(healthy: true)
            case .healthyAfter(let n): return HealthReport(healthy: s.healthChecks > n, detail: "check \(s.healthChecks)")
            case .never: return HealthReport(healthy: false, detail: "agent did not report in")
            }
        }
    }

    func maintenanceStatus(monitoring: MaintenanceMonitoring) async throws -> MaintenanceStatus {
        try enter("maintenanceStatus")
        return with { s in
            let i = min(s.maintenanceLooks, s.maintenanceScript.count - 1)
            s.maintenanceLooks += 1
            return s.maintenanceScript[i]
        }
    }

    func captureBundle(of entry: BootEntry, name: String, deadline: Date) async throws -> String {
        try enter("captureBundle", mutating: true)
        return try with { s in
            guard s.booted != entry, let c = s.content[entry], c.isBootable else { throw FakeFailure(message: "nothing to capture") }
            let id = "captured-\(name)-\(c)"
            if !s.captured.contains(id) { s.captured.append(id) }
            return id
        }
    }

    func publishBundle(_ bundle: String) async throws {
        try enter("publishBundle", mutating: true)
        with { _ = $0.published.insert(bundle) }
    }

    static func checksum(_ text: String) -> String {
        String(text.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }, radix: 16)
    }
}

struct FakeFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A clock that only moves when slept on (or told to).
final class ManualClock: AgentClock, @unchecked Sendable {
    // Invariant: `time` is only touched under the mutex.
    let time = Mutex(Date(timeIntervalSince1970: 1_750_000_000))
    func now() -> Date { time.withLock { $0 } }
    func sleep(seconds: Double) async throws { time.withLock { $0 = $0.addingTimeInterval(seconds) } }
    func advance(_ seconds: Double) { time.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// Where a simulated power loss strikes, relative to one step's action.
enum KillPoint: Sendable, Equatable, CustomStringConvertible {
    /// After the step is persisted `started`, before its action.
    case beforeAction(step: Int)
    /// After the action, before the step is persisted finished.
    case afterAction(step: Int)

    var description: String {
        switch self {
        case .beforeAction(let i): return "before action of step \(i)"
        case .afterAction(let i): return "after action of step \(i)"
        }
    }
}

/// Wraps a store and pulls the plug at each ``KillPoint`` in turn (each fires once).
final class KillingStore: OperationStore, @unchecked Sendable {
    // Invariant: `remaining` is only touched under the mutex.
    let inner: any OperationStore
    let host: FakeHost
    let remaining: Mutex<[KillPoint]>
    let total: Int

    init(_ inner: any OperationStore, host: FakeHost, killAt points: [KillPoint]) {
        self.inner = inner
        self.host = host
        self.remaining = Mutex(points)
        self.total = points.count
    }

    convenience init(_ inner: any OperationStore, host: FakeHost, killAt point: KillPoint?) {
        self.init(inner, host: host, killAt: point.map { [$0] } ?? [])
    }

    /// How many power losses happened.
    var fired: Int { total - remaining.withLock { $0.count } }
    var didFire: Bool { fired == total && total > 0 }

    func load() throws(AgentError) -> OperationRecord? { try inner.load() }
    func record(id: String) throws(AgentError) -> OperationRecord? { try inner.record(id: id) }
    func begin(_ record: OperationRecord) throws(AgentError) -> OperationRecord { try inner.begin(record) }

    func save(_ record: OperationRecord) throws(AgentError) {
        if host.with({ $0.killArmed }) {
            host.with { $0.killArmed = false }
            throw .interrupted("power loss (test)")
        }
        guard let point = remaining.withLock({ $0.first }) else { return try inner.save(record) }
        switch point {
        case .beforeAction(let i):
            try inner.save(record)
            if record.steps.indices.contains(i), record.steps[i].status == .started {
                _ = remaining.withLock { $0.removeFirst() }
                host.with { $0.killArmed = true }
            }
        case .afterAction(let i):
            if record.steps.indices.contains(i), record.steps[i].status.isFinished {
                _ = remaining.withLock { $0.removeFirst() }
                throw .interrupted("power loss (test)")
            }
            try inner.save(record)
        }
    }
}

/// Runs the agent on a fake host the way the host would: start, run until it reboots (or the power
/// fails), let the firmware boot, start a new agent on the same store, until the operation ends.
func driveToEnd(
    _ host: FakeHost, store: any OperationStore, clock: ManualClock, maxStarts: Int = 60
) async throws -> OperationRecord {
    for _ in 0..<maxStarts {
        if !host.agentRuns {
            clock.advance(600)  // the hung system's watchdog, or an operator, power-cycles it
            host.powerCycle()
            continue
        }
        let agent = Agent(driver: host, store: store, clock: clock)
        do {
            switch try await agent.resume() {
            case .finished(let record): return record
            case .rebooting:
                clock.advance(30)
                host.powerCycle()
            case .idle: throw FakeFailure(message: "no operation")
            }
        } catch AgentError.interrupted {
            clock.advance(30)
            host.powerCycle()
        }
    }
    throw FakeFailure(message: "the operation did not finish in \(maxStarts) starts")
}

/// The directory all store directories of this test process live in (in memory when /dev/shm
/// exists, so the many fsyncs are cheap); removed when the process exits.
private func agentTestRoot() -> String {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    return base + "/shoal-agent-tests-\(getpid())"
}

private let agentTestRootMade: Bool = {
    try? FileManager.default.createDirectory(atPath: agentTestRoot(), withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: agentTestRoot()) }
    return true
}()

/// A fresh store directory, removed with the others when the test process exits.
func temporaryStoreDirectory() -> String {
    _ = agentTestRootMade
    let path = agentTestRoot() + "/" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}
