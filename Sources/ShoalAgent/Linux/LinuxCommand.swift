/// One command the `linux` driver will run: the argument vector (no shell ever sees it) and,
/// for commands that read a script (`sfdisk`), what goes to standard input.
///
/// Building commands is separate from running them so that every command line the driver can
/// produce is unit-tested, and so the step log can show exactly what ran.
///
/// ```swift
/// let cmd = try LinuxCommands.grubReboot(entry: "shoal-staging")
/// cmd.argv            // ["grub-reboot", "shoal-staging"]
/// cmd.displayString   // "grub-reboot shoal-staging"
/// ```
public struct LinuxCommand: Hashable, Sendable, CustomStringConvertible {
    /// The program, looked up in `PATH` by the runner (`sfdisk`), or an absolute path.
    public var executable: String
    public var arguments: [String]
    /// Standard input, if the command reads one.
    public var standardInput: String?

    public init(_ executable: String, _ arguments: [String], standardInput: String? = nil) {
        self.executable = executable
        self.arguments = arguments
        self.standardInput = standardInput
    }

    public var argv: [String] { [executable] + arguments }

    /// The command as a shell would need it typed (single-quoted where needed), for logs.
    public var displayString: String {
        argv.map(LinuxCommand.shellQuote).joined(separator: " ") + (standardInput == nil ? "" : " <<< (script)")
    }

    public var description: String { displayString }

    static func shellQuote(_ s: String) -> String {
        let safe = s.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || "-_./=:,+@%".unicodeScalars.contains($0)
        }
        return safe && !s.isEmpty ? s : "'" + s.split(separator: "'", omittingEmptySubsequences: false).joined(separator: "'\\''") + "'"
    }
}

/// Which GRUB tools the target has: Debian and Ubuntu name them `grub-*`, Fedora, RHEL and SUSE `grub2-*`.
public enum LinuxGrubFlavor: String, Sendable, Hashable, CaseIterable {
    case grub = "grub"
    case grub2 = "grub2"
}

/// A `grub-editenv` operation.
public enum LinuxGrubEnvOperation: Hashable, Sendable {
    case set([(String, String)])
    case unset([String])
    case list

    public static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case (.set(let x), .set(let y)): return x.map { [$0.0, $0.1] } == y.map { [$0.0, $0.1] }
        case (.unset(let x), .unset(let y)): return x == y
        case (.list, .list): return true
        default: return false
        }
    }

    public func hash(into h: inout Hasher) {
        switch self {
        case .set(let pairs): h.combine(0); for (k, v) in pairs { h.combine(k); h.combine(v) }
        case .unset(let keys): h.combine(1); h.combine(keys)
        case .list: h.combine(2)
        }
    }
}

/// Builders for every command the `linux` driver runs. None of them executes anything.
///
/// Device and file arguments must be absolute paths: besides catching mistakes, a path that starts
/// with `/` can never be taken for an option.
public enum LinuxCommands {
    // MARK: Partitioning

    /// `sfdisk --no-reread --wipe always --wipe-partitions always DISK` with the GPT script of `layout` on
    /// standard input. `--no-reread` because the kernel may still hold the old table (the caller
    /// follows with ``partprobe(_:)`` or ``blockdevRereadPartitionTable(_:)``); the wipe options clear old
    /// signatures so a stale file system is never found in a new partition.
    public static func sfdiskWriteTable(disk: String, layout: LinuxPartitionLayout) throws(LinuxDriverError) -> LinuxCommand {
        try requireDevice(disk)
        return LinuxCommand(
            "sfdisk", ["--no-reread", "--wipe", "always", "--wipe-partitions", "always", disk],
            standardInput: try layout.sfdiskScript())
    }

    /// `sfdisk --no-reread -N N DISK` with `, +` on standard input: grows partition `N` into the free
    /// space after it (start unchanged, size as large as possible). Use ``sfdiskRelocateBackupGPT(disk:)``
    /// first when the disk itself grew, so the backup GPT header is at the new end.
    public static func sfdiskGrowPartition(disk: String, partition: Int) throws(LinuxDriverError) -> LinuxCommand {
        try requireDevice(disk)
        guard (1...128).contains(partition) else { throw .invalidArgument("partition number \(partition) is not 1...128") }
        return LinuxCommand("sfdisk", ["--no-reread", "-N", String(partition), disk], standardInput: ", +\n")
    }

    /// `sfdisk --relocate gpt-bak-std DISK`: moves the backup GPT header to the end of a disk that grew.
    public static func sfdiskRelocateBackupGPT(disk: String) throws(LinuxDriverError) -> LinuxCommand {
        try requireDevice(disk)
        return LinuxCommand("sfdisk", ["--relocate", "gpt-bak-std", disk])
    }

    /// `sfdisk --json DISK`: the current table, for checking the layout before and after.
    public static func sfdiskDump(disk: String) throws(LinuxDriverError) -> LinuxCommand {
        try requireDevice(disk)
        return LinuxCommand("sfdisk", ["--json", disk])
    }

