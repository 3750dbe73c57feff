import ShoalTopology

/// How a lab emulates the datacenter.
public enum LabMode: String, Sendable, Hashable, CustomStringConvertible {
    /// Every host in its own network namespace, sites behind bridges and routers, every link
    /// shaped with HTB by the kernel (`NetworkLab`; needs root).
    case netns
    /// Every host on its own loopback address, no shaping: the application enforces the
    /// topology's rates itself (`LoopbackLab`; no privileges needed).
    case loopback

    public var description: String { rawValue }
}

/// An emulated datacenter for a topology: an address per machine and a way to run real processes
/// "on" a machine. `NetworkLab` (namespaces, shaped links) and `LoopbackLab` (loopback addresses)
/// both conform, so a caller such as `shoal lab run` can use either:
///
/// ```swift
/// let lab: any Lab = NetworkLab.isSupported ? try NetworkLab.build(topology: t) : LoopbackLab(topology: t)
/// defer { lab.teardown() }
/// let peer = try lab.spawn(in: "a1", executable: "/usr/local/bin/shoal",
///                          arguments: ["peer", "--listen", lab.address(of: "a1") + ":7000"])
/// ```
///
/// Machine names are the topology's host names, its seed names and the origin's name (the seeds
/// and the coordinator all live at the origin and share its address).
public protocol Lab: AnyObject, Sendable {
    /// `netns` or `loopback`; reports carry it as `mode`.
    var mode: LabMode { get }
    /// The topology the lab was made for.
    var topology: Topology { get }
    /// The IPv4 address of the origin: where the seeds and the coordinator listen.
    var originAddress: String { get }
    /// The IPv4 address of a host, of a seed or of the origin (dotted quad, no prefix length).
    /// A name that is not in the topology is a programming error and traps.
    func address(of name: String) -> String
    /// Starts `executable arguments…` on a machine of the lab and tracks it until `teardown()`.
    ///
    /// - Parameters:
    ///   - target: a host name, a seed name or the origin's name (`NetworkLab` also takes the
    ///     name of any namespace it created).
    ///   - executable: an absolute path, or a name looked up in `PATH` (then `/usr/sbin`, …).
    ///   - environment: variables added to (or replacing those of) this process's environment;
    ///     `nil` passes the environment on unchanged.
    ///   - stdout: a file to write standard output to (created or truncated); `nil` discards it.
    ///   - stderr: likewise for standard error.
    func spawn(in target: String, executable: String, arguments: [String], environment: [String: String]?,
               stdout: String?, stderr: String?) throws -> LabProcess
    /// Every process started with `spawn`, in start order (running or not).
    var processes: [LabProcess] { get }
    /// Stops every tracked process and removes everything the lab made. Idempotent.
    func teardown()
}

extension Lab {
    /// `spawn` with the environment passed on and the output discarded.
    public func spawn(in target: String, executable: String, arguments: [String] = []) throws -> LabProcess {
        try spawn(in: target, executable: executable, arguments: arguments, environment: nil, stdout: nil, stderr: nil)
    }
}

/// What went wrong while building, using or tearing down a lab.
public enum LabError: Error, Sendable, CustomStringConvertible {
    /// Network namespaces need root (`CAP_SYS_ADMIN` and `CAP_NET_ADMIN`) and a working `ip netns`.
    case unsupported(String)
    /// The topology does not fit the lab's address plan (too many sites or hosts per site).
    case topologyTooLarge(String)
    /// A run ID with characters other than ASCII letters and digits, or too long.
    case invalidRunID(String)
    /// A helper command (`ip`, `tc`, …) failed.
    case commandFailed(command: String, status: Int32, message: String)
    /// A shaped link reads back from `tc` with a rate other than the topology's.
    case shapingMismatch(String)
    /// `spawn(in:)` or an accessor was given a name that is neither a machine nor a namespace of this lab.
    case unknownTarget(String)
    /// The executable to spawn was not found.
    case executableNotFound(String)
    /// The lab was already torn down.
    case tornDown
    /// Something else, described.
    case other(String)

    public var description: String {
        switch self {
        case .unsupported(let why): return "network lab unsupported: \(why)"
        case .topologyTooLarge(let why): return "topology too large for the lab: \(why)"
        case .invalidRunID(let id): return "invalid lab run ID \"\(id)\": use 1 to 24 ASCII letters and digits"
        case .commandFailed(let command, let status, let message):
            return "command failed (status \(status)): \(command)" + (message.isEmpty ? "" : ": \(message)")
        case .shapingMismatch(let why): return "shaping mismatch: \(why)"
        case .unknownTarget(let name): return "no machine or namespace \"\(name)\" in this lab"
        case .executableNotFound(let name): return "executable not found: \(name)"
        case .tornDown: return "the lab was torn down"
        case .other(let why): return why
        }
    }
}
