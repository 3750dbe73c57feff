#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A disk of the emulated host: a sparse image file with a real GPT partition table.
///
/// All operations work on the file itself with `sfdisk`, `wipefs` and byte-offset I/O, so they
/// need no root; `withLoopDevice` attaches it as a real block device when a test needs one.
///
/// ```swift
/// let disk = try DiskImage.create(at: dir + "/disk0.img", size: 64 << 20)
/// try disk.partition(PartitionLayout([PartitionSpec(name: "root", size: nil)]))
/// let root = try disk.partition(named: "root")     // root.offset, root.length in bytes
/// try disk.write(image: "os-a.ext4", to: "root")
/// ```
public struct DiskImage: Sendable, Hashable, CustomStringConvertible {
    /// The image file.
    public var path: String

    /// A disk backed by the existing image file at `path`.
    public init(path: String) { self.path = path }

    public var description: String { path }

    /// Creates (or replaces) a sparse image file of `size` bytes, without a partition table.
    /// - Throws: `HostLabError.invalid` when `size` is not a multiple of 512, `.system`.
    public static func create(at path: String, size: UInt64) throws(HostLabError) -> DiskImage {
        guard size > 0, size % 512 == 0 else { throw .invalid("disk size \(size) is not a positive multiple of 512") }
        try FileIO.createSparse(path, size: size)
        return DiskImage(path: path)
    }

    /// The image file's size in bytes.
    public func size() throws(HostLabError) -> UInt64 { try FileIO.size(of: path) }

    // MARK: Partition table

    /// Writes a new GPT with `layout`, replacing whatever table was there (data inside the
    /// partitions is not touched).
    /// - Returns: the table as read back.
    /// - Throws: `HostLabError.toolFailed` with sfdisk's message (for example when the layout
    ///   does not fit), or a validation error from `PartitionLayout.script()`.
    @discardableResult
    public func partition(_ layout: PartitionLayout) throws(HostLabError) -> PartitionTable {
        let script = try layout.script()
        try HostTool.run(
            ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--wipe", "never", path],
            input: Array(script.utf8))
        return try table()
    }

    /// The partition table as `sfdisk -J` reports it.
    /// - Throws: `HostLabError.noPartitionTable` when the disk has none.
    public func table() throws(HostLabError) -> PartitionTable {
        let output = try HostTool.run(["sfdisk", "-J", path], checked: false)
        guard output.status == 0 else {
            if output.stderr.contains("does not contain a recognized partition table") {
                throw .noPartitionTable(disk: path)
            }
            throw .toolFailed(command: "sfdisk -J \(path)", status: output.status, stderr: output.stderr)
        }
        return try PartitionTable.parse(json: output.stdout, disk: path)
    }

    /// The partition with GPT name `name` (or number, when `name` is one).
    /// - Throws: `HostLabError.partitionNotFound`, `.noPartitionTable`.
    public func partition(named name: String) throws(HostLabError) -> Partition {
        guard let partition = try table().partition(name) else {
            throw .partitionNotFound(disk: path, partition: name)
        }
        return partition
    }

    /// Adds a partition after the last one (`sfdisk --append`; it takes the lowest free number).
    /// - Returns: the new partition.
    /// - Throws: `HostLabError.toolFailed` when sfdisk finds no room.
    @discardableResult
    public func addPartition(_ spec: PartitionSpec) throws(HostLabError) -> Partition {
        let line = try PartitionLayout([spec]).script().split(separator: "\n").dropFirst().joined() + "\n"
        try HostTool.run(
            ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--append", path], input: Array(line.utf8))
        return try partition(named: spec.name)
    }

    /// Removes the partition from the table (its bytes stay until wiped; see `wipe(_:)`).
    /// - Throws: `HostLabError.partitionNotFound`, `.toolFailed`.
    public func deletePartition(_ name: String) throws(HostLabError) {
        let number = try partition(named: name).number
        try HostTool.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--delete", path, String(number)])
    }

    /// Zeroes a partition's bytes (punching holes, so the image stays sparse): afterwards no
    /// file system signature is left in it, as after `wipefs -a` plus discard on a real disk.
    /// - Throws: `HostLabError.partitionNotFound`, `.system`.
    public func wipe(_ name: String) throws(HostLabError) {
        try partition(named: name).region.zero()
    }

    /// Erases the partition table itself (`wipefs -a`: the protective MBR, the primary and the
    /// backup GPT). The partitions' bytes are not touched.
    ///
    /// `--force` is needed on an image file: without it wipefs treats a regular file as a
    /// "non-whole disk device", ignores the "nested" table, and still exits 0.
    public func wipeTable() throws(HostLabError) {
        try HostTool.run(["wipefs", "--all", "--force", "--quiet", path])
        if (try? table()) != nil { throw .invalid("wipefs left the partition table of \(path) in place") }
    }

    /// Grows a partition into the free space right after it (its start stays), as
    /// `growpart`/`sfdisk -N` do. The file system inside is not resized (see `Ext4Filesystem.grow`).
    /// - Parameters:
    ///   - name: the partition's name or number.
    ///   - size: the new size in bytes (a multiple of 512), or `nil` for all the free space after it.
    /// - Returns: the partition with its new size.
    /// - Throws: `HostLabError.doesNotFit` when there is not enough free space after it, or the
    ///   new size is smaller than the old one.
    @discardableResult
    public func growPartition(_ name: String, to size: UInt64? = nil) throws(HostLabError) -> Partition {
        let table = try table()
        guard let old = table.partition(name) else { throw .partitionNotFound(disk: path, partition: name) }
        let available = old.length + table.freeBytes(after: old)
        let sizeField: String
        if let size {
            guard size % old.sectorSize == 0 else { throw .invalid("size \(size) is not a multiple of \(old.sectorSize)") }
            guard size >= old.length else { throw .doesNotFit("partition \(name) shrinks from \(old.length) to \(size) bytes") }
            guard size <= available else {
                throw .doesNotFit("partition \(name) to \(size) bytes on \(path): only \(available) available")
            }
            sizeField = String(size / old.sectorSize)
        } else {
            sizeField = "+"
        }
        try HostTool.run(
            ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "-N", String(old.number), path],
            input: Array(", \(sizeField)\n".utf8))
        return try partition(named: name)
    }

