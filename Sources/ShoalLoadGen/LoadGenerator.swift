import Foundation
import NIOCore
import NIOPosix
import ShoalNet
import ShoalTLS
import ShoalWire

/// Drives a coordinator with a simulated fleet over real connections: one mutually authenticated
/// TLS control connection per simulated host (its own certificate), many connections on a few
/// event loops, each announcing as a peer does.
///
/// Answers are classified by their first JSON key, not decoded: with a bundle that targets the
/// whole fleet every answer lists every live peer, and decoding that here would measure the
/// generator instead of the coordinator.
public final class LoadGenerator: @unchecked Sendable {
    // Invariant: `clients` is written only by `connect` (before any phase) and read afterwards.
    public let fleet: LoadFleet
    public let address: String
    private let group: any EventLoopGroup
    public private(set) var clients: [ControlClient?] = []
    /// Per host: it has no request out (set and read only on that client's loop, through `busy`).
    private let busy: LockedBox<[Bool]>
    /// The bundle each announce reports progress for (as a peer does once it has the job).
    public var reportedBundle: (id: String, chunks: Int)?

    public init(fleet: LoadFleet, address: String, group: any EventLoopGroup) {
        self.fleet = fleet
        self.address = address
        self.group = group
        self.busy = LockedBox(Array(repeating: false, count: fleet.hosts.count))
    }

    /// Connects `count` hosts (the first ones; all by default), `concurrency` handshakes at a time.
    /// Returns the seconds it took and the hosts that could not connect (with the first error).
    public func connect(count: Int? = nil, concurrency: Int = 256) -> (seconds: Double, failed: Int, firstError: String?) {
        let n = min(count ?? fleet.hosts.count, fleet.hosts.count)
        clients = Array(repeating: nil, count: fleet.hosts.count)
        let start = Date()
        let results = LockedBox<(failed: Int, first: String?)>((0, nil))
        let semaphore = DispatchSemaphore(value: concurrency)
        let all = DispatchGroup()
        let slots = LockedBox<[ControlClient?]>(Array(repeating: nil, count: fleet.hosts.count))
        for i in 0..<n {
            semaphore.wait()
            all.enter()
            ControlClient.connect(to: address, tls: fleet.hosts[i].tls, group: group).whenComplete { result in
                switch result {
                case .success(let c): slots.withLock { $0[i] = c }
                case .failure(let e): results.withLock { $0.failed += 1; $0.first = $0.first ?? "\(e)" }
                }
                semaphore.signal()
                all.leave()
            }
        }
        all.wait()
        clients = slots.withLock { $0 }
        let r = results.withLock { $0 }
        return (Date().timeIntervalSince(start), r.failed, r.first)
    }

    public func closeAll() {
        for c in clients { c?.close() }
        for c in clients { if let c { _ = try? c.closeFuture.wait() } }
        clients = []
    }

    public enum Mode: Sendable, Equatable {
        /// `.announce`, answered at once; the next goes out as soon as the answer is in (the most
        /// requests the coordinator can answer).
        case plain
        /// `.announceAndWait(waitSeconds:)`, the next 20 ms after the answer, as `PeerNode` does.
        case held(waitSeconds: Double)
        /// Each host sends exactly one `.announce` (joining the fleet, or a census).
        case once
    }

    /// What one phase measured.
    public struct PhaseResult: Codable, Sendable {
        public var mode: String
        public var seconds: Double
        public var hosts: Int
        /// Answers completed in each whole second of the phase.
        public var perSecond: [Int]
        public var medianPerSecond: Double
        public var answers: Int
        public var jobsAnswers: Int
        public var refused: Int
        public var otherAnswers: Int
        public var failed: Int
        public var firstProblem: String?
        /// Hosts that got at least one jobs answer in the phase.
        public var hostsAnswered: Int
        /// Requests still unanswered when the phase gave up waiting.
        public var unanswered: Int
        public var latencyP50: Double
        public var latencyP99: Double
        public var latencyMax: Double
        /// The operator's `.status` requests answered during the phase (0 when none ran).
        public var statusAnswers: Int
        public var statusPerSecond: Double
        public var statusLatencyP50: Double

