#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// One emulated host: its disks, its GRUB environment block, its boot menu and its firmware,
/// all files in one directory (see docs/HOSTLAB.md):
///
/// ```
/// HOST/disk0.img   original disk: GPT "esp" (optional, empty) + "root" (OS A)
/// HOST/disk1.img   staging disk:  GPT "staging" (+ "maintenance" when asked for)
/// HOST/grubenv     the GRUB environment block (grub-editenv)
/// HOST/bootmenu    entry name → disk + partition
/// HOST/booted.json what the last boot booted
/// HOST/boot.log    one line per boot
/// ```
///
/// ```swift
/// let host = try LabHost.create(at: dir, baseImage: "os-a.ext4", stagingImage: "os-a.ext4")
/// try host.boot()                         // base: OS A
/// try host.env.setOneShot("staging")      // grub-reboot staging
/// try host.boot()                         // staging, once
/// try host.boot()                         // base again
/// ```
/// A `LabHost` value holds only paths; every call reads the files afresh, so several
/// processes (the agent "running in" the host, the test driving it) can share one host.
public struct LabHost: Sendable, Hashable {
    /// The host's directory.
    public var directory: String

    /// Sizes of the disks and partitions `create` makes.
    public struct Layout: Sendable, Hashable {
        /// disk0 (the original disk) size in bytes.
        public var disk0Size: UInt64 = 64 << 20
        /// An ESP-like first partition on disk0 (left unformatted); 0 for none.
        public var espSize: UInt64 = 4 << 20
        /// disk0's "root" partition; `nil` fills the rest of the disk. A smaller size leaves
        /// free space after it to grow into.
        public var rootSize: UInt64? = nil
        /// disk1 (the staging disk) size in bytes.
        public var disk1Size: UInt64 = 64 << 20
        /// disk1's "staging" partition; `nil` fills the rest (after any maintenance partition).
        public var stagingSize: UInt64? = nil
        /// A "maintenance" partition on disk1 (placed first); 0 for none.
        public var maintenanceSize: UInt64 = 0

        public init() {}
    }

    /// The partition names `create` gives.
    public static let rootPartition = "root", espPartition = "esp"
    public static let stagingPartition = "staging", maintenancePartition = "maintenance"

    /// The host in `directory` (made by `create`).
    public init(directory: String) { self.directory = directory }

    public var disk0: DiskImage { DiskImage(path: directory + "/disk0.img") }
    public var disk1: DiskImage { DiskImage(path: directory + "/disk1.img") }
    public var env: GrubEnv { GrubEnv(path: directory + "/grubenv") }
    public var menuPath: String { directory + "/bootmenu" }
    public var firmware: LabFirmware { LabFirmware(env: env, menuPath: menuPath, baseDirectory: directory) }
    private var bootedPath: String { directory + "/booted.json" }
    private var bootLogPath: String { directory + "/boot.log" }

    /// The default boot menu: `base` and `target` both boot disk0's root (the target OS is
    /// written where OS A was), `staging` disk1's staging partition, `maintenance` disk1's
    /// maintenance partition when there is one; the default is `base`.
    public static func defaultMenu(maintenance: Bool) -> BootMenu {
        var entries: [BootMenu.Entry] = [
            .init(name: "base", disk: "disk0.img", partition: rootPartition),
            .init(name: "staging", disk: "disk1.img", partition: stagingPartition),
            .init(name: "target", disk: "disk0.img", partition: rootPartition),
        ]
        if maintenance { entries.append(.init(name: "maintenance", disk: "disk1.img", partition: maintenancePartition)) }
        return BootMenu(defaultEntry: "base", entries: entries)
    }

    /// Creates a host: both disks with their GPTs, OS A in disk0's root, the staging image (if
    /// any) in disk1's staging partition, an empty GRUB environment block and the default boot
    /// menu. The host is powered off until `boot()`.
    ///
    /// - Parameters:
    ///   - directory: the host's directory (created; existing host files in it are replaced).
    ///   - baseImage: an ext4 image file of OS A (for example from `OSTree.makeImage`).
    ///   - stagingImage: an ext4 image for the staging partition, `nil` to leave it empty (as
    ///     before the staging bundle has been written to it).
    ///   - maintenanceImage: an ext4 image for the maintenance partition (needs
    ///     `layout.maintenanceSize`).
    ///   - layout: disk and partition sizes.
    /// - Throws: `HostLabError.doesNotFit` when an image is larger than its partition.
    @discardableResult
    public static func create(
        at directory: String, baseImage: String, stagingImage: String? = nil, maintenanceImage: String? = nil,
        layout: Layout = Layout()
    ) throws(HostLabError) -> LabHost {
        guard mkdir(directory, 0o755) == 0 || errno == EEXIST else { throw .errno("mkdir \(directory)") }
        let host = LabHost(directory: directory)
        unlink(host.bootedPath)
        unlink(host.bootLogPath)

        let disk0 = try DiskImage.create(at: host.disk0.path, size: layout.disk0Size)
        var specs0: [PartitionSpec] = []
        if layout.espSize > 0 { specs0.append(PartitionSpec(name: espPartition, size: layout.espSize, type: .efiSystem)) }
        specs0.append(PartitionSpec(name: rootPartition, size: layout.rootSize))
        try disk0.partition(PartitionLayout(specs0))
        try disk0.write(image: baseImage, to: rootPartition)

        let disk1 = try DiskImage.create(at: host.disk1.path, size: layout.disk1Size)
        var specs1: [PartitionSpec] = []
        if layout.maintenanceSize > 0 { specs1.append(PartitionSpec(name: maintenancePartition, size: layout.maintenanceSize)) }
        specs1.append(PartitionSpec(name: stagingPartition, size: layout.stagingSize))
        try disk1.partition(PartitionLayout(specs1))
        if let stagingImage { try disk1.write(image: stagingImage, to: stagingPartition) }
        if let maintenanceImage {
            guard layout.maintenanceSize > 0 else { throw .invalid("a maintenance image needs layout.maintenanceSize") }
            try disk1.write(image: maintenanceImage, to: maintenancePartition)
        }

        _ = try GrubEnv.create(at: host.env.path)
        try defaultMenu(maintenance: layout.maintenanceSize > 0).save(to: host.menuPath)
        return host
    }

