import Foundation
import ShoalTestKit
import Testing

@testable import ShoalHostLab


@Suite struct Ext4FilesystemTests {
    /// A disk with one 16 MiB "root" partition after a 4 MiB "esp", and a small tree.
    private func makeDisk(in dir: TemporaryDirectory) throws -> (DiskImage, Ext4Filesystem) {
        let tree = dir.file("tree")
        let fm = FileManager.default
        try fm.createDirectory(atPath: tree + "/etc/ssh", withIntermediateDirectories: true)
        try "ID=lab\nNAME=\"Lab OS\"\n".write(toFile: tree + "/etc/os-release", atomically: false, encoding: .utf8)
        try "secret\n".write(toFile: tree + "/etc/ssh/key", atomically: false, encoding: .utf8)
        try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tree + "/etc/ssh/key")
        try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: tree + "/etc/ssh")
        try fm.createSymbolicLink(atPath: tree + "/etc/alias", withDestinationPath: "os-release")
        let disk = try DiskImage.create(at: dir.file("disk.img"), size: 32 * mib)
        try disk.partition(PartitionLayout([PartitionSpec(name: "esp", size: 4 * mib, type: .efiSystem), PartitionSpec(name: "root", size: 16 * mib)]))
        let fs = try Ext4Filesystem.make(in: try disk.partition(named: "root").region, from: tree, label: "root")
        return (disk, fs)
    }

    @Test func treeReadBackWithModes() throws {
        try TemporaryDirectory.with("hostlab-ext4") { dir in
            let (disk, fs) = try makeDisk(in: dir)
            #expect(try fs.readText("/etc/os-release") == "ID=lab\nNAME=\"Lab OS\"\n")
            #expect(try fs.info("/etc/ssh/key")?.permissions == 0o600)
            #expect(try fs.info("/etc/ssh")?.permissions == 0o700)
            #expect(try fs.info("/etc/ssh")?.isDirectory == true)
            #expect(try fs.info("/etc/alias")?.isSymbolicLink == true)
            #expect(try fs.list("/etc").map(\.name) == ["alias", "os-release", "ssh"])
            #expect(try fs.info("/nope/x") == nil)
            #expect(throws: HostLabError.fileNotFound(path: "/etc/missing", in: fs.description)) { try fs.readFile("/etc/missing") }
            #expect(throws: HostLabError.fileNotFound(path: "/nope", in: fs.description)) { try fs.list("/nope") }
            #expect(try fs.check() == nil)
            // The file system really is at the partition's offset: blkid finds it there.
            let root = try disk.partition(named: "root")
            let probe = try HostTool.run(["blkid", "-p", "-O", String(root.offset), "-o", "value", "-s", "TYPE", disk.path]).text
            #expect(probe.trimmingCharacters(in: .whitespacesAndNewlines) == "ext4")
            // …and the GPT around it is intact.
            #expect(try disk.table().partitions.count == 2)
            #expect(try fs.size() == 16 * mib)
        }
    }

    @Test func writeFilesWithDebugfsThenReadThem() throws {
        try TemporaryDirectory.with("hostlab-ext4") { dir in
            let (_, fs) = try makeDisk(in: dir)
            // New file in new directories.
            try fs.writeText("/etc/shoal/profile/hostname", "web-1\n", mode: 0o640, uid: 0, gid: 4)
            #expect(try fs.readText("/etc/shoal/profile/hostname") == "web-1\n")
            let info = try #require(try fs.info("/etc/shoal/profile/hostname"))
            #expect(info.permissions == 0o640 && info.gid == 4 && info.isRegularFile && info.size == 6)
            #expect(try fs.info("/etc/shoal")?.permissions == 0o755)
            // Replace an existing file, and a binary one.
            try fs.writeText("/etc/os-release", "ID=other\n", mode: 0o644)
            #expect(try fs.readText("/etc/os-release") == "ID=other\n")
            let binary = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
            try fs.writeFile("/var/lib/blob", contents: binary, mode: 0o600)
            #expect(try fs.readFile("/var/lib/blob") == binary)
            // Directories: existing ones untouched, new ones with their mode.
            try fs.makeDirectory("/etc/ssh")
            #expect(try fs.info("/etc/ssh")?.permissions == 0o700)
            try fs.makeDirectory("/root/.ssh", mode: 0o700)
            #expect(try fs.info("/root/.ssh")?.permissions == 0o700)
            try fs.setPermissions("/etc/ssh/key", 0o640)
            #expect(try fs.info("/etc/ssh/key")?.permissions == 0o640)
            try fs.remove("/etc/alias")
            #expect(try fs.exists("/etc/alias") == false)
            #expect(throws: HostLabError.self) { try fs.writeText("/etc", "x") }
            #expect(throws: HostLabError.badPath("/etc/a b")) { try fs.writeText("/etc/a b", "x") }
            #expect(throws: HostLabError.badPath("etc/x")) { try fs.writeText("etc/x", "x") }
            #expect(try fs.check() == nil)
        }
    }

    @Test func writeATreeInOneRun() throws {
        try TemporaryDirectory.with("hostlab-ext4") { dir in
            let (_, fs) = try makeDisk(in: dir)
            // A rendered profile: new directories, a replaced file, a private key, a symlink.
            let profile = dir.file("profile")
            let fm = FileManager.default
            try fm.createDirectory(atPath: profile + "/etc/ssh", withIntermediateDirectories: true)
            try fm.createDirectory(atPath: profile + "/etc/network/interfaces.d", withIntermediateDirectories: true)
            try "new key\n".write(toFile: profile + "/etc/ssh/key", atomically: false, encoding: .utf8)
            try fm.setAttributes([.posixPermissions: 0o600], ofItemAtPath: profile + "/etc/ssh/key")
            try "auto eth0\n".write(toFile: profile + "/etc/network/interfaces.d/eth0", atomically: false, encoding: .utf8)
            try fm.createSymbolicLink(atPath: profile + "/etc/resolv.conf", withDestinationPath: "/run/resolv.conf")
            try fm.setAttributes([.posixPermissions: 0o700], ofItemAtPath: profile + "/etc/network")

            #expect(try fs.writeTree(from: profile) == 3)
            #expect(try fs.readText("/etc/ssh/key") == "new key\n")
            #expect(try fs.info("/etc/ssh/key")?.permissions == 0o600)
            #expect(try fs.readText("/etc/network/interfaces.d/eth0") == "auto eth0\n")
            #expect(try fs.info("/etc/network")?.permissions == 0o700)
            #expect(try fs.info("/etc/resolv.conf")?.isSymbolicLink == true)
            #expect(try fs.readText("/etc/os-release").hasPrefix("ID=lab"))  // untouched
            // Again, over itself, and into a subdirectory.
            #expect(try fs.writeTree(from: profile) == 3)
            #expect(try fs.writeTree(from: profile, to: "/srv/copy") == 3)
            #expect(try fs.readText("/srv/copy/etc/ssh/key") == "new key\n")
            try fs.writeSymlink("/etc/alias", to: "ssh/key")
            #expect(try fs.info("/etc/alias")?.isSymbolicLink == true)
            #expect(try fs.check() == nil)
        }
    }

    @Test func growFilesystemWithItsPartition() throws {
        try TemporaryDirectory.with("hostlab-ext4") { dir in
            let (disk, fs) = try makeDisk(in: dir)
            try fs.writeText("/data", "kept\n")
            let grown = try disk.growPartition("root")
            let bigger = try fs.grow(into: grown.region)
            #expect(try bigger.size() > 16 * mib)
            #expect(try bigger.size() <= grown.length)
            #expect(try bigger.readText("/data") == "kept\n")
            #expect(try bigger.check() == nil)
            #expect(try disk.size() == 32 * mib)  // the disk image is not cut or extended
            #expect(try disk.table().partitions.map(\.name) == ["esp", "root"])
        }
    }

    @Test func garbageIsNotAFilesystem() throws {
        try TemporaryDirectory.with("hostlab-ext4") { dir in
            let disk = try DiskImage.create(at: dir.file("disk.img"), size: 8 * mib)
            try disk.partition(PartitionLayout([PartitionSpec(name: "root", size: nil)]))
            let fs = try disk.filesystem(in: "root")
            #expect(throws: HostLabError.self) { try fs.readFile("/etc/os-release") }
            #expect(try fs.check() != nil)
        }
    }
}