        /// A phase that did not run.
        public static func skipped(_ mode: String) -> PhaseResult {
            PhaseResult(mode: mode + " (not run)", seconds: 0, hosts: 0, perSecond: [], medianPerSecond: 0, answers: 0, jobsAnswers: 0, refused: 0,
                        otherAnswers: 0, failed: 0, firstProblem: nil, hostsAnswered: 0, unanswered: 0, latencyP50: 0, latencyP99: 0,
                        latencyMax: 0, statusAnswers: 0, statusPerSecond: 0, statusLatencyP50: 0)
        }
    }

    private final class Recorder: @unchecked Sendable {
        // Invariant: every field is only touched with `lock` held.
        let lock = NSLock()
        let start: NIODeadline
        var buckets: [Int] = []
        var latencies: [Int64] = []
        var jobs = 0, refused = 0, other = 0, failed = 0
        var firstProblem: String?
        var answeredHosts: [Bool]
        var outstanding = 0
        var statusCount = 0
        var statusLatencies: [Int64] = []

        init(hosts: Int, start: NIODeadline) {
            self.start = start
            answeredHosts = Array(repeating: false, count: hosts)
        }

        func record(host: Int, sent: NIODeadline, result: Result<ByteBuffer, any Error>) {
            let now = NIODeadline.now()
            lock.lock()
            defer { lock.unlock() }
            switch result {
            case .success(let buffer):
                let second = Int((now - start).nanoseconds / 1_000_000_000)
                if second >= 0 {
                    while buckets.count <= second { buckets.append(0) }
                    buckets[second] += 1
                }
                latencies.append((now - sent).nanoseconds)
                switch LoadGenerator.answerKind(buffer) {
                case "jobs", "jobsAndOrders": jobs += 1; answeredHosts[host] = true
                case "refused":
                    refused += 1
                    if firstProblem == nil { firstProblem = "refused: " + String(buffer: buffer).prefix(300) }
                default:
                    other += 1
                    if firstProblem == nil { firstProblem = "unexpected answer: " + String(buffer: buffer).prefix(300) }
                }
            case .failure(let error):
                failed += 1
                if firstProblem == nil { firstProblem = "\(error)" }
            }
        }
    }

    /// The first key of a JSON object (`{"jobs":…}` → `jobs`): which `ControlResponse` case it is.
    public static func answerKind(_ buffer: ByteBuffer) -> String {
        let view = buffer.readableBytesView
        guard let open = view.firstIndex(of: UInt8(ascii: "\"")) else { return "" }
        let rest = view[(open + 1)...]
        guard let close = rest.firstIndex(of: UInt8(ascii: "\"")) else { return "" }
        return String(decoding: view[(open + 1)..<close], as: UTF8.self)
    }

