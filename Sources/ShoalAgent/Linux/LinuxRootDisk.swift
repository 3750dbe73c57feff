import Foundation

/// One line of `/proc/self/mountinfo` (proc(5)).
public struct LinuxMountInfoEntry: Hashable, Sendable {
    public var mountID: Int
    public var parentID: Int
    /// `major:minor` of the device (`0:N` for virtual file systems).
    public var major: Int
    public var minor: Int
    /// The path inside the file system that is mounted (`/` unless a bind mount or subvolume).
    public var root: String
    public var mountPoint: String
    public var fileSystemType: String
    /// The mount source: `/dev/nvme0n1p2`, `/dev/mapper/vg0-root`, `overlay`, `tmpfs`, …
    public var source: String
}

/// Parses `/proc/self/mountinfo`.
public enum LinuxMountInfo {
    /// - Throws: ``LinuxDriverError/unparsable(source:reason:)`` for a line without the `-` separator
    ///   or with too few fields.
    public static func parse(_ text: String) throws(LinuxDriverError) -> [LinuxMountInfoEntry] {
        var out: [LinuxMountInfoEntry] = []
        for raw in text.split(whereSeparator: \.isNewline) where !raw.isEmpty {
            let fields = raw.split(separator: " ").map(String.init)
            // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS
            guard let dash = fields.firstIndex(of: "-"), dash >= 6, fields.count >= dash + 3,
                let id = Int(fields[0]), let parent = Int(fields[1])
            else { throw .unparsable(source: "/proc/self/mountinfo", reason: "line '\(raw)'") }
            let devParts = fields[2].split(separator: ":")
            guard devParts.count == 2, let major = Int(devParts[0]), let minor = Int(devParts[1]) else {
                throw .unparsable(source: "/proc/self/mountinfo", reason: "device '\(fields[2])' in '\(raw)'")
            }
            out.append(LinuxMountInfoEntry(
                mountID: id, parentID: parent, major: major, minor: minor, root: unescape(fields[3]),
                mountPoint: unescape(fields[4]), fileSystemType: fields[dash + 1], source: unescape(fields[dash + 2])))
        }
        return out
    }

    /// The entry mounted at `/` that is visible: the last one (later mounts hide earlier ones).
    public static func rootMount(_ entries: [LinuxMountInfoEntry]) -> LinuxMountInfoEntry? {
        entries.last { $0.mountPoint == "/" }
    }

