import Foundation
import Testing
@testable import ShoalAgent

/// Realistic `lsblk -J -b -o NAME,PKNAME,TYPE,MOUNTPOINT,SIZE` and `/proc/self/mountinfo` pairs.
enum LinuxDiskFixtures {
    /// This build machine, verbatim: root is a whole virtio disk without partitions.
    static let vmLsblk = """
        {
           "blockdevices": [
              {
                 "name": "zram0",
                 "pkname": null,
                 "type": "disk",
                 "mountpoint": null,
                 "size": 0
              },{
                 "name": "vda",
                 "pkname": null,
                 "type": "disk",
                 "mountpoint": "/",
                 "size": 274877906944
              }
           ]
        }
        """
    static let vmMountinfo = """
        22 27 0:21 / /proc rw,relatime - proc proc rw
        23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
        24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12355472k,nr_inodes=3088868,mode=755
        27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
        28 27 0:25 / /mnt/sandboxing/model_tools_env/v1/python ro,nosuid,nodev,relatime - tmpfs model_tools_unavailable ro,size=4k,mode=755
        """

    /// Two NVMe drives: the OS on nvme0n1 (EFI + root), Shoal's staging and store on nvme1n1.
    static let nvmeLsblk = """
        {"blockdevices": [
          {"name":"nvme0n1","pkname":null,"type":"disk","mountpoint":null,"size":1024209543168,
           "children": [
              {"name":"nvme0n1p1","pkname":"nvme0n1","type":"part","mountpoint":"/boot/efi","size":536870912},
              {"name":"nvme0n1p2","pkname":"nvme0n1","type":"part","mountpoint":"/","size":1023671615488}
           ]},
          {"name":"nvme1n1","pkname":null,"type":"disk","mountpoint":null,"size":1024209543168,
           "children": [
              {"name":"nvme1n1p1","pkname":"nvme1n1","type":"part","mountpoint":null,"size":68719476736},
              {"name":"nvme1n1p2","pkname":"nvme1n1","type":"part","mountpoint":"/var/lib/shoal/store","size":955488501760}
           ]}
        ]}
        """
    static let nvmeMountinfo = """
        21 28 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
        28 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
        30 28 259:1 / /boot/efi rw,relatime shared:17 - vfat /dev/nvme0n1p1 rw,fmask=0077,dmask=0077
        95 28 259:5 / /var/lib/shoal/store rw,noatime shared:40 - ext4 /dev/nvme1n1p2 rw
        """

    /// SATA, older util-linux (sizes as strings), swap on the root disk, the staging disk empty,
    /// and a DVD drive. The staging OS has booted from sdb1 here (the middle of a conversion).
    static let sataLsblk = """
        {"blockdevices": [
          {"name":"sda","pkname":null,"type":"disk","mountpoint":null,"size":"480103981056",
           "children": [
              {"name":"sda1","pkname":"sda","type":"part","mountpoint":null,"size":"1073741824"},
              {"name":"sda2","pkname":"sda","type":"part","mountpoint":null,"size":"8589934592"},
              {"name":"sda3","pkname":"sda","type":"part","mountpoint":null,"size":"470438363136"}
           ]},
          {"name":"sdb","pkname":null,"type":"disk","mountpoint":null,"size":"2000398934016",
           "children": [
              {"name":"sdb1","pkname":"sdb","type":"part","mountpoint":"/","size":"34359738368"},
              {"name":"sdb2","pkname":"sdb","type":"part","mountpoint":"[SWAP]","size":"4294967296"},
              {"name":"sdb3","pkname":"sdb","type":"part","mountpoint":"/var/lib/shoal","size":"1961744228352"}
           ]},
          {"name":"sr0","pkname":null,"type":"rom","mountpoint":null,"size":"1073741312"}
        ]}
        """
    static let sataMountinfo = """
        25 1 8:17 / / rw,relatime shared:1 - ext4 /dev/sdb1 rw,errors=remount-ro
        40 25 8:19 / /var/lib/shoal rw,relatime shared:20 - ext4 /dev/sdb3 rw
        """

