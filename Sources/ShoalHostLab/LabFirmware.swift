#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// Where the entry a boot chose came from.
public enum BootSource: String, Sendable, Hashable, Codable, CustomStringConvertible {
    /// `next_entry` was set (`grub-reboot`): booted once, and cleared.
    case oneShot = "next_entry"
    /// `saved_entry` (`grub-set-default`).
    case saved = "saved_entry"
    /// Neither was set: the boot menu's default.
    case menuDefault = "default"

    public var description: String { rawValue }
}

/// What the firmware booted.
public struct BootRecord: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The entry that booted.
    public var entry: String
    /// The entry that was asked for (differs from `entry` after a fallback).
    public var requested: String
    /// Which variable asked for it.
    public var source: BootSource
    /// Why the requested entry did not boot, when the firmware fell back to the default.
    public var fallbackReason: String?
    /// The disk image (absolute path) and partition it booted from.
    public var disk: String
    public var partition: String
    /// The booted OS's `/etc/os-release`.
    public var osRelease: OSRelease

    /// Whether the requested entry booted.
    public var fellBack: Bool { fallbackReason != nil }

    public var description: String {
        var text = "booted \(entry) (\(source)) from \(disk):\(partition): \(osRelease)"
        if let fallbackReason { text += "; \(requested) did not boot: \(fallbackReason)" }
        return text
    }
}

/// The lab host's firmware and boot loader: it picks an entry from the GRUB environment block
/// the way the `grub.cfg` that `grub-mkconfig` writes does, and "boots" it by finding an OS in
/// the entry's partition.
///
/// The rules (GRUB's 00_header with `GRUB_DEFAULT=saved`, plus `fallback` set to the default):
/// 1. `next_entry` set and non-empty: it is chosen and cleared (`set next_entry=` +
///    `save_env next_entry`) before anything is loaded, so it wins exactly once even when that
///    boot fails.
/// 2. Otherwise `saved_entry` when set and non-empty.
/// 3. Otherwise the boot menu's `default`.
/// 4. A chosen entry that is not in the menu, or whose partition holds no ext4 file system with
///    an os-release (`/etc/os-release`, else `/usr/lib/os-release` as os-release(5) says: a
///    Debian `/etc/os-release` is a symlink to `../usr/lib/os-release`), does not boot: the firmware falls back to the menu's default entry.
///    When that does not boot either the host is dead (`HostLabError.noBootableEntry`).
public struct LabFirmware: Sendable {
    /// The environment block it reads and writes.
    public var env: GrubEnv
    /// The boot menu file.
    public var menuPath: String
    /// The directory relative disk paths in the menu are resolved against.
    public var baseDirectory: String

    public init(env: GrubEnv, menuPath: String, baseDirectory: String) {
        self.env = env
        self.menuPath = menuPath
        self.baseDirectory = baseDirectory
    }

    /// The entry the next boot will choose and why, without booting or changing anything
    /// (rules 1–3; whether it will actually boot is only known at boot).
    public func nextChoice() throws(HostLabError) -> (entry: String, source: BootSource) {
        let menu = try BootMenu.load(menuPath)
        let variables = try env.variables()
        if let next = variables[GrubEnv.nextEntry], !next.isEmpty { return (next, .oneShot) }
        if let saved = variables[GrubEnv.savedEntry], !saved.isEmpty { return (saved, .saved) }
        return (menu.defaultEntry, .menuDefault)
    }

    /// Boots: chooses the entry by the rules above, consumes a one-shot, and finds the OS.
    /// - Returns: what booted.
    /// - Throws: `HostLabError.noBootableEntry` when neither the chosen nor the default entry
    ///   boots; configuration errors for a missing or malformed environment block or menu.
    public func boot() throws(HostLabError) -> BootRecord {
        let menu = try BootMenu.load(menuPath)
        let (requested, source) = try nextChoice()
        if source == .oneShot {
            // As grub.cfg does: cleared to empty before the kernel is loaded.
            try env.set(GrubEnv.nextEntry, to: "")
        }
        do {
            return try load(requested, menu: menu, source: source)
        } catch let failure {
            let reason = LabFirmware.reason(failure)
            guard requested != menu.defaultEntry else {
                throw .noBootableEntry("default entry \(requested) does not boot: \(reason)")
            }
            do {
                var record = try load(menu.defaultEntry, menu: menu, source: source)
                record.requested = requested
                record.fallbackReason = reason
                return record
            } catch let second {
                throw .noBootableEntry("\(requested) does not boot (\(reason)), nor the default \(menu.defaultEntry) (\(LabFirmware.reason(second)))")
            }
        }
    }

    /// The disk image path of a menu entry, absolute.
    public func diskPath(of entry: BootMenu.Entry) -> String {
        entry.disk.hasPrefix("/") ? entry.disk : baseDirectory + "/" + entry.disk
    }

    /// The file system of the menu entry `name`.
    /// - Throws: `HostLabError.unknownBootEntry`, `.partitionNotFound`.
    public func filesystem(of name: String) throws(HostLabError) -> Ext4Filesystem {
        let menu = try BootMenu.load(menuPath)
        guard let entry = menu.entry(name) else { throw .unknownBootEntry(name) }
        return try DiskImage(path: diskPath(of: entry)).filesystem(in: entry.partition)
    }

    private func load(_ name: String, menu: BootMenu, source: BootSource) throws(HostLabError) -> BootRecord {
        guard let entry = menu.entry(name) else { throw .unknownBootEntry(name) }
        let disk = diskPath(of: entry)
        guard access(disk, R_OK) == 0 else { throw .invalid("disk \(disk) is missing") }
        let filesystem = try DiskImage(path: disk).filesystem(in: entry.partition)
        let release = try OSRelease(parsing: filesystem.osReleaseText())
        return BootRecord(
            entry: name, requested: name, source: source, fallbackReason: nil,
            disk: disk, partition: entry.partition, osRelease: release)
    }

    private static func reason(_ error: HostLabError) -> String {
        switch error {
        case .unknownBootEntry(let name): return "no menu entry \(name)"
        case .fileNotFound: return "no /etc/os-release"
        case .toolFailed(_, _, let stderr):
            if stderr.contains("Bad magic number") || stderr.contains("Superblock invalid") { return "no ext4 file system" }
            return "unreadable file system: " + (stderr.split(separator: "\n").first.map(String.init) ?? "")
        default: return error.description
        }
    }
}
