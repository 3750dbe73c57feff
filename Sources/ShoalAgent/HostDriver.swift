import Foundation

/// Where a captured host profile is stored, and its checksum.
///
/// The agent treats profiles as opaque: the driver captures, stores, checks and renders them
/// (the profile model itself lives in `ShoalHostProfile`). The reference is persisted in the
/// operation record so every later step, in every system, names the same stored profile.
public struct ProfileReference: Codable, Sendable, Equatable {
    /// Where the driver stored it, on the staging disk (a path or a key the driver understands).
    public var location: String
    /// The checksum the driver stored with it (hex SHA-256 of the serialised profile).
    public var checksum: String

    public init(location: String, checksum: String) {
        self.location = location
        self.checksum = checksum
    }
}

/// What the driver knows about one bundle on this host.
public enum BundleState: Sendable, Equatable {
    /// Not on the host at all.
    case missing
    /// Still arriving: `have` of `total` chunks verified so far.
    case incomplete(have: Int, total: Int)
    /// Present but failed verification (signature, manifest, a chunk's hash); `detail` says which.
    case corrupt(String)
    /// Complete and verified; the image it unpacks to is `imageBytes` long.
    case verified(imageBytes: UInt64)
}

/// One partition a boot entry boots from.
public struct PartitionFacts: Sendable, Equatable {
    /// Its current size in bytes.
    public var sizeBytes: UInt64
    /// Free space directly after it that it can grow into, in bytes.
    public var growableBytes: UInt64

    public init(sizeBytes: UInt64, growableBytes: UInt64) {
        self.sizeBytes = sizeBytes
        self.growableBytes = growableBytes
    }
}

/// The result of checking a stored profile against its checksum.
public enum ProfileCheck: Sendable, Equatable {
    case intact
    case missing
    case corrupt(String)
}

/// Everything preflight decides from. Gathering it must change nothing on the host.
public struct PreflightFacts: Sendable, Equatable {
    /// The state of every bundle the operation names (by reference). A bundle not listed is missing.
    public var bundles: [String: BundleState]
    /// The partition behind each boot entry. An entry not listed does not exist on this host.
    public var partitions: [BootEntry: PartitionFacts]
    /// Why the disk layout is not the expected one (a missing staging disk, a partition table the
    /// driver does not recognise, the running root on the disk to be wiped…); nil when it is.
    public var layoutProblem: String?
    /// The profile stored on the staging disk by an earlier operation, if any, and its state.
    public var storedProfile: ProfileReference?
    public var storedProfileCheck: ProfileCheck

    public init(
        bundles: [String: BundleState], partitions: [BootEntry: PartitionFacts], layoutProblem: String? = nil,
        storedProfile: ProfileReference? = nil, storedProfileCheck: ProfileCheck = .missing
    ) {
        self.bundles = bundles
        self.partitions = partitions
        self.layoutProblem = layoutProblem
        self.storedProfile = storedProfile
        self.storedProfileCheck = storedProfileCheck
    }
}

/// What a health check of a freshly booted target found.
public struct HealthReport: Sendable, Equatable {
    /// Same address, same identity, and the agent reported in.
    public var healthy: Bool
    /// What is missing when not healthy (shown in the step log).
    public var detail: String

    public init(healthy: Bool, detail: String = "") {
        self.healthy = healthy
        self.detail = detail
    }
}

/// The state of a booted maintenance image's job.
public enum MaintenanceStatus: Sendable, Equatable {
    /// Still working (active mode), or no completion signal yet (passive mode).
    case running
    /// Finished successfully.
    case succeeded
    /// Finished and reported a failure.
    case failed(String)
}

