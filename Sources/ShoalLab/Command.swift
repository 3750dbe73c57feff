#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The result of one finished helper command (`ip`, `tc`, …).
struct CommandResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the short-lived helper commands the lab is built with, and finds executables.
enum Command {
    /// Directories searched after `PATH`: `ip` and `tc` live in `/usr/sbin`, which a non-login
    /// shell of an ordinary user may not have on its `PATH`.
    static let fallbackDirectories = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

    /// The absolute path of `name` (searched in `PATH`, then the usual system directories), or
    /// `nil` if there is no such executable. A name containing `/` is returned as is when it
    /// names an executable file.
    static func find(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + fallbackDirectories
        for directory in directories where !directory.isEmpty {
            let candidate = directory + "/" + name
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
               access(candidate, X_OK) == 0 {
                return candidate
            }
        }
        return nil
    }

    /// `ip`'s path (`/usr/sbin/ip` on Debian).
    static let ip: String = find("ip") ?? "/usr/sbin/ip"
    /// `tc`'s path (`/usr/sbin/tc` on Debian).
    static let tc: String = find("tc") ?? "/usr/sbin/tc"

    /// Runs `executable arguments…` to completion and returns its status and output. `stdin`, if
    /// given, is written to the command's standard input.
    static func run(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = stdin.map { _ in Pipe() }
        process.standardInput = input ?? FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw LabError.commandFailed(command: render(executable, arguments), status: -1, message: "\(error)")
        }
        if let input, let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try? input.fileHandleForWriting.close()
        }
        // Drain stderr on another thread so neither pipe can fill up and block the child.
        let errorBox = DataBox()
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            errorBox.data = err.fileHandleForReading.readDataToEndOfFile()
            drained.signal()
        }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        let status = process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
        return CommandResult(status: status, stdout: String(decoding: output, as: UTF8.self), stderr: String(decoding: errorBox.data, as: UTF8.self))
    }

    /// Runs the command and throws `LabError.commandFailed` (with its stderr) unless it exits 0.
    @discardableResult
    static func check(_ executable: String, _ arguments: [String], stdin: String? = nil) throws -> String {
        let result = try run(executable, arguments, stdin: stdin)
        guard result.status == 0 else {
            throw LabError.commandFailed(command: render(executable, arguments), status: result.status,
                                         message: result.stderr.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return result.stdout
    }

    /// `ip ARGS…`, which must succeed.
    @discardableResult
    static func ip(_ arguments: String...) throws -> String { try check(ip, arguments) }

    /// `tc ARGS…`, which must succeed.
    @discardableResult
    static func tc(_ arguments: [String]) throws -> String { try check(tc, arguments) }

    /// The command as a shell-like line, for messages.
    static func render(_ executable: String, _ arguments: [String]) -> String {
        ([executable] + arguments).map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }.joined(separator: " ")
    }
}

/// A mutable box handed to the stderr-draining thread (written once, read after the semaphore).
private final class DataBox: @unchecked Sendable {
    var data = Data()
}

/// Process liveness and identity, for deciding whether a lab's owner is still running.
enum ProcessInfoProbe {
    /// Whether a process with this PID exists (it may belong to another user).
    static func isAlive(_ pid: Int32) -> Bool {
        guard pid > 0 else { return false }
        if kill(pid, 0) == 0 { return true }
        return errno == EPERM
    }

    /// The process's start time in clock ticks since boot (field 22 of `/proc/PID/stat`), which
    /// tells a live owner from an unrelated process that later got the same PID.
    static func startTime(of pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may contain spaces), starting with field 3.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }
}