    /// The kernel writes space, tab, newline and backslash in paths as `\040`, `\011`, `\012`, `\134`.
    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var bytes: [UInt8] = []
        let u = Array(s.utf8)
        var i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: "\\"), i + 3 < u.count, let v = UInt8(String(decoding: u[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
                bytes.append(v)
                i += 4
            } else {
                bytes.append(u[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// One block device from `lsblk -J -b -o NAME,PKNAME,TYPE,MOUNTPOINT,SIZE`.
public struct LinuxBlockDevice: Hashable, Sendable {
    /// Kernel name (`sda2`, `nvme0n1p3`) or device-mapper name (`vg0-root`, `cryptroot`).
    public var name: String
    /// `disk`, `part`, `lvm`, `crypt`, `raid1`, `loop`, `rom`, …
    public var type: String
    /// Where it is mounted (`[SWAP]` for active swap); newer lsblk may list several.
    public var mountpoints: [String]
    public var size: UInt64?
    /// Parent names: from `PKNAME` and from nesting in the tree output. More than one for a device
    /// stacked on several (an LVM volume over two PVs, a RAID array).
    public var parents: Set<String>
}

/// The block-device graph from lsblk's JSON, tree (`children`) or flat (`-l`) form.
public struct LinuxBlockDevices: Hashable, Sendable {
    /// By name. A device listed under several parents (tree form) appears once, with all parents.
    public private(set) var devices: [String: LinuxBlockDevice]

    /// Parses lsblk's JSON. Handles `mountpoint` (util-linux < 2.37) and `mountpoints` (≥ 2.37),
    /// sizes as numbers or strings, and `null`s.
    /// - Throws: ``LinuxDriverError/unparsable(source:reason:)``.
    public static func parse(_ json: String) throws(LinuxDriverError) -> LinuxBlockDevices {
        let source = "lsblk -J"
        guard let top = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let list = top["blockdevices"] as? [[String: Any]]
        else { throw .unparsable(source: source, reason: "not lsblk JSON (no 'blockdevices' array)") }
        var result = LinuxBlockDevices(devices: [:])
        func visit(_ node: [String: Any], parent: String?) throws(LinuxDriverError) {
            guard let name = node["name"] as? String, !name.isEmpty else {
                throw .unparsable(source: source, reason: "a device without a name")
            }
            var mountpoints: [String] = []
            if let m = node["mountpoint"] as? String { mountpoints.append(m) }
            if let ms = node["mountpoints"] as? [Any] { mountpoints += ms.compactMap { $0 as? String } }
            var size: UInt64?
            if let n = node["size"] as? NSNumber { size = n.uint64Value } else if let s = node["size"] as? String { size = UInt64(s) }
            var parents = Set<String>()
            if let p = node["pkname"] as? String, !p.isEmpty { parents.insert(p) }
            if let parent { parents.insert(parent) }
            var device = result.devices[name] ?? LinuxBlockDevice(
                name: name, type: node["type"] as? String ?? "unknown", mountpoints: [], size: size, parents: [])
            device.parents.formUnion(parents)
            for m in mountpoints where !device.mountpoints.contains(m) { device.mountpoints.append(m) }
            result.devices[name] = device
            for child in node["children"] as? [[String: Any]] ?? [] { try visit(child, parent: name) }
        }
        for node in list { try visit(node, parent: nil) }
        return result
    }

    /// The device for `/dev/NAME`, `/dev/mapper/NAME` or a bare name.
    public func device(forPath path: String) -> LinuxBlockDevice? {
        let name: String
        if path.hasPrefix("/dev/mapper/") { name = String(path.dropFirst("/dev/mapper/".count)) }
        else if path.hasPrefix("/dev/") { name = String(path.dropFirst("/dev/".count)) }
        else { name = path }
        return devices[name]
    }

    /// `name` and everything it is stacked on, transitively (partition → disk; LV → crypt → partition → disk).
    public func ancestors(of name: String) -> Set<String> {
        var seen: Set<String> = [name], queue = [name]
        while let n = queue.popLast() {
            for p in devices[n]?.parents ?? [] where seen.insert(p).inserted { queue.append(p) }
        }
        return seen
    }

    /// `name` and everything stacked on it, transitively.
    public func descendants(of name: String) -> Set<String> {
        var seen: Set<String> = [name], queue = [name]
        while let n = queue.popLast() {
            for d in devices.values where d.parents.contains(n) && seen.insert(d.name).inserted { queue.append(d.name) }
        }
        return seen
    }

    /// The whole disks under `name`: ancestors with no parent of their own.
    public func disks(under name: String) -> Set<String> {
        Set(ancestors(of: name).filter { devices[$0]?.parents.isEmpty ?? true })
    }
}

/// The running root and the disks it lives on.
public struct LinuxRunningRoot: Hashable, Sendable {
    /// The root mount's source as mountinfo shows it (`/dev/mapper/vg0-root`).
    public var source: String
    /// The lsblk device that holds `/`.
    public var device: String
    /// Every whole disk under it (two for a root on RAID 1 or on an LVM spanning two disks).
    public var disks: Set<String>

    /// Finds the root's device in `blockDevices`: first by lsblk's own `/` mount point, else by the
    /// mountinfo source's name (`/dev/X`, `/dev/mapper/X`).
    /// - Throws: ``LinuxDriverError/rootNotFound(_:)`` when `/` is not on a listed block device: the
    ///   driver then refuses every disk rather than guess.
    public static func locate(mountInfo: [LinuxMountInfoEntry], blockDevices: LinuxBlockDevices) throws(LinuxDriverError)
        -> LinuxRunningRoot
    {
        guard let root = LinuxMountInfo.rootMount(mountInfo) else { throw .rootNotFound("no mount at / in mountinfo") }
        let byMountpoint = blockDevices.devices.values.filter { $0.mountpoints.contains("/") }.map(\.name).sorted()
        let name: String
        if let n = byMountpoint.last {
            name = byMountpoint.count == 1 ? n : (blockDevices.device(forPath: root.source)?.name ?? n)
        } else if let d = blockDevices.device(forPath: root.source) {
            name = d.name
        } else {
            throw .rootNotFound(
                "root is \(root.fileSystemType) from '\(root.source)' (device \(root.major):\(root.minor)), which lsblk does not list")
        }
        return LinuxRunningRoot(source: root.source, device: name, disks: blockDevices.disks(under: name))
    }
}

/// The `linux` driver's safety rule: it never touches the disk the running system lives on, nor
/// a device that is mounted or stacked under something mounted.
///
/// ```swift
/// let guard = try LinuxDiskGuard(mountInfoText: mountinfo, lsblkJSON: lsblk)
/// try guard.checkMayModify("/dev/sdb")   // throws on the root disk or a mounted one
/// ```
public struct LinuxDiskGuard: Hashable, Sendable {
    public var root: LinuxRunningRoot
    public var blockDevices: LinuxBlockDevices

    public init(root: LinuxRunningRoot, blockDevices: LinuxBlockDevices) {
        self.root = root
        self.blockDevices = blockDevices
    }

    /// Parses both inputs and locates the root.
    /// - Throws: the parse errors, or ``LinuxDriverError/rootNotFound(_:)``.
    public init(mountInfoText: String, lsblkJSON: String) throws(LinuxDriverError) {
        let devices = try LinuxBlockDevices.parse(lsblkJSON)
        let root = try LinuxRunningRoot.locate(mountInfo: LinuxMountInfo.parse(mountInfoText), blockDevices: devices)
        self.init(root: root, blockDevices: devices)
    }

    /// Throws unless `device` may be wiped, partitioned or written.
    ///
    /// Refused: a device on a disk that holds the running root (the disk itself, any partition of
    /// it, anything stacked on it); and a device that is mounted or used as swap, or has a
    /// partition or stacked device (LVM, dm-crypt) that is.
    /// - Throws: ``LinuxDriverError/holdsRunningRoot(device:disk:root:)``,
    ///   ``LinuxDriverError/deviceInUse(device:user:mountpoint:)`` or ``LinuxDriverError/unknownDevice(_:)``.
    public func checkMayModify(_ device: String) throws(LinuxDriverError) {
        guard let d = blockDevices.device(forPath: device) else { throw .unknownDevice(device) }
        let disks = blockDevices.disks(under: d.name)
        if let shared = disks.intersection(root.disks).sorted().first {
            throw .holdsRunningRoot(device: device, disk: "/dev/\(shared)", root: "\(root.source) on /")
        }
        try checkNotInUse(device, d.name)
    }

    /// The narrower rule for a host whose staging partition shares a disk with the original OS
    /// ("a second partition" in the issue): `partition` may be written even though its disk holds
    /// the running root, as long as it is a partition (not the disk), is not under or over the
    /// root's own chain of devices, and nothing on it is mounted. Whole-disk operations (a new
    /// partition table, `wipefs` on the disk) must still pass ``checkMayModify(_:)``.
    /// - Throws: as ``checkMayModify(_:)``, and ``LinuxDriverError/invalidArgument(_:)`` for a whole disk.
    public func checkMayModifyPartition(_ partition: String) throws(LinuxDriverError) {
        guard let d = blockDevices.device(forPath: partition) else { throw .unknownDevice(partition) }
        guard d.type == "part" else { throw .invalidArgument("\(partition) is a \(d.type), not a partition") }
        let rootChain = blockDevices.ancestors(of: root.device)
        if blockDevices.descendants(of: d.name).contains(root.device) || rootChain.contains(d.name) {
            throw .holdsRunningRoot(device: partition, disk: partition, root: "\(root.source) on /")
        }
        try checkNotInUse(partition, d.name)
    }

    private func checkNotInUse(_ device: String, _ name: String) throws(LinuxDriverError) {
        for n in blockDevices.descendants(of: name).sorted() {
            if let m = blockDevices.devices[n]?.mountpoints.first {
                throw .deviceInUse(device: device, user: n == name ? "it" : n, mountpoint: m)
            }
        }
    }
}
