/// A GPT partition layout, written by `sfdisk` from the script this type produces.
///
/// ```swift
/// let layout = LinuxPartitionLayout(partitions: [
///     .init(name: "EFI", size: .mebibytes(512), type: .efiSystem),
///     .init(name: "root", size: .remaining, type: .linuxRoot),
/// ])
/// try layout.sfdiskScript()
/// // label: gpt
/// // first-lba: 2048
/// //
/// // size=512MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI"
/// // type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root"
/// ```
public struct LinuxPartitionLayout: Hashable, Sendable {
    public enum Size: Hashable, Sendable {
        case mebibytes(Int)
        case sectors(Int)
        /// Everything up to the end of the disk; only the last partition may have it.
        case remaining
    }

    /// GPT partition type GUIDs the driver uses.
    public enum PartitionType: Hashable, Sendable {
        case efiSystem
        case biosBoot
        case linuxFilesystem
        /// x86-64 root (Discoverable Partitions Specification).
        case linuxRoot
        case linuxSwap
        case linuxLVM
        case microsoftBasicData
        case microsoftReserved
        case custom(String)

        public var guid: String {
            switch self {
            case .efiSystem: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
            case .biosBoot: "21686148-6449-6E6F-744E-656564454649"
            case .linuxFilesystem: "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
            case .linuxRoot: "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
            case .linuxSwap: "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"
            case .linuxLVM: "E6D6D379-F507-44C2-A23C-238F2A3DF928"
            case .microsoftBasicData: "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
            case .microsoftReserved: "E3C9E316-0B5C-4DB8-817D-F92DF00215AE"
            case .custom(let g): g.uppercased()
            }
        }
    }

    public struct Partition: Hashable, Sendable {
        public var name: String
        public var size: Size
        public var type: PartitionType
        /// A fixed partition UUID, so boot entries and fstab can name it before it exists.
        public var uuid: String?
        /// Start sector; `nil` lets sfdisk align after the previous partition.
        public var start: Int?

        public init(name: String, size: Size, type: PartitionType, uuid: String? = nil, start: Int? = nil) {
            self.name = name
            self.size = size
            self.type = type
            self.uuid = uuid
            self.start = start
        }
    }

    public var partitions: [Partition]
    /// A fixed disk GUID (`label-id`).
    public var diskGUID: String?
    /// First usable sector; 2048 (1 MiB) keeps every partition 1 MiB-aligned.
    public var firstLBA: Int

    public init(partitions: [Partition], diskGUID: String? = nil, firstLBA: Int = 2048) {
        self.partitions = partitions
        self.diskGUID = diskGUID
        self.firstLBA = firstLBA
    }

    /// The `sfdisk` script: header (`label: gpt`, `first-lba`, optional `label-id`), a blank line,
    /// one line per partition.
    /// - Throws: ``LinuxDriverError/invalidArgument(_:)`` for an empty layout, more than 128
    ///   partitions, `.remaining` anywhere but last, non-positive sizes, bad GUIDs, or names with quotes,
    ///   commas or newlines (they would end the field early).
    public func sfdiskScript() throws(LinuxDriverError) -> String {
        guard !partitions.isEmpty, partitions.count <= 128 else {
            throw .invalidArgument("a GPT layout has 1...128 partitions, not \(partitions.count)")
        }
        guard firstLBA >= 34 else { throw .invalidArgument("first-lba \(firstLBA) overlaps the GPT (needs >= 34)") }
        var script = "label: gpt\nfirst-lba: \(firstLBA)\n"
        if let g = diskGUID {
            try Self.requireGUID(g)
            script += "label-id: \(g.uppercased())\n"
        }
        script += "\n"
        for (index, p) in partitions.enumerated() {
            var fields: [String] = []
            if let s = p.start {
                guard s >= firstLBA else { throw .invalidArgument("partition \(index + 1) starts at \(s), before first-lba \(firstLBA)") }
                fields.append("start=\(s)")
            }
            switch p.size {
            case .mebibytes(let m):
                guard m > 0 else { throw .invalidArgument("partition \(index + 1) size \(m) MiB") }
                fields.append("size=\(m)MiB")
            case .sectors(let s):
                guard s > 0 else { throw .invalidArgument("partition \(index + 1) size \(s) sectors") }
                fields.append("size=\(s)")
            case .remaining:
                guard index == partitions.count - 1 else {
                    throw .invalidArgument("only the last partition can take the remaining space (partition \(index + 1) does)")
                }
            }
            try Self.requireGUID(p.type.guid)
            fields.append("type=\(p.type.guid)")
            if let u = p.uuid {
                try Self.requireGUID(u)
                fields.append("uuid=\(u.uppercased())")
            }
            guard !p.name.contains(where: { $0 == "\"" || $0 == "," || $0.isNewline || $0 == "\\" }), p.name.utf16.count <= 36 else {
                throw .invalidArgument("partition name '\(p.name)' (at most 36 characters, no quotes, commas, backslashes or newlines)")
            }
            if !p.name.isEmpty { fields.append("name=\"\(p.name)\"") }
            script += fields.joined(separator: ", ") + "\n"
        }
        return script
    }

    static func requireGUID(_ g: String) throws(LinuxDriverError) {
        let groups = g.split(separator: "-", omittingEmptySubsequences: false)
        guard groups.map(\.count) == [8, 4, 4, 4, 12], groups.allSatisfy({ $0.allSatisfy(\.isHexDigit) }) else {
            throw .invalidArgument("'\(g)' is not a GUID")
        }
    }
}
