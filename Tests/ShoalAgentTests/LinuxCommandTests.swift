import Testing
@testable import ShoalAgent

struct LinuxCommandTests {
    @Test func partitioningCommands() throws {
        let layout = LinuxPartitionLayout(
            partitions: [
                .init(name: "EFI", size: .mebibytes(512), type: .efiSystem, uuid: "0a1b2c3d-0000-4000-8000-000000000001"),
                .init(name: "shoal-staging", size: .sectors(8_388_608), type: .linuxFilesystem),
                .init(name: "root", size: .remaining, type: .linuxRoot),
            ], diskGUID: "6f2e2a7c-1111-4222-8333-444455556666")
        let write = try LinuxCommands.sfdiskWriteTable(disk: "/dev/sdb", layout: layout)
        #expect(write.argv == ["sfdisk", "--no-reread", "--wipe", "always", "--wipe-partitions", "always", "/dev/sdb"])
        #expect(write.standardInput == """
            label: gpt
            first-lba: 2048
            label-id: 6F2E2A7C-1111-4222-8333-444455556666

            size=512MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=0A1B2C3D-0000-4000-8000-000000000001, name="EFI"
            size=8388608, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="shoal-staging"
            type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="root"

            """)
        let grow = try LinuxCommands.sfdiskGrowPartition(disk: "/dev/nvme0n1", partition: 3)
        #expect(grow.argv == ["sfdisk", "--no-reread", "-N", "3", "/dev/nvme0n1"])
        #expect(grow.standardInput == ", +\n")
        #expect(try LinuxCommands.sfdiskRelocateBackupGPT(disk: "/dev/sdb").argv == ["sfdisk", "--relocate", "gpt-bak-std", "/dev/sdb"])
        #expect(try LinuxCommands.sfdiskDump(disk: "/dev/sdb").argv == ["sfdisk", "--json", "/dev/sdb"])
        #expect(try LinuxCommands.wipefs(["/dev/sda1", "/dev/sda2", "/dev/sda"]).argv == ["wipefs", "-a", "/dev/sda1", "/dev/sda2", "/dev/sda"])
        #expect(try LinuxCommands.partprobe("/dev/sda").argv == ["partprobe", "/dev/sda"])
        #expect(try LinuxCommands.blockdevRereadPartitionTable("/dev/sda").argv == ["blockdev", "--rereadpt", "/dev/sda"])
    }

    @Test func layoutsThatWouldGoWrongAreRefused() throws {
        func script(_ parts: [LinuxPartitionLayout.Partition], firstLBA: Int = 2048) throws -> String {
            try LinuxPartitionLayout(partitions: parts, firstLBA: firstLBA).sfdiskScript()
        }
        let ok = LinuxPartitionLayout.Partition(name: "a", size: .mebibytes(1), type: .linuxFilesystem)
        #expect(throws: LinuxDriverError.self) { try script([]) }
        #expect(throws: LinuxDriverError.self) { try script([.init(name: "a", size: .remaining, type: .linuxFilesystem), ok]) }
        #expect(throws: LinuxDriverError.self) { try script([.init(name: "a", size: .mebibytes(0), type: .linuxFilesystem)]) }
        #expect(throws: LinuxDriverError.self) { try script([.init(name: "a", size: .sectors(-5), type: .linuxFilesystem)]) }
        #expect(throws: LinuxDriverError.self) { try script([.init(name: "x\", type=EF00", size: .mebibytes(1), type: .linuxFilesystem)]) }
        #expect(throws: LinuxDriverError.self) { try script([.init(name: "a\nb", size: .mebibytes(1), type: .linuxFilesystem)]) }
        #expect(throws: LinuxDriverError.self) { try script([.init(name: String(repeating: "n", count: 37), size: .mebibytes(1), type: .linuxFilesystem)]) }
        #expect(throws: LinuxDriverError.self) { try script([.init(name: "a", size: .mebibytes(1), type: .custom("not-a-guid"))]) }
        #expect(throws: LinuxDriverError.self) { try script([.init(name: "a", size: .mebibytes(1), type: .linuxFilesystem, start: 100)]) }
        #expect(throws: LinuxDriverError.self) { try script([ok], firstLBA: 2) }
        #expect(throws: LinuxDriverError.self) { try script(Array(repeating: ok, count: 129)) }
        let unnamed = try script([.init(name: "", size: .mebibytes(1), type: .custom("ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"), start: 4096)])
        #expect(unnamed.hasSuffix("\nstart=4096, size=1MiB, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n"))
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.sfdiskGrowPartition(disk: "/dev/sda", partition: 0) }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.sfdiskGrowPartition(disk: "/dev/sda", partition: 129) }
    }

    @Test func devicePathsMustBeAbsoluteAndUnderDev() {
        for bad in ["sda", "-a", "/dev/", "/tmp/disk.img", "/dev/../etc/passwd", "/dev/sda\n", ""] {
            #expect(throws: LinuxDriverError.self, "\(bad)") { try LinuxCommands.wipefs([bad]) }
            #expect(throws: LinuxDriverError.self, "\(bad)") { try LinuxCommands.partprobe(bad) }
        }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.wipefs([]) }
        #expect(LinuxCommands.partitionPath(disk: "/dev/sda", number: 2) == "/dev/sda2")
        #expect(LinuxCommands.partitionPath(disk: "/dev/nvme0n1", number: 2) == "/dev/nvme0n1p2")
        #expect(LinuxCommands.partitionPath(disk: "/dev/mmcblk0", number: 1) == "/dev/mmcblk0p1")
        #expect(LinuxCommands.partitionPath(disk: "/dev/loop7", number: 3) == "/dev/loop7p3")
    }

    @Test func fileSystemCommands() throws {
        #expect(try LinuxCommands.mount(device: "/dev/sda2", at: "/mnt/target").argv == ["mount", "/dev/sda2", "/mnt/target"])
        #expect(try LinuxCommands.mount(device: "/dev/mapper/vg0-root", at: "/mnt/t", type: "ext4", options: ["rw", "noatime"]).argv
            == ["mount", "-t", "ext4", "-o", "rw,noatime", "/dev/mapper/vg0-root", "/mnt/t"])
        #expect(try LinuxCommands.mount(device: "/dev/sdb1", at: "/mnt/win", type: "ntfs3").argv == ["mount", "-t", "ntfs3", "/dev/sdb1", "/mnt/win"])
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.mount(device: "/dev/sda2", at: "relative") }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.mount(device: "/dev/sda2", at: "/mnt", type: "ext4 -o remount") }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.mount(device: "/dev/sda2", at: "/mnt", options: ["rw,suid"]) }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.mount(device: "/dev/sda2", at: "/mnt", options: [""]) }
        #expect(try LinuxCommands.umount("/mnt/target").argv == ["umount", "/mnt/target"])
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.umount("-l") }
        #expect(try LinuxCommands.e2fsck("/dev/sda2").argv == ["e2fsck", "-f", "-p", "/dev/sda2"])
        #expect(try LinuxCommands.resize2fs("/dev/sda2").argv == ["resize2fs", "/dev/sda2"])
        #expect(try LinuxCommands.resize2fs("/dev/sda2", sizeInMiB: 20480).argv == ["resize2fs", "/dev/sda2", "20480M"])
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.resize2fs("/dev/sda2", sizeInMiB: 0) }
    }

    @Test func grubCommands() throws {
        #expect(try LinuxCommands.grubReboot(entry: "shoal-staging").argv == ["grub-reboot", "shoal-staging"])
        #expect(try LinuxCommands.grubReboot(entry: "Debian GNU/Linux, with Linux 6.1.0-28-amd64", bootDirectory: "/mnt/staging/boot", flavor: .grub2).argv
            == ["grub2-reboot", "--boot-directory=/mnt/staging/boot", "Debian GNU/Linux, with Linux 6.1.0-28-amd64"])
        #expect(try LinuxCommands.grubSetDefault(entry: "2").argv == ["grub-set-default", "2"])
        #expect(try LinuxCommands.grubSetDefault(entry: "gnulinux-advanced-1234>gnulinux-6.1-advanced-1234").argv.last == "gnulinux-advanced-1234>gnulinux-6.1-advanced-1234")
        for bad in ["", "--help", "a\nb"] {
            #expect(throws: LinuxDriverError.self) { try LinuxCommands.grubReboot(entry: bad) }
            #expect(throws: LinuxDriverError.self) { try LinuxCommands.grubSetDefault(entry: bad) }
        }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.grubReboot(entry: "x", bootDirectory: "boot") }

        let env = "/boot/grub/grubenv"
        #expect(try LinuxCommands.grubEditenv(file: env, .list).argv == ["grub-editenv", env, "list"])
        #expect(try LinuxCommands.grubEditenv(file: env, .set([("next_entry", "shoal-target"), ("shoal_try", "1")])).argv
            == ["grub-editenv", env, "set", "next_entry=shoal-target", "shoal_try=1"])
        #expect(try LinuxCommands.grubEditenv(file: env, .unset(["next_entry"]), flavor: .grub2).argv == ["grub2-editenv", env, "unset", "next_entry"])
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.grubEditenv(file: env, .set([("next_entry", "a\nsaved_entry=evil")])) }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.grubEditenv(file: env, .set([("bad-name", "x")])) }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.grubEditenv(file: env, .set([("1abc", "x")])) }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.grubEditenv(file: env, .set([])) }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.grubEditenv(file: env, .unset([])) }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.grubEditenv(file: "grubenv", .list) }
    }

    @Test func efiAndRebootCommands() throws {
        #expect(LinuxCommands.efibootmgrBootNext(3).argv == ["efibootmgr", "--bootnext", "0003"])
        #expect(LinuxCommands.efibootmgrBootNext(0x1A2B).argv == ["efibootmgr", "--bootnext", "1A2B"])
        #expect(LinuxCommands.efibootmgrDeleteBootNext().argv == ["efibootmgr", "--delete-bootnext"])
        #expect(try LinuxCommands.efibootmgrBootOrder([3, 1, 0]).argv == ["efibootmgr", "--bootorder", "0003,0001,0000"])
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.efibootmgrBootOrder([1, 1]) }
        #expect(throws: LinuxDriverError.self) { try LinuxCommands.efibootmgrBootOrder([]) }
        #expect(LinuxCommands.efibootmgrList().argv == ["efibootmgr", "-v"])
        #expect(LinuxCommands.systemctlReboot().argv == ["systemctl", "reboot"])
        #expect(LinuxCommands.ipAddressShow().argv == ["ip", "-j", "address", "show"])
        #expect(LinuxCommands.ipRouteShow(ipv6: false).argv == ["ip", "-j", "route", "show"])
        #expect(LinuxCommands.ipRouteShow(ipv6: true).argv == ["ip", "-j", "-6", "route", "show"])
        #expect(LinuxCommands.lsblk().argv == ["lsblk", "-J", "-b", "-o", "NAME,PKNAME,TYPE,MOUNTPOINT,SIZE"])
    }

    @Test func displayStringsQuoteForAShell() throws {
        #expect(try LinuxCommands.grubReboot(entry: "Debian GNU/Linux").displayString == "grub-reboot 'Debian GNU/Linux'")
        #expect(try LinuxCommands.grubReboot(entry: "it's").displayString == "grub-reboot 'it'\\''s'")
        #expect(try LinuxCommands.sfdiskGrowPartition(disk: "/dev/sda", partition: 2).displayString == "sfdisk --no-reread -N 2 /dev/sda <<< (script)")
    }
}

// Nested in LinuxCommandTests so that `swift test --filter LinuxCommand` runs every linux-driver test.
extension LinuxCommandTests {
    struct EFIBootManager {
        /// efibootmgr 18 (Debian 12): device paths even without -v, a tab after the label.
        static let v18 = """
            BootCurrent: 0001
            Timeout: 1 seconds
            BootNext: 0003
            BootOrder: 0001,0000,0002,0003
            Boot0000* Windows Boot Manager\tHD(1,GPT,2c0b64a4-4f7a-4f5e-9d2b-6f1e1f3b7a11,0x800,0x100000)/File(\\EFI\\Microsoft\\Boot\\bootmgfw.efi)57494e444f5753000100000088000000
            Boot0001* debian\tHD(1,GPT,2c0b64a4-4f7a-4f5e-9d2b-6f1e1f3b7a11,0x800,0x100000)/File(\\EFI\\debian\\shimx64.efi)
            Boot0002  UEFI: PXE IPv4 Intel(R) Ethernet Controller X710\tPciRoot(0x0)/Pci(0x1c,0x0)/Pci(0x0,0x0)/MAC(3cecef102030,1)/IPv4(0.0.0.0,0,DHCP)..BO
            Boot0003* shoal-staging\tHD(2,GPT,9d1c0e55-7a3b-4c2d-8e1f-0a1b2c3d4e5f,0x100800,0x1000000)/File(\\EFI\\shoal\\grubx64.efi)
            MirroredPercentageAbove4G: 0.00
            MirrorMemoryAbove4G: false
            """
        /// efibootmgr 17 without -v: labels only.
        static let v17 = """
            BootCurrent: 0004
            Timeout: 0 seconds
            BootOrder: 0004,0000
            Boot0000* UEFI OS
            Boot0004* ubuntu
            """

        @Test func parsesBothGenerations() throws {
            let s = try LinuxEFIBootManager.parse(Self.v18)
            #expect(s.bootCurrent == 1 && s.bootNext == 3 && s.timeoutSeconds == 1)
            #expect(s.bootOrder == [1, 0, 2, 3])
            #expect(s.entries.map(\.label) == ["Windows Boot Manager", "debian", "UEFI: PXE IPv4 Intel(R) Ethernet Controller X710", "shoal-staging"])
            #expect(s.entries.map(\.active) == [true, true, false, true])
            #expect(s.entries[3].devicePath?.hasSuffix("File(\\EFI\\shoal\\grubx64.efi)") == true)
            #expect(s.entries[3].name == "Boot0003")
            #expect(try s.entryNumber(label: "shoal-staging") == 3)
            #expect(try s.entryNumber(label: "Windows Boot Manager") == 0)
            let old = try LinuxEFIBootManager.parse(Self.v17)
            #expect(old.bootNext == nil && old.entries.map(\.number) == [0, 4] && old.entries[1].devicePath == nil)
            #expect(try old.entryNumber(label: "ubuntu") == 4)
            #expect(try LinuxEFIBootManager.parse("").entries.isEmpty)
        }

        @Test func labelsMustMatchExactlyOnce() throws {
            let s = try LinuxEFIBootManager.parse(Self.v18)
            #expect(throws: LinuxDriverError.self) { try s.entryNumber(label: "shoal") }
            #expect(throws: LinuxDriverError.self) { try s.entryNumber(label: "Debian") }
            do {
                _ = try s.entryNumber(label: "shoal-target")
                Issue.record("no error")
            } catch {
                #expect(error.description.contains("Boot0003 'shoal-staging'"))
            }
            let twice = try LinuxEFIBootManager.parse("Boot0005* shoal-staging\nBoot0006* shoal-staging\tHD(…)\n")
            #expect(throws: LinuxDriverError.bootEntryAmbiguous(label: "shoal-staging", numbers: ["0005", "0006"])) {
                try twice.entryNumber(label: "shoal-staging")
            }
        }

        @Test func malformedOutputIsAnError() {
            for bad in ["BootNext: 3", "BootOrder: 0001,zz", "Boot0001debian", "Boot0001* a\nBoot0001* b"] {
                #expect(throws: LinuxDriverError.self, "\(bad)") { try LinuxEFIBootManager.parse(bad) }
            }
        }
    }
}
