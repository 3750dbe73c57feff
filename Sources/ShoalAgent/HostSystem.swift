/// A boot entry the host's firmware or boot loader knows: where a system boots from.
///
/// The agent never names devices; a driver maps each entry to its partition and boot-loader entry
/// (a GRUB menu entry, a UEFI `Boot####`). The host has three:
/// - ``original``: the original disk's OS partition. It holds OS A before a conversion and the
///   target OS after it.
/// - ``staging``: the staging partition (second disk or second partition) holding the copy of the
///   base OS. The operation state lives on the staging disk too, so it survives the wipe.
/// - ``maintenance``: the partition a maintenance or diagnostic image is booted from.
public enum BootEntry: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    case original
    case staging
    case maintenance

    public var description: String { rawValue }
}

/// The system a step must run in.
///
/// Steps are tagged with the role of the system, which is what the step tables in
/// `docs/AGENT.md` talk about; the runner checks it by the boot entry (``bootEntry``), the one
/// thing a host can observe about itself for sure.
public enum HostSystem: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// The OS on the original disk when the operation starts (OS "A" for a first conversion).
    case base
    /// The staging OS: the copy of the base OS on the staging partition.
    case staging
    /// The OS this operation writes onto the original disk (the target of a conversion or
    /// reinstall, the base OS again for a revert).
    case target
    /// The maintenance image.
    case maintenance

    /// The boot entry this system runs from.
    public var bootEntry: BootEntry {
        switch self {
        case .base, .target: return .original
        case .staging: return .staging
        case .maintenance: return .maintenance
        }
    }

    public var description: String { rawValue }
}