    /// Ubuntu's default: LVM on sda3, plus a data volume group spanning sdb and sdc (util-linux ≥ 2.37
    /// `mountpoints` arrays, as with `-o MOUNTPOINTS`). The spanning LV is listed under both disks.
    static let lvmLsblk = """
        {"blockdevices": [
          {"name":"sda","pkname":null,"type":"disk","mountpoints":[null],"size":256060514304,
           "children": [
              {"name":"sda1","pkname":"sda","type":"part","mountpoints":["/boot/efi"],"size":1127219200},
              {"name":"sda2","pkname":"sda","type":"part","mountpoints":["/boot"],"size":2147483648},
              {"name":"sda3","pkname":"sda","type":"part","mountpoints":[null],"size":252783362048,
               "children": [
                  {"name":"ubuntu--vg-ubuntu--lv","pkname":"sda3","type":"lvm","mountpoints":["/"],"size":107374182400}
               ]}
           ]},
          {"name":"sdb","pkname":null,"type":"disk","mountpoints":[null],"size":4000787030016,
           "children": [
              {"name":"vgdata-srv","pkname":"sdb","type":"lvm","mountpoints":["/srv"],"size":8001574060032}
           ]},
          {"name":"sdc","pkname":null,"type":"disk","mountpoints":[null],"size":4000787030016,
           "children": [
              {"name":"vgdata-srv","pkname":"sdc","type":"lvm","mountpoints":["/srv"],"size":8001574060032}
           ]},
          {"name":"sdd","pkname":null,"type":"disk","mountpoints":[null],"size":4000787030016,
           "children": [
              {"name":"sdd1","pkname":"sdd","type":"part","mountpoints":[null],"size":4000785104896}
           ]}
        ]}
        """
    static let lvmMountinfo = """
        26 1 253:0 / / rw,relatime shared:1 - ext4 /dev/mapper/ubuntu--vg-ubuntu--lv rw
        27 26 8:2 / /boot rw,relatime shared:21 - ext4 /dev/sda2 rw
        28 27 8:1 / /boot/efi rw,relatime shared:22 - vfat /dev/sda1 rw
        60 26 253:1 / /srv rw,relatime shared:30 - xfs /dev/mapper/vgdata-srv rw
        61 26 253:1 /exports /mnt/my\\040exports rw,relatime shared:31 - xfs /dev/mapper/vgdata-srv rw
        """

    /// Root on LVM inside dm-crypt on nvme0n1p3, in lsblk's flat form (`-l`: no `children`, only PKNAME).
    static let cryptLsblk = """
        {"blockdevices": [
          {"name":"nvme0n1","pkname":null,"type":"disk","mountpoint":null,"size":512110190592},
          {"name":"nvme0n1p1","pkname":"nvme0n1","type":"part","mountpoint":"/boot/efi","size":536870912},
          {"name":"nvme0n1p2","pkname":"nvme0n1","type":"part","mountpoint":"/boot","size":1073741824},
          {"name":"nvme0n1p3","pkname":"nvme0n1","type":"part","mountpoint":null,"size":510497472512},
          {"name":"nvme0n1p3_crypt","pkname":"nvme0n1p3","type":"crypt","mountpoint":null,"size":510480695296},
          {"name":"vg0-root","pkname":"nvme0n1p3_crypt","type":"lvm","mountpoint":"/","size":476741369856},
          {"name":"vg0-swap","pkname":"nvme0n1p3_crypt","type":"lvm","mountpoint":"[SWAP]","size":33739325440},
          {"name":"sda","pkname":null,"type":"disk","mountpoint":null,"size":960197124096},
          {"name":"sda1","pkname":"sda","type":"part","mountpoint":null,"size":960195027456},
          {"name":"staging_crypt","pkname":"sda1","type":"crypt","mountpoint":null,"size":960178250240}
        ]}
        """
    static let cryptMountinfo = """
        1 0 253:1 / / rw,relatime - ext4 /dev/mapper/vg0-root rw,errors=remount-ro
        """