    // MARK: Booting

    /// Powers the host on (or reboots it): the firmware picks and boots an entry (see
    /// `LabFirmware` for the rules), and the result is recorded as what now runs.
    /// - Returns: what booted.
    /// - Throws: `HostLabError.noBootableEntry` when nothing boots (the record is then removed:
    ///   the host runs nothing).
    @discardableResult
    public func boot() throws(HostLabError) -> BootRecord {
        // One boot at a time per host: the firmware's read-modify-write of grubenv and the boot
        // record must not interleave when two processes power-cycle the same host.
        let lock = try FileIO.open(directory + "/.boot.lock", O_RDWR | O_CREAT)
        defer { close(lock) }
        while flock(lock, LOCK_EX) != 0 {
            guard errno == EINTR else { throw .errno("flock \(directory)/.boot.lock") }
        }
        let record: BootRecord
        do {
            record = try firmware.boot()
        } catch {
            unlink(bootedPath)
            appendLog("boot failed: \(error)")
            throw error
        }
        do {
            let data = try JSONEncoder().encode(record)
            try data.write(to: URL(fileURLWithPath: bootedPath), options: .atomic)
        } catch {
            throw .invalid("cannot record the boot of \(directory): \(error)")
        }
        appendLog(record.description)
        return record
    }

    /// What the host runs now: the record of its last boot.
    /// - Throws: `HostLabError.notBooted` before the first `boot()` (or after a failed one).
    public func bootedOS() throws(HostLabError) -> BootRecord {
        guard let data = FileManager.default.contents(atPath: bootedPath) else { throw .notBooted(host: directory) }
        do {
            return try JSONDecoder().decode(BootRecord.self, from: data)
        } catch {
            throw .invalid("unreadable boot record \(bootedPath): \(error)")
        }
    }

    /// Cuts the power: afterwards the host runs nothing until the next `boot()`. The disks and
    /// the environment block are left exactly as they are (a pending one-shot stays pending).
    public func powerOff() {
        unlink(bootedPath)
        appendLog("powered off")
    }

    /// The boot log, one line per boot (oldest first).
    public func bootLog() -> [String] {
        guard let data = FileManager.default.contents(atPath: bootLogPath) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// The boot menu.
    public func menu() throws(HostLabError) -> BootMenu { try BootMenu.load(menuPath) }

    /// Changes the boot menu (as running `update-grub` after installing an OS would).
    public func updateMenu(_ change: (inout BootMenu) throws -> Void) throws {
        var menu = try menu()
        try change(&menu)
        try menu.save(to: menuPath)
    }

    private func appendLog(_ line: String) {
        let stamp = ISO8601DateFormatter().string(from: Date())
        let fd = open(bootLogPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let flat = line.split(separator: "\n").joined(separator: " / ")
        let bytes = Array("\(stamp) \(flat)\n".utf8)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
    }

    // MARK: Files of the OSes

    /// The ext4 file system the menu entry `entry` boots.
    public func filesystem(_ entry: String) throws(HostLabError) -> Ext4Filesystem {
        try firmware.filesystem(of: entry)
    }

    /// The OS in the entry's partition, as its `/etc/os-release` says.
    public func osRelease(_ entry: String) throws(HostLabError) -> OSRelease {
        OSRelease(parsing: try filesystem(entry).osReleaseText())
    }

    /// A file of the OS the entry boots.
    public func readFile(_ entry: String, _ path: String) throws(HostLabError) -> [UInt8] {
        try filesystem(entry).readFile(path)
    }

    /// A text file of the OS the entry boots.
    public func readText(_ entry: String, _ path: String) throws(HostLabError) -> String {
        try filesystem(entry).readText(path)
    }

    /// Writes (creates or replaces) a file in the OS the entry boots; parents are created.
    public func writeFile(_ entry: String, _ path: String, contents: [UInt8], mode: UInt32 = 0o644) throws(HostLabError) {
        try filesystem(entry).writeFile(path, contents: contents, mode: mode)
    }

    /// Writes a text file in the OS the entry boots.
    public func writeText(_ entry: String, _ path: String, _ text: String, mode: UInt32 = 0o644) throws(HostLabError) {
        try filesystem(entry).writeText(path, text, mode: mode)
    }
}
