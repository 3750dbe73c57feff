import Foundation
import Glibc
import NIOCore
import NIOPosix
import ShoalNet
import ShoalTLS
import ShoalWire

/// `shoal bench coordinator`: a real `shoal coordinator` child process (SQLite state in a temp
/// dir, 127.0.0.1) under a simulated fleet over real TLS connections.
///
/// Phases, each host on its own connection and certificate:
/// 1. join: every host announces once (new hosts; no bundle yet, so answers are small);
/// 2. (`bundleTargetsAll`) an operator publishes a bundle for every host; from then on every
///    announce reports progress for it and every answer lists the live peers and the WAN plan;
/// 3. held: `.announceAndWait(waitSeconds: heldWait)` as `PeerNode` sends it, for `duration` s,
///    while an operator asks `.status` back to back; then one `.status` counts the hosts alive;
/// 4. plain: `.announce` back to back on every idle connection for `duration` s (the most it
///    answers);
/// then the child's VmHWM is read, it is stopped (SIGTERM) and its database size is read.
public enum CoordinatorBench {
    public struct Options: Sendable {
        public var hosts = 10_000
        public var sites = 100
        /// Hosts that connect (the first ones); nil: all.
        public var connections: Int?
        public var duration: Double = 20
        public var bundleTargetsAll = false
        public var heldWait: Double = 1
        /// The `shoal` executable to start as `shoal coordinator`.
        public var executable: String
        /// Event loop threads of the generator.
        public var eventLoops = 2
        public var drainSeconds: Double = 15
        /// The measured phases, in order (after the join and the publish).
        public var phases: [Phase] = [.held, .plain]

        public init(executable: String) { self.executable = executable }
    }

    public enum Phase: String, Sendable, CaseIterable {
        case held, plain
    }

    public struct Report: Codable, Sendable {
        public var hosts: Int
        public var sites: Int
        public var connections: Int
        public var bundleTargets: String
        public var duration: Double
        public var certificateSeconds: Double
        public var connectSeconds: Double
        public var connectFailed: Int
        public var connectFirstError: String?
        public var join: LoadGenerator.PhaseResult
        public var plain: LoadGenerator.PhaseResult
        public var held: LoadGenerator.PhaseResult
        /// The held phase kept up: its median answers per second ≥ 90 % of connections / (wait +
        /// 20 ms), every host answered, none failed or left unanswered.
        public var heldSustained: Bool
        public var statusHostsListed: Int
        public var statusHostsAlive: Int
        public var coordinatorPeakRSSKiB: Int
        public var coordinatorRSSKiB: Int
        /// The state database after the coordinator stopped (and its WAL, if any is left).
        public var stateDBBytes: Int
        public var stateWALBytes: Int
        public var coordinatorLogTail: String?
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    public static func run(_ options: Options, log: @escaping (String) -> Void = { _ in }) throws -> Report {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        log("issuing \(options.hosts) host certificates")
        let fleet = try LoadFleet.make(hosts: options.hosts, sites: options.sites)
        log(String(format: "certificates: %.2f s (%.0f µs each)", fleet.certificateSeconds, fleet.certificateSeconds / Double(options.hosts) * 1e6))
        try fleet.topologyYAML.write(toFile: dir + "/topology.yaml", atomically: true, encoding: .utf8)
        try fleet.writeCoordinatorTLS(into: dir + "/tls-coordinator")
        raiseOpenFileLimit(to: options.hosts * 2 + 4096)

        let port = try freeLoopbackPort()
        let address = "127.0.0.1:\(port)"
        let database = dir + "/coordinator.db"
        let logPath = dir + "/coordinator.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: options.executable)
        child.arguments = ["coordinator", "--topology", dir + "/topology.yaml", "--listen", address, "--tls", dir + "/tls-coordinator",
                           "--state", database]
        child.standardOutput = FileHandle.nullDevice
        child.standardError = FileHandle(forWritingAtPath: logPath)
        try child.run()
        let pid = child.processIdentifier
        var stopped = false
        func stopChild() {
            guard !stopped else { return }
            stopped = true
            if child.isRunning { kill(pid, SIGTERM) }
            let deadline = Date().addingTimeInterval(20)
            while child.isRunning && Date() < deadline { usleep(20_000) }
            if child.isRunning { kill(pid, SIGKILL); child.waitUntilExit() }
        }
        defer { stopChild() }
        func logTail() -> String {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            return String(text.suffix(2000))
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, options.eventLoops))
        defer { try? group.syncShutdownGracefully() }

        // The operator's connection, retried while the coordinator starts.
        let opDeadline = Date().addingTimeInterval(30)
        var operatorClient: ControlClient?
        while operatorClient == nil {
            do { operatorClient = try ControlClient.connect(to: address, tls: fleet.operatorTLS, group: group).wait() } catch {
                guard child.isRunning, Date() < opDeadline else { throw Failure("the coordinator did not come up: \(error)\n\(logTail())") }
                usleep(100_000)
            }
        }
        let ops = operatorClient!
        defer { ops.close() }

