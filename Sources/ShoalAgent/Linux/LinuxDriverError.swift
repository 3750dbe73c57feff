/// Failures of the `linux` driver's planning: refusals to touch a disk, bad arguments, and
/// command output it could not understand. `description` is what the step log and the CLI show.
public enum LinuxDriverError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The device is, or is on, a disk that holds the running root file system.
    case holdsRunningRoot(device: String, disk: String, root: String)
    /// The device, one of its partitions, or a device stacked on it is mounted or used as swap.
    case deviceInUse(device: String, user: String, mountpoint: String)
    /// The device is not in the `lsblk` listing (resolve `/dev/disk/by-*` links before asking).
    case unknownDevice(String)
    /// The root file system's device could not be found: nothing may be touched until it is.
    case rootNotFound(String)
    /// An argument would make a wrong or dangerous command line.
    case invalidArgument(String)
    /// Output of a command could not be parsed (`source` names the command or file).
    case unparsable(source: String, reason: String)
    /// No UEFI boot entry has this label.
    case bootEntryNotFound(label: String, available: [String])
    /// More than one UEFI boot entry has this label.
    case bootEntryAmbiguous(label: String, numbers: [String])

    public var description: String {
        switch self {
        case .holdsRunningRoot(let device, let disk, let root):
            return "refusing to touch \(device): it is on disk \(disk), which holds the running root file system (\(root))"
        case .deviceInUse(let device, let user, let mountpoint):
            return "refusing to touch \(device): \(user) is in use at \(mountpoint)"
        case .unknownDevice(let d): return "unknown block device \(d) (not listed by lsblk)"
        case .rootNotFound(let why): return "cannot tell which disk holds the running root, so no disk may be touched: \(why)"
        case .invalidArgument(let why): return "invalid argument: \(why)"
        case .unparsable(let source, let reason): return "cannot parse \(source): \(reason)"
        case .bootEntryNotFound(let label, let available):
            return "no UEFI boot entry labelled '\(label)' (entries: \(available.isEmpty ? "none" : available.joined(separator: ", ")))"
        case .bootEntryAmbiguous(let label, let numbers):
            return "UEFI boot entry label '\(label)' is ambiguous: Boot\(numbers.joined(separator: ", Boot"))"
        }
    }
}