/// The host primitives the agent's steps are made of.
///
/// Implemented by the `linux` driver (sfdisk, wipefs, GRUB or efibootmgr, mounts, systemctl) and the
/// `lab` driver (disk-image files, a real GRUB environment block, a process restart as reboot), and
/// by a fake in the tests. Bundles are referenced by id and profiles by ``ProfileReference``; the
/// agent never opens either.
///
/// **Idempotency.** The agent persists a step as started before calling the driver and as done
/// after; a power loss in between makes the agent call the same method again on the next start,
/// possibly after the first call did part or all of its work. So every method that changes the host
/// must be safe to call again with the same arguments and must leave the same result as one
/// complete call. Each method states how. Read-only methods must change nothing.
///
/// **Cancellation.** A driver that is cancelled (the agent is shutting down) throws
/// `CancellationError`; the agent then records nothing and re-runs the step on the next start.
///
/// **Deadlines.** Long actions get the step's deadline and should give up by it; the agent fails
/// a step whose action returns after its deadline but never kills an action in progress.
public protocol HostDriver: Sendable {
    /// The boot entry the running system was booted from (read from the kernel command line, the
    /// root device, UEFI `BootCurrent`…). Read-only. This is how the agent knows where it is.
    func bootedEntry() async throws -> BootEntry

    /// The facts preflight decides from, for the named bundles. Read-only: verifying bundles may
    /// take time but must not change them, the disks or the boot configuration.
    func preflightFacts(bundles: [String]) async throws -> PreflightFacts

    /// Captures the host profile (network configuration and security data) from the running
    /// system and stores it, with its checksum, on the staging disk.
    /// Idempotent: capturing again replaces the stored profile atomically (write, fsync, rename).
    /// - Returns: where it was stored and its checksum.
    func captureProfile() async throws -> ProfileReference

    /// Loads the stored profile and checks it against its checksum. Read-only.
    func checkProfile(_ profile: ProfileReference) async throws -> ProfileCheck

    /// Renders the profile into the file system behind `entry`, in the format of the OS found
    /// there (ifupdown, systemd-networkd, netplan, NetworkManager; an unattend file for Windows).
    /// `system` names the bundle that OS came from, for drivers that pick the format from it.
    /// Idempotent: rendering again overwrites the same files with the same content.
    func renderProfile(_ profile: ProfileReference, into entry: BootEntry, system: String?) async throws

    /// Arms a one-shot boot into `entry` for the next boot only (GRUB `next_entry`, UEFI
    /// `BootNext`). The firmware consumes it at that boot. Idempotent.
    func setOneShotBoot(_ entry: BootEntry) async throws

    /// Clears a one-shot boot, if one is armed. Idempotent.
    func clearOneShotBoot() async throws

    /// Makes `entry` the default boot (GRUB `saved_entry`, UEFI `BootOrder`). Idempotent.
    func setDefaultBoot(_ entry: BootEntry) async throws

    /// Asks the host to reboot (`systemctl reboot`). May return before the host goes down; the
    /// agent returns right after and expects to be restarted by the next boot. The agent calls it
    /// at most once per reboot step.
    func reboot() async throws

    /// Grows the partition behind `entry` into the free space after it, to at least `bytes`.
    /// Idempotent: a partition already that large is left alone. Only called from a system that
    /// does not run from that partition.
    func growPartition(_ entry: BootEntry, toBytes bytes: UInt64) async throws

    /// Wipes the original disk's OS partitions (signatures and partition contents; the partition
    /// table stays). Must refuse the disk that holds the running root. Idempotent.
    func wipeOriginalDisk() async throws

    /// Writes the image of `bundle` from the packed store onto the partition behind `entry`
    /// (zstd decode, io_uring, every chunk verified), and syncs it. Idempotent and resumable: a
    /// second call resumes or re-checks a finished write.
    func writeImage(bundle: String, to entry: BootEntry, deadline: Date) async throws

    /// Checks the freshly booted target: same address, same identity, agent reported in.
    /// Read-only; the agent polls it until healthy or the deadline.
    func checkHealth() async throws -> HealthReport

    /// Looks at the maintenance image's job: polls it (`.active`) or checks for its completion
    /// signal (`.passive`). Read-only.
    func maintenanceStatus(monitoring: MaintenanceMonitoring) async throws -> MaintenanceStatus

    /// Makes a bundle of the OS behind `entry` (which must not be the running system) named
    /// `name`, and stores it in the packed store. Idempotent: the same disk content gives the same
    /// bundle; a partial bundle from an interrupted call is replaced.
    /// - Returns: the new bundle's id.
    func captureBundle(of entry: BootEntry, name: String, deadline: Date) async throws -> String

    /// Announces a bundle from the packed store to the fleet (the coordinator and the swarm).
    /// Idempotent: publishing a published bundle does nothing.
    func publishBundle(_ bundle: String) async throws
}
