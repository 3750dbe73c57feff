import Foundation

/// A GPT partition type, by its GUID.
public struct PartitionType: Sendable, Hashable, RawRepresentable, CustomStringConvertible {
    /// The type GUID, upper case, as `sfdisk` prints it.
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue.uppercased() }

    /// "Linux filesystem data".
    public static let linuxFilesystem = PartitionType(rawValue: "0FC63DAF-8483-4772-8E79-3D69D8477DE4")
    /// "EFI System" (an ESP).
    public static let efiSystem = PartitionType(rawValue: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
    /// "BIOS boot" (GRUB's core image on a GPT disk booted by BIOS).
    public static let biosBoot = PartitionType(rawValue: "21686148-6449-6E6F-744E-656564454649")
    /// "Linux swap".
    public static let linuxSwap = PartitionType(rawValue: "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F")

    public var description: String {
        switch self {
        case .linuxFilesystem: return "linux"
        case .efiSystem: return "esp"
        case .biosBoot: return "bios-boot"
        case .linuxSwap: return "swap"
        default: return rawValue
        }
    }
}

/// One partition to create: the lines of an `sfdisk` script.
public struct PartitionSpec: Sendable, Hashable {
    /// The GPT partition name (PARTLABEL), by which the lab finds partitions.
    public var name: String
    /// Size in bytes (a multiple of 512), or `nil` for all the free space left.
    public var size: UInt64?
    public var type: PartitionType

    public init(name: String, size: UInt64?, type: PartitionType = .linuxFilesystem) {
        self.name = name
        self.size = size
        self.type = type
    }
}

/// A GPT layout, turned into an `sfdisk` script.
///
/// ```swift
/// let layout = PartitionLayout([
///     PartitionSpec(name: "esp", size: 4 << 20, type: .efiSystem),
///     PartitionSpec(name: "root", size: nil),
/// ])
/// try disk.partition(layout)
/// ```
/// Partitions start on 1 MiB boundaries (sfdisk's default alignment), in the order given.
public struct PartitionLayout: Sendable, Hashable {
    public var partitions: [PartitionSpec]

    public init(_ partitions: [PartitionSpec]) { self.partitions = partitions }

    /// The `sfdisk` script for this layout.
    /// - Throws: `HostLabError.badPath` for a name sfdisk cannot take, `.invalid` for a size that
    ///   is not a positive multiple of 512 or a "rest of the disk" partition that is not last.
    public func script() throws(HostLabError) -> String {
        var lines = ["label: gpt"]
        for (index, spec) in partitions.enumerated() {
            try PartitionLayout.validate(name: spec.name)
            var fields: [String] = []
            if let size = spec.size {
                guard size > 0, size % 512 == 0 else {
                    throw .invalid("partition \(spec.name): size \(size) is not a positive multiple of 512")
                }
                fields.append("size=\(size / 512)")
            } else if index != partitions.count - 1 {
                throw .invalid("partition \(spec.name): only the last partition can take the rest of the disk")
            }
            fields.append("type=\(spec.type.rawValue)")
            fields.append("name=\"\(spec.name)\"")
            lines.append(fields.joined(separator: ", "))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func validate(name: String) throws(HostLabError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
        guard !name.isEmpty, name.count <= 36, name.allSatisfy({ allowed.contains($0) }) else {
            throw .badPath("partition name \"\(name)\" (use 1-36 of A-Z a-z 0-9 - _ .)")
        }
    }
}

/// A partition as read back from the disk (`sfdisk -J`).
public struct Partition: Sendable, Hashable, CustomStringConvertible {
    /// The partition number (1-based, as in `disk0.img2`).
    public var number: Int
    /// The GPT name, empty when it has none.
    public var name: String
    public var type: PartitionType
    /// The partition's own GUID (PARTUUID).
    public var uuid: String
    /// First sector and sector count, in units of `sectorSize`.
    public var startSector: UInt64
    public var sectorCount: UInt64
    public var sectorSize: UInt64
    /// The disk image it is on.
    public var diskPath: String

    /// Byte offset of the partition in the disk image.
    public var offset: UInt64 { startSector * sectorSize }
    /// Length in bytes.
    public var length: UInt64 { sectorCount * sectorSize }
    /// The partition's bytes.
    public var region: ByteRegion { ByteRegion(path: diskPath, offset: offset, length: length) }

    public var description: String {
        "\(number) \"\(name)\" \(type) @\(offset)+\(length)"
    }
}

/// A disk's partition table as read back from the disk.
public struct PartitionTable: Sendable, Hashable {
    /// `gpt` (or `dos` for a table made by something else).
    public var label: String
    /// The disk GUID.
    public var id: String
    public var sectorSize: UInt64
    /// The last sector partitions may use (before the backup GPT).
    public var lastUsableSector: UInt64
    public var partitions: [Partition]

    /// The partition named `name`, or numbered `name` when it is a number.
    public func partition(_ name: String) -> Partition? {
        if let byName = partitions.first(where: { $0.name == name }) { return byName }
        if let number = Int(name) { return partitions.first { $0.number == number } }
        return nil
    }

    /// Free bytes right after `partition` (up to the next partition or the end of the usable area).
    public func freeBytes(after partition: Partition) -> UInt64 {
        let end = partition.startSector + partition.sectorCount
        let nextStart = partitions.map(\.startSector).filter { $0 >= end }.min() ?? (lastUsableSector + 1)
        return (nextStart - end) * sectorSize
    }

    /// Parses `sfdisk -J` output.
    static func parse(json: [UInt8], disk: String) throws(HostLabError) -> PartitionTable {
        struct Document: Decodable { var partitiontable: Table }
        struct Table: Decodable {
            var label: String
            var id: String?
            var device: String
            var lastlba: UInt64?
            var sectorsize: UInt64?
            var partitions: [Entry]?
        }
        struct Entry: Decodable {
            var node: String
            var start: UInt64
            var size: UInt64
            var type: String
            var uuid: String?
            var name: String?
        }
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: Data(json))
        } catch {
            throw .invalid("cannot read the partition table of \(disk) from sfdisk -J: \(error)")
        }
        let table = document.partitiontable
        let sectorSize = table.sectorsize ?? 512
        var partitions: [Partition] = []
        for entry in table.partitions ?? [] {
            // node is the device name plus the number, with a "p" between when the device name
            // ends in a digit ("disk0.img2", "/dev/loop0p2").
            var suffix = Substring(entry.node)
            if suffix.hasPrefix(table.device) { suffix = suffix.dropFirst(table.device.count) }
            if suffix.hasPrefix("p") { suffix = suffix.dropFirst() }
            guard let number = Int(suffix) else {
                throw .invalid("cannot tell the partition number of \(entry.node) on \(disk)")
            }
            partitions.append(Partition(
                number: number, name: entry.name ?? "", type: PartitionType(rawValue: entry.type),
                uuid: entry.uuid ?? "", startSector: entry.start, sectorCount: entry.size,
                sectorSize: sectorSize, diskPath: disk))
        }
        return PartitionTable(
            label: table.label, id: table.id ?? "", sectorSize: sectorSize, lastUsableSector: table.lastlba ?? 0,
            partitions: partitions.sorted { $0.number < $1.number })
    }
}