    /// Makes the image file larger and moves the backup GPT to its new end, so the new space
    /// becomes free space partitions can grow into (as after enlarging a virtual disk).
    /// - Throws: `HostLabError.doesNotFit` when `size` is smaller than the image.
    public func enlarge(to size: UInt64) throws(HostLabError) {
        let old = try self.size()
        guard size >= old, size % 512 == 0 else { throw .doesNotFit("disk \(path) to \(size) bytes (now \(old))") }
        guard truncate(path, off_t(size)) == 0 else { throw .errno("truncate \(path)") }
        try HostTool.run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", "--relocate", "gpt-bak-std", path])
    }

    // MARK: Contents

    /// Copies an image file (for example an ext4 image an OS bundle unpacks to) into a
    /// partition; the rest of the partition is zeroed.
    /// - Returns: the partition written.
    /// - Throws: `HostLabError.doesNotFit` when the image is larger than the partition.
    @discardableResult
    public func write(image: String, to name: String) throws(HostLabError) -> Partition {
        let partition = try partition(named: name)
        let source = try ByteRegion.wholeFile(image)
        guard source.length <= partition.length else {
            throw .doesNotFit("image \(image) (\(source.length) bytes) into partition \(name) of \(path) (\(partition.length) bytes)")
        }
        try source.copy(to: partition.region)
        return partition
    }

    /// Copies a partition's bytes out into a new sparse file.
    /// - Parameters:
    ///   - name: the partition's name or number.
    ///   - image: the file to create (replaced if it exists).
    ///   - length: how many bytes to copy (`nil`: the whole partition).
    public func extract(_ name: String, to image: String, length: UInt64? = nil) throws(HostLabError) {
        var region = try partition(named: name).region
        if let length {
            guard length <= region.length else { throw .doesNotFit("\(length) bytes out of partition \(name) of \(region.length)") }
            region.length = length
        }
        try FileIO.createSparse(image, size: region.length)
        try region.copy(to: ByteRegion(path: image, length: region.length))
    }

    /// The ext4 file system in a partition (made or not).
    public func filesystem(in name: String) throws(HostLabError) -> Ext4Filesystem {
        Ext4Filesystem(region: try partition(named: name).region)
    }

    // MARK: Loop devices

    /// Runs `body` with the image (or one partition of it) attached as a loop device, and
    /// always detaches it afterwards, also when `body` throws. Needs root.
    ///
    /// - Parameters:
    ///   - name: a partition to attach alone (`losetup -o --sizelimit`); `nil` attaches the whole
    ///     disk with its partitions scanned (`losetup -P`, giving `/dev/loopNpK`).
    ///   - body: gets the device path.
    public func withLoopDevice<T>(partition name: String? = nil, _ body: (String) throws -> T) throws -> T {
        var argv = ["losetup", "--find", "--show"]
        if let name {
            let partition = try partition(named: name)
            argv += ["--offset", String(partition.offset), "--sizelimit", String(partition.length)]
        } else {
            argv.append("--partscan")
        }
        argv.append(path)
        let device = try HostTool.run(argv).text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard device.hasPrefix("/dev/") else { throw HostLabError.invalid("losetup printed no device for \(path)") }
        defer { _ = try? HostTool.run(["losetup", "--detach", device]) }
        return try body(device)
    }
}