        let generator = LoadGenerator(fleet: fleet, address: address, group: group)
        defer { generator.closeAll() }
        let connections = min(options.connections ?? options.hosts, options.hosts)
        log("connecting \(connections) hosts")
        let connected = generator.connect(count: connections)
        log(String(format: "connected in %.2f s (%d failed)", connected.seconds, connected.failed))

        log("join: every host announces once")
        let join = generator.run(.once, seconds: 0, drainSeconds: max(60, Double(connections) / 100))
        log(String(format: "join: %.0f announces/s, %d jobs answers", join.medianPerSecond, join.jobsAnswers))

        if options.bundleTargetsAll {
            let (manifest, id) = try LoadFleet.sampleManifest()
            let answer = try ops.send(.publish(manifest: manifest, seedHost: "seed", selector: "all")).wait()
            guard case .published(_, let targets) = answer else { throw Failure("publish: \(answer)") }
            log("published \(id.prefix(12)) for \(targets.count) hosts")
            generator.reportedBundle = (id, 2)
        }

        var held = LoadGenerator.PhaseResult.skipped("announceAndWait \(options.heldWait)s")
        var plain = LoadGenerator.PhaseResult.skipped("announce")
        var listed = 0, alive = 0, counted = false
        // One census, before any plain phase: requests a saturated coordinator has not answered
        // yet would queue it behind them.
        func census() {
            guard !counted else { return }
            counted = true
            if case .status(let report)? = wait(ops.send(.status), seconds: 30) {
                listed = report.hosts.count
                alive = report.hosts.filter(\.alive).count
            }
        }
        for phase in options.phases {
            switch phase {
            case .held:
                log("held announces (\(options.heldWait) s) for \(options.duration) s, with status requests")
                held = generator.run(.held(waitSeconds: options.heldWait), seconds: options.duration,
                                     drainSeconds: options.heldWait + options.drainSeconds, status: ops)
                log(String(format: "held: %.0f announces/s (median), p50 %.3f s, p99 %.3f s; status %.1f/s", held.medianPerSecond,
                           held.latencyP50, held.latencyP99, held.statusPerSecond))
                census()
            case .plain:
                census()
                log("plain announces for \(options.duration) s")
                plain = generator.run(.plain, seconds: options.duration, drainSeconds: options.drainSeconds)
                log(String(format: "plain: %.0f announces/s (median), p50 %.1f ms, p99 %.1f ms", plain.medianPerSecond,
                           plain.latencyP50 * 1e3, plain.latencyP99 * 1e3))
            }
        }
        census()

        // Last: when the coordinator cannot keep up, requests are still queued when this returns.
        let (hwm, rss) = memory(of: pid)
        generator.closeAll()
        ops.close()
        stopChild()
        let expected = Double(connections) / (options.heldWait + 0.02)
        let sustained = held.medianPerSecond >= 0.9 * expected && held.hostsAnswered == connections && held.failed == 0 && held.unanswered == 0
        return Report(
            hosts: options.hosts, sites: options.sites, connections: connections, bundleTargets: options.bundleTargetsAll ? "all" : "none",
            duration: options.duration, certificateSeconds: fleet.certificateSeconds, connectSeconds: connected.seconds,
            connectFailed: connected.failed, connectFirstError: connected.firstError, join: join, plain: plain, held: held,
            heldSustained: sustained, statusHostsListed: listed, statusHostsAlive: alive, coordinatorPeakRSSKiB: hwm, coordinatorRSSKiB: rss,
            stateDBBytes: fileSize(database), stateWALBytes: fileSize(database + "-wal"),
            coordinatorLogTail: logTail().isEmpty ? nil : logTail())
    }

    /// The future's value, or nil when it failed or took longer than `seconds`.
    static func wait<T: Sendable>(_ future: EventLoopFuture<T>, seconds: Double) -> T? {
        let box = LockedBox<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        future.whenComplete { result in
            if case .success(let v) = result { box.withLock { $0 = v } }
            done.signal()
        }
        _ = done.wait(timeout: .now() + seconds)
        return box.withLock { $0 }
    }

    /// VmHWM and VmRSS of `pid`, KiB.
    static func memory(of pid: Int32) -> (Int, Int) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
                return Int(line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") ?? 0
            }
            return 0
        }
        return (field("VmHWM"), field("VmRSS"))
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    static func makeTempDir() throws -> String {
        var template = Array((NSTemporaryDirectory() + "/shoal-bench-XXXXXX").utf8CString)
        guard let p = mkdtemp(&template) else { throw Failure("mkdtemp failed") }
        return String(cString: p)
    }
}

/// A TCP port on 127.0.0.1 free right now (bound to port 0, then released).
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw CoordinatorBench.Failure("socket failed") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    guard bound == 0 else { throw CoordinatorBench.Failure("bind failed") }
    let got = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    guard got == 0 else { throw CoordinatorBench.Failure("getsockname failed") }
    return Int(UInt16(bigEndian: addr.sin_port))
}
