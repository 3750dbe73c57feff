#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// Runs the external tools the emulated hardware is made of (`sfdisk`, `mke2fs`, `debugfs`,
/// `grub-editenv`, …), synchronously, with captured output.
///
/// Started with `posix_spawn` rather than Foundation's `Process`, for the reason
/// `ShoalLab.LabProcess` gives: a child started from a Swift concurrency thread would inherit that
/// thread's signal mask (almost every signal blocked). Here the child gets an empty signal mask,
/// default signal actions, stdin from a file or `/dev/null`, stdout and stderr into anonymous
/// (already unlinked) temporary files — so no pipe can fill up and block it, and nothing is left
/// on disk — and no other inherited descriptor.
public enum HostTool {
    /// What a finished tool printed.
    public struct Output: Sendable {
        /// The exit status (0 on success).
        public var status: Int32
        /// Standard output, as bytes (`debugfs cat` may print binary file contents).
        public var stdout: [UInt8]
        /// Standard error, decoded as UTF-8.
        public var stderr: String
        /// Standard output decoded as UTF-8.
        public var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// The tools used here and the Debian packages that have them (for the "not installed" message).
    static let packages: [String: String] = [
        "sfdisk": "fdisk", "wipefs": "util-linux", "losetup": "mount", "blkid": "util-linux",
        "mke2fs": "e2fsprogs", "debugfs": "e2fsprogs", "e2fsck": "e2fsprogs", "resize2fs": "e2fsprogs",
        "grub-editenv": "grub-common", "busybox": "busybox-static", "ssh-keygen": "openssh-client",
    ]

    /// The absolute path of `tool`, searched in the sbin and bin directories (which a non-login
    /// `PATH` often lacks) and then `PATH`.
    /// - Throws: `HostLabError.toolMissing` when it is nowhere.
    public static func path(of tool: String) throws(HostLabError) -> String {
        if tool.hasPrefix("/") { return tool }
        let fixed = ["/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"]
        let fromEnv = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for dir in fixed + fromEnv where access("\(dir)/\(tool)", X_OK) == 0 {
            return "\(dir)/\(tool)"
        }
        throw .toolMissing(tool: tool, package: packages[tool] ?? tool)
    }

    /// Runs `argv` (the first element is the tool's name or path) and waits for it.
    ///
    /// ```swift
    /// let table = try HostTool.run(["sfdisk", "-J", "disk0.img"]).text
    /// ```
    /// - Parameters:
    ///   - argv: the tool and its arguments. Nothing goes through a shell.
    ///   - input: bytes for the tool's standard input (`nil`: `/dev/null`).
    ///   - checked: throw when the tool exits non-zero (the default).
    /// - Returns: the exit status and the captured output.
    /// - Throws: `HostLabError.toolMissing`, `.toolFailed` (with the tool's stderr), `.system`.
    @discardableResult
    public static func run(_ argv: [String], input: [UInt8]? = nil, checked: Bool = true) throws(HostLabError) -> Output {
        precondition(!argv.isEmpty, "no tool to run")
        let executable = try path(of: argv[0])
        let stdinFD = try input.map { bytes throws(HostLabError) in try anonymousFile(holding: bytes) }
        defer { if let stdinFD { close(stdinFD) } }
        let stdoutFD = try anonymousFile(holding: [])
        defer { close(stdoutFD) }
        let stderrFD = try anonymousFile(holding: [])
        defer { close(stderrFD) }

        let pid = try spawn(executable, argv: argv, stdin: stdinFD, stdout: stdoutFD, stderr: stderrFD)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw .errno("waitpid \(argv[0])") }
        }
        let low = status & 0x7f
        let exitStatus = low == 0 ? (status >> 8) & 0xff : 128 + low
        let output = Output(
            status: exitStatus, stdout: try readAll(stdoutFD),
            stderr: String(decoding: try readAll(stderrFD), as: UTF8.self))
        if checked && exitStatus != 0 {
            throw .toolFailed(command: describe(argv), status: exitStatus, stderr: output.stderr)
        }
        return output
    }

    /// A short rendering of a command line for messages (long arguments cut).
    static func describe(_ argv: [String]) -> String {
        argv.map { $0.count > 80 ? String($0.prefix(77)) + "..." : $0 }.joined(separator: " ")
    }

    /// A temporary file that is already unlinked, holding `bytes`, positioned at its start.
    private static func anonymousFile(holding bytes: [UInt8]) throws(HostLabError) -> Int32 {
        var template = Array("/tmp/shoal-hostlab-io-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw .errno("mkstemp /tmp") }
        // Close-on-exec so parallel spawns do not leak it into each other's tools (posix_spawn's
        // dup2 onto 0/1/2 clears the flag on the copies the tool gets).
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        template.withUnsafeBufferPointer { _ = unlink($0.baseAddress!) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { close(fd); throw .errno("write tool input") }
            done += n
        }
        lseek(fd, 0, SEEK_SET)
        return fd
    }

    private static func readAll(_ fd: Int32) throws(HostLabError) -> [UInt8] {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var offset: off_t = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, offset) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .errno("read tool output") }
            if n == 0 { return result }
            result.append(contentsOf: buffer[0..<n])
            offset += off_t(n)
        }
    }

    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which Swift's Glibc module does
    /// not export.
    private static let addCloseFrom: CloseFrom? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np")
        else { return nil }
        return unsafeBitCast(symbol, to: CloseFrom.self)
    }()

    private static func spawn(
        _ executable: String, argv: [String], stdin: Int32?, stdout: Int32, stderr: Int32
    ) throws(HostLabError) -> pid_t {
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
        func check(_ code: Int32, _ what: String) throws(HostLabError) {
            guard code == 0 else { throw .system(operation: "posix_spawn \(executable): \(what)", errno: code) }
        }
        try check(posix_spawnattr_setsigmask(&attributes, &empty), "signal mask")
        try check(posix_spawnattr_setsigdefault(&attributes, &defaults), "signal defaults")
        try check(posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)), "flags")
        if let stdin {
            try check(posix_spawn_file_actions_adddup2(&actions, stdin, 0), "stdin")
        } else {
            try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0), "stdin")
        }
        try check(posix_spawn_file_actions_adddup2(&actions, stdout, 1), "stdout")
        try check(posix_spawn_file_actions_adddup2(&actions, stderr, 2), "stderr")
        if let addCloseFrom {
            try check(addCloseFrom(&actions, 3), "closefrom")
        }
        // Without closefrom (glibc < 2.34) descriptors opened elsewhere without O_CLOEXEC could
        // leak into the tool; ours are all close-on-exec.

        // Stable, parseable output; no pager for debugfs.
        var environment = ProcessInfo.processInfo.environment
        environment["LC_ALL"] = "C"
        environment["PAGER"] = "__none__"
        environment["DEBUGFS_PAGER"] = "__none__"
        let env = environment.map { "\($0.key)=\($0.value)" }

        var pid: pid_t = 0
        let code = withCStrings(argv) { cArgv in
            withCStrings(env) { cEnv in posix_spawn(&pid, executable, &actions, &attributes, cArgv, cEnv) }
        }
        try check(code, "spawn")
        return pid
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for pointer in pointers { free(pointer) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