    /// `wipefs -a DEVICE…`: erases every file-system, RAID and partition-table signature. Pass the
    /// partitions before their disk, so their signatures go while the table still locates them.
    public static func wipefs(_ devices: [String]) throws(LinuxDriverError) -> LinuxCommand {
        guard !devices.isEmpty else { throw .invalidArgument("wipefs needs at least one device") }
        for d in devices { try requireDevice(d) }
        return LinuxCommand("wipefs", ["-a"] + devices)
    }

    /// `partprobe DISK`: asks the kernel to re-read the partition table.
    public static func partprobe(_ disk: String) throws(LinuxDriverError) -> LinuxCommand {
        try requireDevice(disk)
        return LinuxCommand("partprobe", [disk])
    }

    /// `blockdev --rereadpt DISK`: the same with util-linux alone (fails while a partition is in use).
    public static func blockdevRereadPartitionTable(_ disk: String) throws(LinuxDriverError) -> LinuxCommand {
        try requireDevice(disk)
        return LinuxCommand("blockdev", ["--rereadpt", disk])
    }

    /// `partx -u DISK`: updates the kernel's view of the partitions one by one (BLKPG), which works
    /// while another partition of the disk is in use, unlike ``blockdevRereadPartitionTable(_:)``.
    public static func partxUpdate(_ disk: String) throws(LinuxDriverError) -> LinuxCommand {
        try requireDevice(disk)
        return LinuxCommand("partx", ["-u", disk])
    }

    // MARK: File systems