    /// Root on RAID 1 over sda1 and sdb1: both disks hold it.
    static let raidLsblk = """
        {"blockdevices": [
          {"name":"sda","pkname":null,"type":"disk","mountpoint":null,"size":480103981056,"children":[
             {"name":"sda1","pkname":"sda","type":"part","mountpoint":null,"size":480102932480,"children":[
                {"name":"md0","pkname":"sda1","type":"raid1","mountpoint":"/","size":479967690752}]}]},
          {"name":"sdb","pkname":null,"type":"disk","mountpoint":null,"size":480103981056,"children":[
             {"name":"sdb1","pkname":"sdb","type":"part","mountpoint":null,"size":480102932480,"children":[
                {"name":"md0","pkname":"sdb1","type":"raid1","mountpoint":"/","size":479967690752}]}]},
          {"name":"sdc","pkname":null,"type":"disk","mountpoint":null,"size":480103981056}
        ]}
        """
    static let raidMountinfo = "30 1 9:0 / / rw,relatime shared:1 - ext4 /dev/md0 rw\n"
}

extension LinuxCommandTests {
    struct RootDisk {
        typealias F = LinuxDiskFixtures

        func refusal(_ guardian: LinuxDiskGuard, _ device: String) -> LinuxDriverError? {
            do { try guardian.checkMayModify(device); return nil } catch { return error }
        }

        @Test func mountinfoParsing() throws {
            let entries = try LinuxMountInfo.parse(F.lvmMountinfo)
            #expect(entries.count == 5)
            #expect(entries[0].source == "/dev/mapper/ubuntu--vg-ubuntu--lv" && entries[0].major == 253 && entries[0].minor == 0)
            #expect(entries[0].fileSystemType == "ext4" && entries[0].mountPoint == "/")
            #expect(entries[4].mountPoint == "/mnt/my exports" && entries[4].root == "/exports")
            #expect(LinuxMountInfo.rootMount(entries)?.mountID == 26)
            // A later mount on / hides the earlier one.
            let stacked = try LinuxMountInfo.parse(F.vmMountinfo + "\n99 27 0:50 / / rw - overlay overlay rw,lowerdir=/x\n")
            #expect(LinuxMountInfo.rootMount(stacked)?.fileSystemType == "overlay")
            for bad in ["27 1 254:0 / / rw,relatime ext4 /dev/vda rw", "x 1 254:0 / / rw - ext4 /dev/vda rw", "27 1 254 / / rw - ext4 /dev/vda rw", "27 1 254:0 / / rw -"] {
                #expect(throws: LinuxDriverError.self, "\(bad)") { try LinuxMountInfo.parse(bad) }
            }
        }

        @Test func lsblkParsingInAllItsShapes() throws {
            let lvm = try LinuxBlockDevices.parse(F.lvmLsblk)
            #expect(lvm.devices["vgdata-srv"]?.parents == ["sdb", "sdc"])  // listed twice, merged
            #expect(lvm.devices["ubuntu--vg-ubuntu--lv"]?.mountpoints == ["/"])
            #expect(lvm.devices["sda"]?.mountpoints == [])
            #expect(lvm.disks(under: "ubuntu--vg-ubuntu--lv") == ["sda"])
            #expect(lvm.disks(under: "vgdata-srv") == ["sdb", "sdc"])
            let sata = try LinuxBlockDevices.parse(F.sataLsblk)
            #expect(sata.devices["sda"]?.size == 480_103_981_056)  // size as a string
            #expect(sata.devices["sdb2"]?.mountpoints == ["[SWAP]"])
            let crypt = try LinuxBlockDevices.parse(F.cryptLsblk)  // flat: parents only through PKNAME
            #expect(crypt.ancestors(of: "vg0-root") == ["vg0-root", "nvme0n1p3_crypt", "nvme0n1p3", "nvme0n1"])
            #expect(crypt.descendants(of: "nvme0n1p3") == ["nvme0n1p3", "nvme0n1p3_crypt", "vg0-root", "vg0-swap"])
            #expect(crypt.device(forPath: "/dev/mapper/vg0-root")?.type == "lvm")
            #expect(crypt.device(forPath: "/dev/nvme0n1p1")?.mountpoints == ["/boot/efi"])
            for bad in ["", "[]", "{\"blockdevices\": [{\"type\": \"disk\"}]}", "{\"devices\": []}"] {
                #expect(throws: LinuxDriverError.self, "\(bad)") { try LinuxBlockDevices.parse(bad) }
            }
        }

