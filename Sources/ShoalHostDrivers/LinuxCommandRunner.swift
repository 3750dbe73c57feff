import Foundation
import ShoalAgent
import ShoalHostLab

/// What a command printed and how it ended.
public struct LinuxCommandOutput: Sendable, Equatable {
    public var status: Int32
    public var stdout: [UInt8]
    public var stderr: String

    public init(status: Int32 = 0, stdout: [UInt8] = [], stderr: String = "") {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    public init(text: String) { self.init(stdout: Array(text.utf8)) }

    /// Standard output as UTF-8.
    public var text: String { String(decoding: stdout, as: UTF8.self) }
}

/// A command of the `linux` driver that did not run, or did not succeed.
public struct LinuxCommandError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The command as the step log shows it (`LinuxCommand.displayString`).
    public var command: String
    /// The exit status, nil when it could not be started (or a runner refused it).
    public var status: Int32?
    public var detail: String

    public init(command: String, status: Int32?, detail: String) {
        self.command = command
        self.status = status
        self.detail = detail
    }

    public var description: String {
        let what = status.map { "exited \($0)" } ?? "did not run"
        let text = detail.trimmingCharacters(in: .whitespacesAndNewlines)
        return "`\(command)` \(what)" + (text.isEmpty ? "" : ": \(text)")
    }
}

/// Runs the commands ``LinuxDriver`` builds with `LinuxCommands`.
///
/// The driver never starts a process itself: everything it does to the host (sfdisk, wipefs,
/// mount, GRUB, efibootmgr, systemctl, ip, lsblk) goes through one of these, so a test can run
/// the harmless commands for real, record the dangerous ones (a reboot, the machine's own boot
/// configuration) instead of running them, and refuse anything it did not expect.
public protocol LinuxCommandRunner: Sendable {
    /// Runs `command` to its end and returns its output.
    /// - Throws: ``LinuxCommandError`` when it cannot be started or exits non-zero (the runner
    ///   decides; the process runner throws for every non-zero status).
    func run(_ command: LinuxCommand) throws -> LinuxCommandOutput
}

/// The real runner: `posix_spawn` through `ShoalHostLab.HostTool` (empty signal mask, no
/// inherited descriptors, output into unlinked temporary files, `LC_ALL=C`), tools looked up in
/// the sbin and bin directories, standard input from the command's script or `/dev/null`.
public struct LinuxProcessRunner: LinuxCommandRunner {
    public init() {}

    public func run(_ command: LinuxCommand) throws -> LinuxCommandOutput {
        let output: HostTool.Output
        do {
            output = try HostTool.run(command.argv, input: command.standardInput.map { Array($0.utf8) }, checked: false)
        } catch {
            throw LinuxCommandError(command: command.displayString, status: nil, detail: "\(error)")
        }
        guard output.status == 0 else {
            throw LinuxCommandError(command: command.displayString, status: output.status, detail: output.stderr)
        }
        return LinuxCommandOutput(status: output.status, stdout: output.stdout, stderr: output.stderr)
    }
}