    /// `mount [-t TYPE] [-o OPTIONS] DEVICE DIRECTORY`.
    public static func mount(device: String, at directory: String, type: String? = nil, options: [String] = [])
        throws(LinuxDriverError) -> LinuxCommand
    {
        try requireDevice(device)
        try requireAbsolute(directory, what: "mount point")
        var args: [String] = []
        if let type {
            guard !type.isEmpty, type.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" }) else {
                throw .invalidArgument("file system type '\(type)'")
            }
            args += ["-t", type]
        }
        if !options.isEmpty {
            for o in options where o.isEmpty || o.contains(",") || o.contains(where: \.isWhitespace) {
                throw .invalidArgument("mount option '\(o)'")
            }
            args += ["-o", options.joined(separator: ",")]
        }
        return LinuxCommand("mount", args + [device, directory])
    }

    /// `umount DIRECTORY` (never lazy: a busy mount is an error the driver must see).
    public static func umount(_ directory: String) throws(LinuxDriverError) -> LinuxCommand {
        try requireAbsolute(directory, what: "mount point")
        return LinuxCommand("umount", [directory])
    }

    /// `e2fsck -f -p DEVICE`: the forced check `resize2fs` requires before growing an unmounted file system.
    public static func e2fsck(_ device: String) throws(LinuxDriverError) -> LinuxCommand {
        try requireDevice(device)
        return LinuxCommand("e2fsck", ["-f", "-p", device])
    }

    /// `resize2fs DEVICE [SIZE]`: grows (or shrinks) an ext2/3/4 file system; without a size, to fill the partition.
    public static func resize2fs(_ device: String, sizeInMiB: Int? = nil) throws(LinuxDriverError) -> LinuxCommand {
        try requireDevice(device)
        if let s = sizeInMiB {
            guard s > 0 else { throw .invalidArgument("resize2fs size \(s)M") }
            return LinuxCommand("resize2fs", [device, "\(s)M"])
        }
        return LinuxCommand("resize2fs", [device])
    }

    // MARK: Boot loader

    /// `grub-reboot [--boot-directory=DIR] ENTRY`: boot ENTRY once, at the next boot only
    /// (sets `next_entry` in the GRUB environment block; GRUB clears it when it uses it).
    public static func grubReboot(entry: String, bootDirectory: String? = nil, flavor: LinuxGrubFlavor = .grub)
        throws(LinuxDriverError) -> LinuxCommand
    {
        try LinuxCommand("\(flavor.rawValue)-reboot", bootDirectoryArgument(bootDirectory) + [requireEntry(entry)])
    }

    /// `grub-set-default [--boot-directory=DIR] ENTRY`: make ENTRY the default (`saved_entry`), once the
    /// target passed its health check.
    public static func grubSetDefault(entry: String, bootDirectory: String? = nil, flavor: LinuxGrubFlavor = .grub)
        throws(LinuxDriverError) -> LinuxCommand
    {
        try LinuxCommand("\(flavor.rawValue)-set-default", bootDirectoryArgument(bootDirectory) + [requireEntry(entry)])
    }

    /// `grub-editenv FILE set K=V… | unset K… | list`: edits a GRUB environment block directly (the
    /// lab's disks, or a block on a mounted target).
    public static func grubEditenv(file: String, _ operation: LinuxGrubEnvOperation, flavor: LinuxGrubFlavor = .grub)
        throws(LinuxDriverError) -> LinuxCommand
    {
        try requireAbsolute(file, what: "environment block")
        let tool = "\(flavor.rawValue)-editenv"
        switch operation {
        case .list:
            return LinuxCommand(tool, [file, "list"])
        case .unset(let keys):
            guard !keys.isEmpty else { throw .invalidArgument("grub-editenv unset needs a variable") }
            for k in keys { try requireGrubVariable(k) }
            return LinuxCommand(tool, [file, "unset"] + keys)
        case .set(let pairs):
            guard !pairs.isEmpty else { throw .invalidArgument("grub-editenv set needs a variable") }
            var args = [file, "set"]
            for (k, v) in pairs {
                try requireGrubVariable(k)
                // The block is 1 KiB of `key=value\n` lines: a newline in a value would forge another variable.
                guard !v.contains(where: \.isNewline) else { throw .invalidArgument("GRUB value for \(k) contains a newline") }
                args.append("\(k)=\(v)")
            }
            return LinuxCommand(tool, args)
        }
    }

    /// `efibootmgr --bootnext XXXX`: boot entry XXXX once at the next boot (UEFI `BootNext`, which
    /// the firmware deletes when it uses it).
    public static func efibootmgrBootNext(_ entry: UInt16) -> LinuxCommand {
        LinuxCommand("efibootmgr", ["--bootnext", LinuxEFIBootManager.hex(entry)])
    }

    /// `efibootmgr --delete-bootnext`: cancel a pending one-shot boot.
    public static func efibootmgrDeleteBootNext() -> LinuxCommand { LinuxCommand("efibootmgr", ["--delete-bootnext"]) }

    /// `efibootmgr --bootorder XXXX,YYYY`: make an order permanent, once the target is healthy.
    public static func efibootmgrBootOrder(_ entries: [UInt16]) throws(LinuxDriverError) -> LinuxCommand {
        guard !entries.isEmpty, Set(entries).count == entries.count else {
            throw .invalidArgument("boot order must list distinct entries")
        }
        return LinuxCommand("efibootmgr", ["--bootorder", entries.map(LinuxEFIBootManager.hex).joined(separator: ",")])
    }

    /// `efibootmgr` (verbose: device paths too), whose output ``LinuxEFIBootManager/parse(_:)`` reads.
    public static func efibootmgrList() -> LinuxCommand { LinuxCommand("efibootmgr", ["-v"]) }

    /// `systemctl reboot`: an orderly reboot (units stopped, file systems synced and unmounted).
    public static func systemctlReboot() -> LinuxCommand { LinuxCommand("systemctl", ["reboot"]) }

    // MARK: Safety inputs

    /// `lsblk -J -b -o NAME,PKNAME,TYPE,MOUNTPOINT,SIZE`, whose output ``LinuxBlockDevices/parse(_:)`` reads.
    public static func lsblk() -> LinuxCommand {
        LinuxCommand("lsblk", ["-J", "-b", "-o", "NAME,PKNAME,TYPE,MOUNTPOINT,SIZE"])
    }

    /// `ip -j address show`, `ip -j route show`, `ip -j -6 route show`: the inputs of host-profile
    /// capture (ShoalHostProfile's `CaptureInput`).
    public static func ipAddressShow() -> LinuxCommand { LinuxCommand("ip", ["-j", "address", "show"]) }
    public static func ipRouteShow(ipv6: Bool) -> LinuxCommand {
        LinuxCommand("ip", ipv6 ? ["-j", "-6", "route", "show"] : ["-j", "route", "show"])
    }

    // MARK: Checks

    static func requireAbsolute(_ path: String, what: String) throws(LinuxDriverError) {
        guard path.hasPrefix("/"), !path.contains("\0"), !path.contains(where: \.isNewline),
            !path.split(separator: "/").contains("..")
        else { throw .invalidArgument("\(what) '\(path)' must be an absolute path without '..'") }
    }

    static func requireDevice(_ path: String) throws(LinuxDriverError) {
        try requireAbsolute(path, what: "device")
        guard path.hasPrefix("/dev/"), path.count > 5 else { throw .invalidArgument("device '\(path)' is not under /dev") }
    }

    static func requireEntry(_ entry: String) throws(LinuxDriverError) -> String {
        guard !entry.isEmpty, !entry.hasPrefix("-"), !entry.contains(where: \.isNewline) else {
            throw .invalidArgument("GRUB entry '\(entry)' (empty, starts with '-', or has a newline)")
        }
        return entry
    }

    static func requireGrubVariable(_ name: String) throws(LinuxDriverError) {
        guard let first = name.unicodeScalars.first, !("0"..."9").contains(first),
            name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") })
        else { throw .invalidArgument("GRUB variable name '\(name)'") }
    }

    static func bootDirectoryArgument(_ dir: String?) throws(LinuxDriverError) -> [String] {
        guard let dir else { return [] }
        try requireAbsolute(dir, what: "boot directory")
        return ["--boot-directory=\(dir)"]
    }

    /// The device path of partition `number` on `disk`: `sda` → `sda2`; `nvme0n1`, `mmcblk0`, `loop0` → `…p2`.
    public static func partitionPath(disk: String, number: Int) -> String {
        (disk.last?.isNumber ?? false) ? "\(disk)p\(number)" : "\(disk)\(number)"
    }
}