        @Test func nvme() throws {
            let g = try LinuxDiskGuard(mountInfoText: F.nvmeMountinfo, lsblkJSON: F.nvmeLsblk)
            #expect(g.root.device == "nvme0n1p2" && g.root.disks == ["nvme0n1"])
            #expect(refusal(g, "/dev/nvme0n1") == .holdsRunningRoot(device: "/dev/nvme0n1", disk: "/dev/nvme0n1", root: "/dev/nvme0n1p2 on /"))
            #expect(refusal(g, "/dev/nvme0n1p1") != nil)  // a partition of the root disk
            #expect(refusal(g, "/dev/nvme0n1p2") != nil)
            #expect(refusal(g, "/dev/nvme1n1") == .deviceInUse(device: "/dev/nvme1n1", user: "nvme1n1p2", mountpoint: "/var/lib/shoal/store"))
            #expect(refusal(g, "/dev/nvme1n1p1") == nil)  // the staging partition: free to write
            #expect(refusal(g, "/dev/nvme2n1") == .unknownDevice("/dev/nvme2n1"))
            #expect(refusal(g, "/dev/nvme0n1")!.description.contains("holds the running root"))
        }

        @Test func sataDuringAConversion() throws {
            // Booted into the staging OS on sdb1: now the original disk sda may be wiped, sdb may not.
            let g = try LinuxDiskGuard(mountInfoText: F.sataMountinfo, lsblkJSON: F.sataLsblk)
            #expect(g.root.disks == ["sdb"])
            #expect(refusal(g, "/dev/sda") == nil)
            #expect(refusal(g, "/dev/sda3") == nil)
            #expect(refusal(g, "/dev/sdb") != nil && refusal(g, "/dev/sdb2") != nil)
            #expect(refusal(g, "/dev/sr0") == nil)
        }

        @Test func lvmOnAPartition() throws {
            let g = try LinuxDiskGuard(mountInfoText: F.lvmMountinfo, lsblkJSON: F.lvmLsblk)
            #expect(g.root.device == "ubuntu--vg-ubuntu--lv" && g.root.source == "/dev/mapper/ubuntu--vg-ubuntu--lv")
            #expect(g.root.disks == ["sda"])
            #expect(refusal(g, "/dev/sda") != nil && refusal(g, "/dev/sda3") != nil)
            #expect(refusal(g, "/dev/mapper/ubuntu--vg-ubuntu--lv") != nil)
            // sdb and sdc carry a mounted LV between them: in use, each of them.
            #expect(refusal(g, "/dev/sdb") == .deviceInUse(device: "/dev/sdb", user: "vgdata-srv", mountpoint: "/srv"))
            #expect(refusal(g, "/dev/sdc") == .deviceInUse(device: "/dev/sdc", user: "vgdata-srv", mountpoint: "/srv"))
            #expect(refusal(g, "/dev/sdd") == nil)
        }

        @Test func rootOnDmCrypt() throws {
            let g = try LinuxDiskGuard(mountInfoText: F.cryptMountinfo, lsblkJSON: F.cryptLsblk)
            #expect(g.root.device == "vg0-root" && g.root.disks == ["nvme0n1"])
            for d in ["/dev/nvme0n1", "/dev/nvme0n1p1", "/dev/nvme0n1p3", "/dev/mapper/nvme0n1p3_crypt", "/dev/mapper/vg0-swap"] {
                guard case .holdsRunningRoot = refusal(g, d) else { Issue.record("\(d) not refused as the root's disk"); continue }
            }
            #expect(refusal(g, "/dev/sda") == nil && refusal(g, "/dev/mapper/staging_crypt") == nil)
        }