    /// Runs one phase: every connected, idle host loops for `seconds` in `mode`; then waits up to
    /// `drainSeconds` for the requests still out. `status`: an operator connection asking `.status`
    /// back to back meanwhile.
    public func run(_ mode: Mode, seconds: Double, drainSeconds: Double = 10, status: ControlClient? = nil) -> PhaseResult {
        let start = NIODeadline.now()
        let end = start + .nanoseconds(Int64(seconds * 1e9))
        let recorder = Recorder(hosts: fleet.hosts.count, start: start)
        let done = DispatchSemaphore(value: 0)
        let reported = reportedBundle
        let participants = busy.withLock { busy -> [Int] in
            var out: [Int] = []
            for (i, c) in clients.enumerated() where c != nil && !busy[i] {
                busy[i] = true
                out.append(i)
            }
            return out
        }
        recorder.lock.withLock { recorder.outstanding = participants.count }
        let finishOne: @Sendable (Int) -> Void = { [busy] (i: Int) in
            busy.withLock { $0[i] = false }
            let last = recorder.lock.withLock { () -> Bool in
                recorder.outstanding -= 1
                return recorder.outstanding == 0
            }
            if last { done.signal() }
        }
        if participants.isEmpty { done.signal() }

        for i in participants {
            let client = clients[i]!
            let loop = ControlLoop(client: client, host: i, mode: mode, end: end, bundle: reported, recorder: recorder, finish: finishOne)
            loop.next()
        }
        var statusDone: DispatchSemaphore?
        if let status {
            let sd = DispatchSemaphore(value: 0)
            statusDone = sd
            @Sendable func ask() {
                let sent = NIODeadline.now()
                status.sendRaw(.status).whenComplete { result in
                    let now = NIODeadline.now()
                    if case .success(let b) = result, LoadGenerator.answerKind(b) == "status" {
                        recorder.lock.withLock {
                            recorder.statusCount += 1
                            recorder.statusLatencies.append((now - sent).nanoseconds)
                        }
                    }
                    if now < end, case .success = result { ask() } else { sd.signal() }
                }
            }
            ask()
        }
        let timedOut = done.wait(timeout: .now() + seconds + drainSeconds) == .timedOut
        let phaseEnd = NIODeadline.now()
        _ = statusDone?.wait(timeout: .now() + drainSeconds)
        let wholeSeconds = max(1, Int(seconds))

        return recorder.lock.withLock {
            var buckets = Array(recorder.buckets.prefix(wholeSeconds))
            while buckets.count < wholeSeconds { buckets.append(0) }
            let lat = recorder.latencies.sorted()
            let st = recorder.statusLatencies.sorted()
            let name: String
            switch mode {
            case .plain: name = "announce"
            case .held(let w): name = "announceAndWait \(w)s"
            case .once: name = "announce once"
            }
            let modeSeconds = mode == .once ? Double((phaseEnd - start).nanoseconds) / 1e9 : seconds
            return PhaseResult(
                mode: name, seconds: modeSeconds, hosts: participants.count, perSecond: buckets,
                medianPerSecond: mode == .once ? Double(recorder.jobs) / max(modeSeconds, 1e-9) : median(buckets.map(Double.init)),
                answers: recorder.jobs + recorder.refused + recorder.other, jobsAnswers: recorder.jobs, refused: recorder.refused,
                otherAnswers: recorder.other, failed: recorder.failed, firstProblem: recorder.firstProblem,
                hostsAnswered: participants.filter { recorder.answeredHosts[$0] }.count,
                unanswered: timedOut ? recorder.outstanding : 0,
                latencyP50: percentile(lat, 0.50), latencyP99: percentile(lat, 0.99), latencyMax: Double(lat.last ?? 0) / 1e9,
                statusAnswers: recorder.statusCount, statusPerSecond: seconds > 0 ? Double(recorder.statusCount) / seconds : 0,
                statusLatencyP50: percentile(st, 0.50))
        }
    }

    /// One host's request loop; lives on its connection's event loop through the futures.
    private final class ControlLoop: @unchecked Sendable {
        // Invariant: used on its client's event loop only (after the first `next()`).
        let client: ControlClient
        let host: Int
        let mode: Mode
        let end: NIODeadline
        let bundle: (id: String, chunks: Int)?
        let recorder: Recorder
        let finish: @Sendable (Int) -> Void

        init(client: ControlClient, host: Int, mode: Mode, end: NIODeadline, bundle: (id: String, chunks: Int)?, recorder: Recorder,
             finish: @escaping @Sendable (Int) -> Void) {
            self.client = client
            self.host = host
            self.mode = mode
            self.end = end
            self.bundle = bundle
            self.recorder = recorder
            self.finish = finish
        }

        func next() {
            let progress = bundle.map { [BundleProgress(bundleID: $0.id, have: 0, total: $0.chunks, bytes: 0, complete: false, staged: false)] } ?? []
            let request: ControlRequest
            switch mode {
            case .plain, .once: request = .announce(listenPort: 7701, listenAddress: "127.0.0.1", bundles: progress)
            case .held(let w): request = .announceAndWait(listenPort: 7701, listenAddress: "127.0.0.1", bundles: progress, waitSeconds: w)
            }
            let sent = NIODeadline.now()
            client.sendRaw(request).whenComplete { [self] result in
                recorder.record(host: host, sent: sent, result: result)
                guard case .success = result, mode != .once, NIODeadline.now() < end else { finish(host); return }
                if case .held = mode {
                    client.closeFuture.eventLoop.scheduleTask(in: .milliseconds(20)) { [self] in next() }
                } else {
                    next()
                }
            }
        }
    }
}

func median(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 0 }
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// `q`-quantile of sorted nanoseconds, in seconds.
func percentile(_ sorted: [Int64], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let i = min(sorted.count - 1, max(0, Int((Double(sorted.count) * q).rounded(.up)) - 1))
    return Double(sorted[i]) / 1e9
}
