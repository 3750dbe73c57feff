#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A failure of the emulated host hardware, worded for the operator who reads a lab log.
public enum HostLabError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A required tool is not installed (`package` names the Debian package that has it).
    case toolMissing(tool: String, package: String)
    /// A tool exited non-zero (or reported an error on stderr, as `debugfs` does with exit 0).
    case toolFailed(command: String, status: Int32, stderr: String)
    /// A system call failed. `operation` names it (with the path), `errno` says why.
    case system(operation: String, errno: Int32)
    /// The disk image holds no partition table.
    case noPartitionTable(disk: String)
    /// No partition with this name or number on the disk.
    case partitionNotFound(disk: String, partition: String)
    /// The file or directory does not exist in the file system.
    case fileNotFound(path: String, in: String)
    /// A path or name that the tools cannot take safely (relative, with whitespace or quotes, …).
    case badPath(String)
    /// Data does not fit where it should go (an image into a partition, a partition into a disk, …).
    case doesNotFit(String)
    /// The GRUB environment block or the boot menu is malformed.
    case badBootConfiguration(String)
    /// The boot menu has no entry of this name.
    case unknownBootEntry(String)
    /// Neither the chosen entry nor the default one holds a bootable OS: the host is dead.
    case noBootableEntry(String)
    /// The host has not been booted yet (call `LabHost.boot()` first).
    case notBooted(host: String)
    /// Any other invalid argument or state.
    case invalid(String)

    public var description: String {
        switch self {
        case .toolMissing(let tool, let package):
            return "\(tool) is not installed (apt-get install \(package))"
        case .toolFailed(let command, let status, let stderr):
            let detail = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            return "\(command) failed (exit \(status))" + (detail.isEmpty ? "" : ": \(detail)")
        case .system(let operation, let code):
            return "\(operation): \(String(cString: strerror(code))) (errno \(code))"
        case .noPartitionTable(let disk): return "\(disk) has no partition table"
        case .partitionNotFound(let disk, let partition): return "\(disk) has no partition \(partition)"
        case .fileNotFound(let path, let place): return "\(path) does not exist in \(place)"
        case .badPath(let path): return "unusable path or name: \(path)"
        case .doesNotFit(let what): return "does not fit: \(what)"
        case .badBootConfiguration(let what): return "bad boot configuration: \(what)"
        case .unknownBootEntry(let entry): return "no boot entry named \(entry)"
        case .noBootableEntry(let what): return "nothing bootable: \(what)"
        case .notBooted(let host): return "host \(host) has not been booted"
        case .invalid(let what): return what
        }
    }

    static func errno(_ operation: String, _ code: Int32 = Glibc.errno) -> HostLabError {
        .system(operation: operation, errno: code)
    }
}
