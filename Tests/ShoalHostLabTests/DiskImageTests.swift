import Foundation
import ShoalTestKit
import Testing

@testable import ShoalHostLab


@Suite struct DiskImageTests {
    @Test func gptRoundTripMatchesSfdisk() throws {
        try TemporaryDirectory.with("hostlab-gpt") { dir in
            let disk = try DiskImage.create(at: dir.file("disk.img"), size: 32 * mib)
            let table = try disk.partition(PartitionLayout([
                PartitionSpec(name: "esp", size: 4 * mib, type: .efiSystem),
                PartitionSpec(name: "root", size: 16 * mib),
                PartitionSpec(name: "data", size: nil),
            ]))
            #expect(table.label == "gpt")
            #expect(table.partitions.map(\.name) == ["esp", "root", "data"])
            #expect(table.partitions.map(\.number) == [1, 2, 3])
            #expect(table.partitions.map(\.type) == [.efiSystem, .linuxFilesystem, .linuxFilesystem])
            let esp = try #require(table.partition("esp")), root = try #require(table.partition("root"))
            // 1 MiB aligned, in order, sizes as asked.
            #expect(esp.offset == mib && esp.length == 4 * mib)
            #expect(root.offset == 5 * mib && root.length == 16 * mib)
            let data = try #require(table.partition("3"))
            #expect(data.offset == 21 * mib)
            #expect(data.offset + data.length <= 32 * mib - 33 * 512)  // room for the backup GPT

            // The same numbers as sfdisk's own dump (independent of our JSON parsing).
            let dump = try HostTool.run(["sfdisk", "-d", disk.path]).text
            for partition in table.partitions {
                #expect(dump.contains("start=\(String(repeating: " ", count: max(0, 12 - String(partition.startSector).count)))\(partition.startSector), size="))
                #expect(dump.contains("name=\"\(partition.name)\""))
            }
            // Unknown names fail clearly.
            #expect(throws: HostLabError.partitionNotFound(disk: disk.path, partition: "swap")) {
                try disk.partition(named: "swap")
            }
        }
    }

    @Test func noPartitionTableIsReported() throws {
        try TemporaryDirectory.with("hostlab-gpt") { dir in
            let disk = try DiskImage.create(at: dir.file("blank.img"), size: 4 * mib)
            #expect(throws: HostLabError.noPartitionTable(disk: disk.path)) { try disk.table() }
        }
    }

    @Test func badLayoutsAreRefusedBeforeSfdiskRuns() {
        #expect(throws: HostLabError.self) { try PartitionLayout([PartitionSpec(name: "a b", size: mib)]).script() }
        #expect(throws: HostLabError.self) { try PartitionLayout([PartitionSpec(name: "a", size: 1000)]).script() }
        #expect(throws: HostLabError.self) {
            try PartitionLayout([PartitionSpec(name: "a", size: nil), PartitionSpec(name: "b", size: mib)]).script()
        }
    }

    @Test func growPartitionIntoFreeSpaceAndRefuseWhenThereIsNone() throws {
        try TemporaryDirectory.with("hostlab-grow") { dir in
            let disk = try DiskImage.create(at: dir.file("disk.img"), size: 32 * mib)
            try disk.partition(PartitionLayout([PartitionSpec(name: "root", size: 8 * mib)]))
            let grown = try disk.growPartition("root", to: 12 * mib)
            #expect(grown.length == 12 * mib && grown.offset == mib)
            let all = try disk.growPartition("root")
            #expect(all.offset == mib)
            #expect(all.length > 30 * mib)
            #expect(try disk.table().freeBytes(after: all) == 0)
            #expect(throws: HostLabError.self) { try disk.growPartition("root", to: 64 * mib) }

            // A bigger disk makes room again.
            try disk.enlarge(to: 48 * mib)
            #expect(try disk.table().freeBytes(after: all) >= 15 * mib)
            #expect(try disk.growPartition("root").length > 46 * mib)
        }
    }

    @Test func deleteWipeAndAddPartitions() throws {
        try TemporaryDirectory.with("hostlab-wipe") { dir in
            let disk = try DiskImage.create(at: dir.file("disk.img"), size: 32 * mib)
            try disk.partition(PartitionLayout([PartitionSpec(name: "a", size: 8 * mib), PartitionSpec(name: "b", size: 8 * mib)]))
            let fs = try Ext4Filesystem.make(in: try disk.partition(named: "b").region)
            #expect(try fs.check() == nil)
            try disk.wipe("b")
            #expect(try disk.partition(named: "b").region.read().allSatisfy { $0 == 0 })
            try disk.deletePartition("a")
            #expect(try disk.table().partitions.map(\.name) == ["b"])
            let c = try disk.addPartition(PartitionSpec(name: "c", size: 4 * mib))
            #expect(c.number == 1)  // the lowest free number…
            #expect(c.offset == 17 * mib)  // …after the last partition
            try disk.wipeTable()
            #expect(throws: HostLabError.noPartitionTable(disk: disk.path)) { try disk.table() }
        }
    }

    @Test func imageCopiedIntoAndOutOfAPartition() throws {
        try TemporaryDirectory.with("hostlab-copy") { dir in
            let image = dir.file("os.ext4")
            try FileManager.default.createDirectory(atPath: dir.file("tree/etc"), withIntermediateDirectories: true)
            try "hello\n".write(toFile: dir.file("tree/etc/motd"), atomically: false, encoding: .utf8)
            try Ext4Filesystem.makeImage(at: image, size: 8 * mib, from: dir.file("tree"))

            let disk = try DiskImage.create(at: dir.file("disk.img"), size: 32 * mib)
            try disk.partition(PartitionLayout([PartitionSpec(name: "small", size: 4 * mib), PartitionSpec(name: "root", size: nil)]))
            #expect(throws: HostLabError.self) { try disk.write(image: image, to: "small") }
            try disk.write(image: image, to: "root")
            #expect(try disk.filesystem(in: "root").readText("/etc/motd") == "hello\n")

            try disk.extract("root", to: dir.file("out.ext4"), length: 8 * mib)
            #expect(try TestData.read(dir.file("out.ext4")) == TestData.read(image))
            // The disk stays sparse: the copy skips holes and zero blocks.
            var info = stat()
            stat(disk.path, &info)
            #expect(UInt64(info.st_blocks) * 512 < 8 * mib)
        }
    }

    @Test(.enabled(if: getuid() == 0, "loop devices need root"))
    func loopDeviceIsDetachedAfterwards() throws {
        try TemporaryDirectory.with("hostlab-loop") { dir in
            let disk = try DiskImage.create(at: dir.file("disk.img"), size: 16 * mib)
            try disk.partition(PartitionLayout([PartitionSpec(name: "root", size: nil)]))
            try Ext4Filesystem.make(in: try disk.partition(named: "root").region, label: "lab-root")
            let device = try disk.withLoopDevice(partition: "root") { device in
                let probe = try HostTool.run(["blkid", "-o", "value", "-s", "LABEL", device]).text
                #expect(probe.trimmingCharacters(in: .whitespacesAndNewlines) == "lab-root")
                return device
            }
            let listed = try HostTool.run(["losetup", "--list", "--noheadings", "--output", "NAME,BACK-FILE"]).text
            #expect(!listed.contains("\(device) ") || !listed.contains(disk.path))
            #expect(!listed.contains(disk.path))
        }
    }
}