        @Test func rootOnRAID1ProtectsBothDisks() throws {
            let g = try LinuxDiskGuard(mountInfoText: F.raidMountinfo, lsblkJSON: F.raidLsblk)
            #expect(g.root.disks == ["sda", "sdb"])
            #expect(refusal(g, "/dev/sda") != nil && refusal(g, "/dev/sdb1") != nil)
            #expect(refusal(g, "/dev/sdc") == nil)
        }

        @Test func thisMachineAndUnknownRoots() throws {
            let g = try LinuxDiskGuard(mountInfoText: F.vmMountinfo, lsblkJSON: F.vmLsblk)
            #expect(g.root.device == "vda" && g.root.disks == ["vda"])
            #expect(refusal(g, "/dev/vda") != nil && refusal(g, "/dev/zram0") == nil)
            // Root on overlay with no "/" in lsblk: refuse to decide rather than guess.
            let overlay = "1 0 0:50 / / rw - overlay overlay rw,lowerdir=/a\n"
            let noRootLsblk = F.vmLsblk.replacingOccurrences(of: "\"mountpoint\": \"/\"", with: "\"mountpoint\": null")
            #expect(throws: LinuxDriverError.self) { try LinuxDiskGuard(mountInfoText: overlay, lsblkJSON: noRootLsblk) }
            #expect(throws: LinuxDriverError.self) { try LinuxDiskGuard(mountInfoText: "", lsblkJSON: F.vmLsblk) }
            // Root found by the mountinfo source when lsblk lacks mount points.
            let byName = try LinuxDiskGuard(mountInfoText: F.cryptMountinfo, lsblkJSON: F.cryptLsblk.replacingOccurrences(of: "\"mountpoint\":\"/\"", with: "\"mountpoint\":null"))
            #expect(byName.root.disks == ["nvme0n1"])
        }

        @Test func partitionRuleForAStagingPartitionOnTheRootDisk() throws {
            // Same-disk layout: the original OS on nvme0n1p2, staging booted from nvme0n1p3.
            let lsblk = """
                {"blockdevices": [{"name":"nvme0n1","pkname":null,"type":"disk","mountpoint":null,"size":1000,"children":[
                  {"name":"nvme0n1p1","pkname":"nvme0n1","type":"part","mountpoint":"/boot/efi","size":1},
                  {"name":"nvme0n1p2","pkname":"nvme0n1","type":"part","mountpoint":null,"size":500},
                  {"name":"nvme0n1p3","pkname":"nvme0n1","type":"part","mountpoint":"/","size":499}]}]}
                """
            let g = try LinuxDiskGuard(mountInfoText: "28 1 259:3 / / rw - ext4 /dev/nvme0n1p3 rw\n", lsblkJSON: lsblk)
            #expect(refusal(g, "/dev/nvme0n1p2") != nil)  // the disk-level rule refuses it
            try g.checkMayModifyPartition("/dev/nvme0n1p2")  // the partition rule allows it
            #expect(throws: LinuxDriverError.self) { try g.checkMayModifyPartition("/dev/nvme0n1p3") }  // root itself
            #expect(throws: LinuxDriverError.self) { try g.checkMayModifyPartition("/dev/nvme0n1p1") }  // mounted
            #expect(throws: LinuxDriverError.self) { try g.checkMayModifyPartition("/dev/nvme0n1") }  // a disk
            let crypt = try LinuxDiskGuard(mountInfoText: F.cryptMountinfo, lsblkJSON: F.cryptLsblk)
            #expect(throws: LinuxDriverError.self) { try crypt.checkMayModifyPartition("/dev/nvme0n1p3") }  // under the root
        }
    }
}
