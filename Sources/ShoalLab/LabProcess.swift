#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A real process started by a lab (`Lab.spawn`), on one of its machines.
///
/// Started with `posix_spawn` rather than Foundation's `Process`, because a child must not
/// inherit the signal mask of the thread that starts it: Swift concurrency's worker threads block
/// almost every signal, and a child started from one (as `Process` does) ignores SIGTERM for its
/// whole life. Here the child gets an empty signal mask, default signal actions, its own process
/// group, `/dev/null` or the given files as standard I/O, and no other inherited descriptor.
///
/// Signals go to the process group while the leader runs, so a shell and what it started stop
/// together. They are only ever sent to the PID/process group of a process this object started,
/// and never after it has been reaped (reaping and signalling share a lock), so a reused PID is
/// never hit.
public final class LabProcess: @unchecked Sendable, CustomStringConvertible {
    /// How a process ended.
    public enum Termination: Sendable, Hashable, CustomStringConvertible {
        /// It exited with this status.
        case exited(Int32)
        /// It was ended by this signal.
        case signaled(Int32)

        public var description: String {
            switch self {
            case .exited(let status): return "exited \(status)"
            case .signaled(let signal): return "killed by signal \(signal)"
            }
        }
    }

    /// Where it runs: the host, seed or origin name (or namespace) given to `spawn`.
    public let target: String
    /// The executable's path.
    public let executable: String
    /// The arguments (without the executable).
    public let arguments: [String]
    /// The process ID (in the initial PID namespace: the lab does not isolate PIDs).
    public let pid: Int32

    private let condition = NSCondition()
    private var ended: Termination?

    private init(pid: Int32, target: String, executable: String, arguments: [String]) {
        self.pid = pid
        self.target = target
        self.executable = executable
        self.arguments = arguments
    }

