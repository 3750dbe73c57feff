import Foundation
import ShoalAgent

/// How the `linux` driver arms one-shot and default boots.
public enum LinuxBootLoader: Sendable, Equatable {
    /// The machine's GRUB: `grub-reboot ENTRY` (one-shot, `next_entry`), `grub-set-default ENTRY`
    /// (`saved_entry`), and `grub-editenv BOOTDIR/grub/grubenv unset next_entry` to disarm.
    /// `bootDirectory` is passed as `--boot-directory` when set (default `/boot`).
    case grub(bootDirectory: String?, flavor: LinuxGrubFlavor)
    /// A GRUB environment block file edited with `grub-editenv FILE set|unset` only: for a GRUB
    /// whose block is not where `grub-reboot` looks, and for tests (never the machine's own).
    case grubEnvFile(path: String, flavor: LinuxGrubFlavor)
    /// UEFI: `efibootmgr --bootnext XXXX` (one-shot), `--delete-bootnext`, `--bootorder` (default,
    /// the entry moved to the front of the current order); entries found by their label
    /// (``LinuxBootEntryNames``) in `efibootmgr -v`.
    case efi
}

/// The boot-loader names of the systems: GRUB menu entries (titles or ids as `grub-reboot`
/// takes them) or UEFI boot entry labels.
public struct LinuxBootEntryNames: Sendable, Equatable {
    /// The original disk's OS before this driver wrote an image onto it (OS A).
    public var base: String
    /// The original disk's OS after this driver wrote one (same partition, the target's entry).
    public var target: String
    public var staging: String
    public var maintenance: String?

    public init(base: String = "base", target: String = "target", staging: String = "staging", maintenance: String? = nil) {
        self.base = base
        self.target = target
        self.staging = staging
        self.maintenance = maintenance
    }
}

/// Where everything is on one real host.
public struct LinuxDriverConfiguration: Sendable, Equatable {
    /// The original disk (`/dev/sda`) and its OS partition (`/dev/sda2`): wiped and written.
    public var originalDisk: String
    public var originalPartition: String
    /// The staging disk and partition holding the base-OS copy (a second disk, or a second
    /// partition of the original disk: then `stagingDisk == originalDisk`, and the narrower
    /// partition rule of `LinuxDiskGuard.checkMayModifyPartition` applies).
    public var stagingDisk: String
    public var stagingPartition: String
    /// The maintenance image's partition, if the host has one.
    public var maintenancePartition: String?
    public var bootLoader: LinuxBootLoader
    public var entries: LinuxBootEntryNames
    /// Where the stored profile lives inside the staging partition's file system.
    public var profilePath: String
    /// The driver's own files (resume logs, the command log, what it wrote): on the staging disk,
    /// but not on the staging partition itself (that one is mounted to be rendered into). The
    /// agent's `FileOperationStore` goes in `stateDirectory/agent`.
    public var stateDirectory: String
    /// The packed store: `<bundle id>.shoal` files.
    public var bundleDirectory: String
    /// The running system's root, for capture and health checks (`/`; a test points it at a
    /// mounted tree).
    public var liveRoot: String
    /// Where the running root is read from (`/proc/self/mountinfo`).
    public var mountInfoPath: String
    /// `mount -t` for the OS partitions (nil: let mount probe).
    public var fileSystemType: String?

    public init(
        originalDisk: String, originalPartition: String, stagingDisk: String, stagingPartition: String,
        maintenancePartition: String? = nil, bootLoader: LinuxBootLoader, entries: LinuxBootEntryNames = LinuxBootEntryNames(),
        profilePath: String = "/var/lib/shoal/host-profile", stateDirectory: String, bundleDirectory: String? = nil,
        liveRoot: String = "/", mountInfoPath: String = "/proc/self/mountinfo", fileSystemType: String? = nil
    ) {
        self.originalDisk = originalDisk
        self.originalPartition = originalPartition
        self.stagingDisk = stagingDisk
        self.stagingPartition = stagingPartition
        self.maintenancePartition = maintenancePartition
        self.bootLoader = bootLoader
        self.entries = entries
        self.profilePath = profilePath
        self.stateDirectory = stateDirectory
        self.bundleDirectory = bundleDirectory ?? stateDirectory + "/bundles"
        self.liveRoot = liveRoot
        self.mountInfoPath = mountInfoPath
        self.fileSystemType = fileSystemType
    }

    /// The partition behind a boot entry, nil when the host has none.
    public func partition(_ entry: BootEntry) -> String? {
        switch entry {
        case .original: return originalPartition
        case .staging: return stagingPartition
        case .maintenance: return maintenancePartition
        }
    }

    /// The disk a boot entry's partition is on (the maintenance partition's is found by lsblk).
    public func disk(_ entry: BootEntry) -> String? {
        switch entry {
        case .original: return originalDisk
        case .staging: return stagingDisk
        case .maintenance: return nil
        }
    }
}