    /// Waits (on a thread of its own) until the child has exited, then reaps it under the lock.
    private func startReaper() {
        let thread = Thread { [self] in
            var info = siginfo_t()
            // Wait without reaping, so the PID stays ours until the lock is held.
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR {}
            condition.lock()
            var status: Int32 = 0
            var result: pid_t
            repeat { result = waitpid(pid, &status, 0) } while result == -1 && errno == EINTR
            let low = status & 0x7f
            ended = low == 0 ? .exited((status >> 8) & 0xff) : .signaled(low)
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "shoal-lab reaper \(pid)"
        thread.stackSize = 1 << 16
        thread.start()
    }

    /// Whether the process is still running (it has not been reaped yet).
    public var isRunning: Bool {
        condition.lock(); defer { condition.unlock() }
        return ended == nil
    }

    /// How it ended, or `nil` while it runs.
    public var termination: Termination? {
        condition.lock(); defer { condition.unlock() }
        return ended
    }

    /// Its exit status if it exited normally (`nil` while running or when killed by a signal).
    public var exitStatus: Int32? {
        if case .exited(let status) = termination { return status }
        return nil
    }

    /// Waits until the process has ended, at most `timeout` seconds (`nil`: no limit).
    /// - Returns: whether it has ended.
    @discardableResult
    public func waitUntilExit(timeout: Double? = nil) -> Bool {
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        condition.lock(); defer { condition.unlock() }
        while ended == nil {
            if let deadline {
                if !condition.wait(until: deadline) { return ended != nil }
            } else {
                condition.wait()
            }
        }
        return true
    }

    /// Sends `signal` to the process (and its process group) if it still runs.
    public func send(signal: Int32) {
        condition.lock(); defer { condition.unlock() }
        // Holding the lock: the reaper cannot reap in between, so the PID is still ours.
        guard ended == nil else { return }
        signalProcess(-pid, signal)
        signalProcess(pid, signal)
    }

    /// SIGTERM, then SIGKILL if it has not ended after `grace` seconds; returns once it ended
    /// (or after 5 more seconds, which only a process stuck in the kernel can take).
    public func terminate(grace: Double = 2) {
        guard isRunning else { return }
        send(signal: SIGTERM)
        if !waitUntilExit(timeout: grace) {
            kill()
        }
    }

    /// SIGKILL, and waits (up to 5 s) until it has been reaped.
    public func kill() {
        send(signal: SIGKILL)
        waitUntilExit(timeout: 5)
    }

    public var description: String {
        "LabProcess(pid \(pid) on \(target): \(([executable] + arguments).joined(separator: " ")), \(termination.map(\.description) ?? "running"))"
    }

    /// Starts `launcher… executable arguments…` with the given environment overrides and output files.
    static func launch(target: String, executable: String, arguments: [String], launcher: [String] = [],
                       environment: [String: String]?, stdout: String?, stderr: String?) throws -> LabProcess {
        let argv = launcher + [executable] + arguments
        var env = ProcessInfo.processInfo.environment
        if let environment { env.merge(environment) { _, new in new } }
        let envStrings = env.map { "\($0.key)=\($0.value)" }
        let pid = try Spawner.spawn(path: argv[0], argv: argv, env: envStrings, stdout: stdout, stderr: stderr)
        let process = LabProcess(pid: pid, target: target, executable: executable, arguments: arguments)
        process.startReaper()
        return process
    }
}

/// `posix_spawn` with a clean signal state, a new process group and chosen standard I/O.
enum Spawner {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift's Glibc module
    /// does not export.
    static let addCloseFrom: CloseFrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: CloseFrom.self)
    }()

    static func spawn(path: String, argv: [String], env: [String], stdout: String?, stderr: String?) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        var empty = sigset_t(), defaults = sigset_t()
        sigemptyset(&empty)
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        func check(_ code: Int32, _ what: String) throws {
            guard code == 0 else { throw LabError.other("cannot start \(path): \(what): \(String(cString: strerror(code)))") }
        }
        try check(posix_spawnattr_setsigmask(&attributes, &empty), "signal mask")
        try check(posix_spawnattr_setsigdefault(&attributes, &defaults), "signal defaults")
        try check(posix_spawnattr_setpgroup(&attributes, 0), "process group")
        try check(posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP)), "flags")

        let writeFlags = O_WRONLY | O_CREAT | O_TRUNC
        try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0), "stdin")
        try check(posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", writeFlags, 0o644), "stdout")
        if let stderr, stderr == stdout {
            try check(posix_spawn_file_actions_adddup2(&actions, 1, 2), "stderr")
        } else {
            try check(posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", writeFlags, 0o644), "stderr")
        }
        if let addCloseFrom {
            try check(addCloseFrom(&actions, 3), "closefrom")
        } else {
            // Older glibc: close every descriptor open now (those opened meanwhile by other
            // threads may leak; Foundation's are close-on-exec anyway).
            let fds = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
            for fd in fds where fd > 2 && fcntl(fd, F_GETFD) >= 0 {
                _ = posix_spawn_file_actions_addclose(&actions, fd)
            }
        }

        var pid: pid_t = 0
        let code = withCStrings(argv) { cArgv in
            withCStrings(env) { cEnv in
                posix_spawn(&pid, path, &actions, &attributes, cArgv, cEnv)
            }
        }
        try check(code, "posix_spawn")
        return pid
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// `kill(2)` under another name (the class has a `kill()` method of its own).
func signalProcess(_ pid: Int32, _ signal: Int32) {
    _ = kill(pid, signal)
}

/// The processes a lab started, and stopping them all.
final class ProcessTracker: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [LabProcess] = []

    var all: [LabProcess] { lock.withLock { list } }

    func add(_ process: LabProcess) { lock.withLock { list.append(process) } }

    /// SIGTERM to every running process, up to `grace` seconds for all of them to end, then
    /// SIGKILL to the rest.
    func stopAll(grace: Double) {
        let running = all.filter(\.isRunning)
        guard !running.isEmpty else { return }
        for process in running { process.send(signal: SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        for process in running {
            process.waitUntilExit(timeout: max(0, deadline.timeIntervalSinceNow))
        }
        for process in running where process.isRunning { process.kill() }
    }
}
