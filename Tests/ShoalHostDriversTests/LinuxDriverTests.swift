import Foundation
import Glibc
import ShoalAgent
import ShoalHostLab
import ShoalHostProfile
import ShoalStorage
import ShoalTestKit
import Testing

@testable import ShoalHostDrivers

/// Runs the driver's commands for real — sfdisk, wipefs, mount, umount, partx, lsblk,
/// grub-editenv on the test's own file — except the ones that would act on this machine: a
/// reboot, its GRUB and its UEFI variables, which are recorded (and answered from `canned`).
/// As a second line of defence it refuses any command that names a `/dev` device other than the
/// test's loop devices, or a GRUB environment file outside the test's directory.
final class LinuxTestRunner: LinuxCommandRunner, @unchecked Sendable {
    static let recordOnly: Set<String> = [
        "systemctl", "grub-reboot", "grub-set-default", "grub2-reboot", "grub2-set-default", "efibootmgr",
    ]
    static let readOnly: Set<String> = ["lsblk", "ip"]

    let allowedDevices: [String]
    let allowedDirectory: String
    private let lock = NSLock()
    private var _ran: [[String]] = []
    private var _recorded: [[String]] = []
    private var _refused: [[String]] = []
    /// Output for commands that are not run, by argv joined with spaces.
    var canned: [String: String] = [:]
    /// When set, the device lsblk reports mounted at `/` (and the real root's `/` is removed):
    /// how a test plays "the host booted from this partition" on a VM whose root is elsewhere.
    private var _booted: String?
    var booted: String? {
        get { lock.withLock { _booted } }
        set { lock.withLock { _booted = newValue } }
    }

    init(allowedDevices: [String], allowedDirectory: String) {
        self.allowedDevices = allowedDevices
        self.allowedDirectory = allowedDirectory
    }

    var ran: [[String]] { lock.withLock { _ran } }
    var recorded: [[String]] { lock.withLock { _recorded } }
    var refused: [[String]] { lock.withLock { _refused } }

    func run(_ command: LinuxCommand) throws -> LinuxCommandOutput {
        let argv = command.argv
        let key = argv.joined(separator: " ")
        if Self.recordOnly.contains(command.executable) {
            lock.withLock { _recorded.append(argv) }
            return LinuxCommandOutput(text: canned[key] ?? "")
        }
        if let text = canned[key] {
            lock.withLock { _recorded.append(argv) }
            return LinuxCommandOutput(text: text)
        }
        if !Self.readOnly.contains(command.executable) {
            let devices = command.arguments.filter { $0.hasPrefix("/dev/") }
            let foreign = devices.filter { d in !allowedDevices.contains { d == $0 || d.hasPrefix($0 + "p") } }
            let files = command.executable.hasSuffix("-editenv") ? command.arguments.prefix(1).filter { !$0.hasPrefix(allowedDirectory + "/") } : []
            if !foreign.isEmpty || !files.isEmpty {
                lock.withLock { _refused.append(argv) }
                throw LinuxCommandError(command: command.displayString, status: nil, detail: "refused by the test runner: \((foreign + files).joined(separator: " ")) is not the test's")
            }
        }
        lock.withLock { _ran.append(argv) }
        let output = try LinuxProcessRunner().run(command)
        if command.executable == "lsblk", let booted { return LinuxCommandOutput(text: try Self.lsblk(output.text, rootOn: booted)) }
        return output
    }

    /// lsblk's JSON with `/` moved onto `device`.
    static func lsblk(_ json: String, rootOn device: String) throws -> String {
        let name = String(device.dropFirst("/dev/".count))
        func patch(_ node: [String: Any]) -> [String: Any] {
            var node = node
            if node["mountpoint"] as? String == "/" { node["mountpoint"] = NSNull() }
            if node["name"] as? String == name { node["mountpoint"] = "/" }
            if let children = node["children"] as? [[String: Any]] { node["children"] = children.map(patch) }
            return node
        }
        var top = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        top["blockdevices"] = (top["blockdevices"] as? [[String: Any]] ?? []).map(patch)
        return String(decoding: try JSONSerialization.data(withJSONObject: top), as: UTF8.self)
    }
}

/// Two real loop disks with GPT tables: "disk0" (the original: a 4 MiB ESP, a 24 MiB root, free
/// space after it) and "disk1" (the staging disk: one 28 MiB partition), a GRUB environment block
/// file, and a `linux` driver configured on them with the test runner.
struct LinuxWorld {
    let dir: TemporaryDirectory
    let disk0: LoopDevice
    let disk1: LoopDevice
    let runner: LinuxTestRunner
    let configuration: LinuxDriverConfiguration

    var driver: LinuxDriver { LinuxDriver(configuration: configuration, runner: runner) }
    var grubenv: String { dir.file("grubenv") }

    static var canRun: Bool {
        getuid() == 0 && ["losetup", "sfdisk", "mount", "wipefs", "grub-editenv", "e2fsck", "partx"].allSatisfy { ChildProcess.which($0) != nil }
    }

    static func make(_ label: String) throws -> LinuxWorld {
        let dir = TemporaryDirectory(label)
        let disk0 = try LoopDevice.attachPartitioned(
            backingFile: dir.file("disk0.img"), size: 64 * mib,
            sfdiskScript: "label: gpt\nsize=4MiB, type=U, name=\"esp\"\nsize=24MiB, type=L, name=\"root\"\n", partitions: 2)
        let disk1: LoopDevice
        do {
            disk1 = try LoopDevice.attachPartitioned(
                backingFile: dir.file("disk1.img"), size: 32 * mib,
                sfdiskScript: "label: gpt\nsize=28MiB, type=L, name=\"staging\"\n", partitions: 1)
        } catch {
            disk0.detach()
            dir.remove()
            throw error
        }
        let runner = LinuxTestRunner(allowedDevices: [disk0.device, disk1.device], allowedDirectory: dir.path)
        // A lab host has no NIC to convert: `ip` answers what LabWorld's host would print.
        runner.canned["ip -j address show"] = LabWorld.ipAddressJSON
        runner.canned["ip -j route show"] = LabWorld.ipRouteJSON
        runner.canned["ip -j -6 route show"] = "[]"
        let configuration = LinuxDriverConfiguration(
            originalDisk: disk0.device, originalPartition: disk0.partition(2), stagingDisk: disk1.device,
            stagingPartition: disk1.partition(1), bootLoader: .grubEnvFile(path: dir.file("grubenv"), flavor: .grub),
            stateDirectory: dir.file("state"), fileSystemType: "ext4")
        _ = try? HostTool.run(["grub-editenv", dir.file("grubenv"), "create"])
        return LinuxWorld(dir: dir, disk0: disk0, disk1: disk1, runner: runner, configuration: configuration)
    }

    /// Unmounts anything left on the loop devices, detaches them, removes the directory.
    func remove() {
        let mountInfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        for entry in (try? LinuxMountInfo.parse(mountInfo)) ?? [] where
            entry.source.hasPrefix(disk0.device + "p") || entry.source.hasPrefix(disk1.device + "p") {
            _ = try? HostTool.run(["umount", entry.mountPoint])
        }
        disk0.detach()
        disk1.detach()
        dir.remove()
    }

    /// The mount points of `device` now.
    static func mounts(of device: String) -> [String] {
        let text = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return ((try? LinuxMountInfo.parse(text)) ?? []).filter { $0.source == device }.map(\.mountPoint)
    }

    /// `e2fsck -fn DEVICE`: nil when clean, else its output.
    static func fsck(_ device: String) throws -> String? {
        let out = try HostTool.run(["e2fsck", "-f", "-n", device], checked: false)
        return out.status == 0 ? nil : "exit \(out.status): \(out.text)\(out.stderr)"
    }

    /// alpha (ifupdown, static eth0, SSH host keys, root's authorized keys) and beta (netplan)
    /// as 20 MiB ext4 images and bundles, imported into the driver's packed store.
    func makeBundles() throws -> (alpha: String, beta: String) {
        let world = try LabWorldImages.make(in: dir)
        let alpha = try driver.importBundle(from: world.alpha)
        let beta = try driver.importBundle(from: world.beta)
        return (alpha, beta)
    }
}

/// The OS images of `LabWorld`, without a lab host.
enum LabWorldImages {
    static func make(in dir: TemporaryDirectory) throws -> (alpha: String, beta: String) {
        let alpha = try LabWorld.osTree(
            in: dir, id: "alpha", hostname: "web-01", stacks: [.ifupdown],
            files: [
                "/etc/network/interfaces": TreeFile(text: "auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n    address \(LabWorld.address)/24\n    gateway 10.20.30.1\n"),
                "/etc/resolv.conf": TreeFile(text: "nameserver 10.20.30.53\nsearch lab.example\n"),
                "/root/.ssh/authorized_keys": TreeFile(text: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBf0r3ch0o5MhM4Ccd4f8P7xYv3Hh0hQ0cgzq0GxQmrK ops@lab\n", mode: 0o600),
            ])
        let beta = try LabWorld.osTree(in: dir, id: "beta", hostname: "beta-default", stacks: [.netplan], files: [:])
        return (try LabWorld.bundle(alpha, name: "alpha", in: dir), try LabWorld.bundle(beta, name: "beta", in: dir))
    }
}

/// The `linux` driver against real loop devices, real mounts and a real GRUB environment file;
/// reboots, the machine's GRUB and UEFI are recorded, never run. Root only (skipped otherwise).
@Suite(.serialized) struct LinuxDriverTests {
    @Test func writesABundleOntoALoopPartitionCleanly() async throws {
        guard LinuxWorld.canRun else { return }
        let world = try LinuxWorld.make("linux-write")
        defer { world.remove() }
        let driver = world.driver
        let (alpha, beta) = try world.makeBundles()
        let deadline = Date().addingTimeInterval(300)

        try await driver.installStagingBundle(alpha)
        try await driver.writeImage(bundle: beta, to: .original, deadline: deadline)
        #expect(try LinuxWorld.fsck(world.disk0.partition(2)) == nil)
        #expect(try LinuxWorld.fsck(world.disk1.partition(1)) == nil)

        // Mount it read-only on a private mount point and read what was written.
        var mountPoint = ""
        let release = try driver.withMount(world.disk0.partition(2), readOnly: true) { root in
            mountPoint = root
            #expect(LinuxWorld.mounts(of: world.disk0.partition(2)) == [root])
            return try String(contentsOfFile: root + "/etc/os-release", encoding: .utf8)
        }
        #expect(release.contains("ID=\"beta\""))
        #expect(LinuxWorld.mounts(of: world.disk0.partition(2)).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: mountPoint))
        // Unmounted also when the work in the mount fails.
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try driver.withMount(world.disk1.partition(1), readOnly: false) { _ in throw Boom() }
        }
        #expect(LinuxWorld.mounts(of: world.disk1.partition(1)).isEmpty)

        // The original entry is called `target` once the driver wrote it; the write is logged.
        #expect(try driver.bootName(.original) == "target")
        let writes = try String(contentsOfFile: driver.driverDirectory + "/writes.jsonl", encoding: .utf8)
        #expect(writes.split(separator: "\n").count == 2 && writes.contains(world.disk0.partition(2)))
        // A second call re-checks or re-writes the same image (idempotent).
        try await driver.writeImage(bundle: beta, to: .original, deadline: deadline)
        #expect(try LinuxWorld.fsck(world.disk0.partition(2)) == nil)

        // Preflight reads the real GPTs (24 MiB root with free space after it on a 64 MiB disk)
        // and says the running system is none of these partitions.
        let facts = try await driver.preflightFacts(bundles: [alpha, beta, "0000"])
        #expect(facts.partitions[.original]?.sizeBytes == 24 * mib)
        #expect((facts.partitions[.original]?.growableBytes ?? 0) > 30 * mib)
        #expect(facts.partitions[.staging]?.sizeBytes == 28 * mib)
        #expect(facts.bundles[alpha] == .verified(imageBytes: 20 * mib) && facts.bundles["0000"] == .missing)
        #expect(facts.layoutProblem?.contains("not one of the configured partitions") == true)

        // Wipe: the file-system signature is gone, the partition table stays.
        try await driver.wipeOriginalDisk()
        let blkid = try HostTool.run(["blkid", "-p", world.disk0.partition(2)], checked: false)
        #expect(!blkid.text.contains("ext4"))
        #expect(try driver.bootName(.original) == "base")
        #expect(world.runner.ran.contains(["wipefs", "-a", world.disk0.partition(2)]))
        #expect(world.runner.refused.isEmpty)
    }

    @Test func capturesStoresAndRendersTheProfileThroughMounts() async throws {
        guard LinuxWorld.canRun else { return }
        let world = try LinuxWorld.make("linux-profile")
        defer { world.remove() }
        let driver = world.driver
        let (alpha, beta) = try world.makeBundles()
        let deadline = Date().addingTimeInterval(300)
        try await driver.installStagingBundle(alpha)
        try await driver.writeImage(bundle: alpha, to: .original, deadline: deadline)

        // Capture from "the running system": alpha's root mounted (read-only) as the live root.
        let (reference, alphaKeys) = try await driver.withMounted(world.disk0.partition(2), readOnly: true) { root in
            var config = world.configuration
            config.liveRoot = root
            let keys = try ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_ecdsa_key"].map {
                try Data(contentsOf: URL(fileURLWithPath: root + "/etc/ssh/" + $0))
            }
            return (try await LinuxDriver(configuration: config, runner: world.runner).captureProfile(), keys)
        }
        #expect(reference.location == "/var/lib/shoal/host-profile")
        #expect(try await driver.checkProfile(reference) == .intact)
        #expect(try await driver.checkProfile(ProfileReference(location: reference.location, checksum: String(repeating: "0", count: 64))) != .intact)
        // Stored inside the staging partition's file system, 0600.
        try driver.withMount(world.disk1.partition(1), readOnly: true) { root in
            var st = stat()
            #expect(stat(root + "/var/lib/shoal/host-profile", &st) == 0 && st.st_mode & 0o7777 == 0o600)
        }

        // Convert the original disk to beta and render the profile into it and into staging.
        try await driver.wipeOriginalDisk()
        try await driver.writeImage(bundle: beta, to: .original, deadline: deadline)
        try await driver.renderProfile(reference, into: .original, system: beta)
        try await driver.renderProfile(reference, into: .staging, system: alpha)

        try driver.withMount(world.disk0.partition(2), readOnly: true) { root in
            let netplan = try String(contentsOfFile: root + "/etc/netplan/90-shoal.yaml", encoding: .utf8)
            #expect(netplan.contains(LabWorld.mac) && netplan.contains("\(LabWorld.address)/24"))
            var st = stat()
            #expect(lstat(root + "/etc/netplan/90-shoal.yaml", &st) == 0 && st.st_mode & 0o7777 == 0o600 && st.st_uid == 0)
            #expect(try String(contentsOfFile: root + "/etc/hostname", encoding: .utf8).hasPrefix("web-01"))
            let keys = try ["ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_ecdsa_key"].map {
                try Data(contentsOf: URL(fileURLWithPath: root + "/etc/ssh/" + $0))
            }
            #expect(keys == alphaKeys)
            #expect(lstat(root + "/etc/ssh/ssh_host_ed25519_key", &st) == 0 && st.st_mode & 0o7777 == 0o600)
            #expect(lstat(root + "/root/.ssh/authorized_keys", &st) == 0 && st.st_mode & 0o7777 == 0o600)
            // beta's own netplan file moved aside, not left to compete.
            #expect(!FileManager.default.fileExists(atPath: root + "/etc/netplan/01-shoal-lab.yaml"))
            #expect(FileManager.default.fileExists(atPath: root + "/var/lib/shoal/network-config-disabled/etc/netplan/01-shoal-lab.yaml"))
            // No temporary files left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/etc/netplan").allSatisfy { !$0.contains("shoal-tmp") })
        }
        let stagingInterfaces = try driver.withMount(world.disk1.partition(1), readOnly: true) { root in
            try String(contentsOfFile: root + "/etc/network/interfaces", encoding: .utf8)
        }
        #expect(stagingInterfaces.contains(LabWorld.address))
        #expect(try LinuxWorld.fsck(world.disk0.partition(2)) == nil)
        #expect(try LinuxWorld.fsck(world.disk1.partition(1)) == nil)
        #expect(LinuxWorld.mounts(of: world.disk0.partition(2)).isEmpty && LinuxWorld.mounts(of: world.disk1.partition(1)).isEmpty)
        let note = try String(contentsOfFile: driver.driverDirectory + "/render-original.txt", encoding: .utf8)
        #expect(note.contains("netplan"))
        #expect(world.runner.refused.isEmpty)
    }

    @Test func refusesTheDiskHoldingTheRunningRoot() async throws {
        guard LinuxWorld.canRun else { return }
        let world = try LinuxWorld.make("linux-refuse")
        defer { world.remove() }
        // This VM's real root, found the way the driver finds it.
        let root = try world.driver.diskGuard().root
        let rootDisk = "/dev/" + (root.disks.sorted().first ?? root.device)
        var config = world.configuration
        config.originalDisk = rootDisk
        config.originalPartition = "/dev/" + root.device
        let driver = LinuxDriver(configuration: config, runner: world.runner)

        for (what, action) in [
            ("wipe", { try await driver.wipeOriginalDisk() }),
            ("write", { try await driver.writeImage(bundle: "00", to: .original, deadline: Date().addingTimeInterval(60)) }),
            ("grow", { try await driver.growPartition(.original, toBytes: 1 << 40) }),
        ] as [(String, () async throws -> Void)] {
            do {
                try await action()
                Issue.record("\(what) of \(rootDisk) was not refused")
            } catch let error as LinuxDriverError {
                guard case .holdsRunningRoot = error else { Issue.record("\(what): \(error)"); continue }
                #expect(error.description.contains("holds the running root file system"))
                #expect(error.description.contains(rootDisk))
            }
        }
        // Nothing that changes a disk ran: only lsblk.
        #expect(world.runner.ran.allSatisfy { $0.first == "lsblk" })
        #expect(world.runner.refused.isEmpty)

        // A mounted partition is refused too, even on a disk the root is not on.
        let mounted = world.disk1.partition(1)
        _ = try HostTool.run(["mkfs.ext4", "-q", "-F", mounted])
        let refusal = try world.driver.withMount(mounted, readOnly: true) { _ in
            Result { try world.driver.checkWritable(mounted) }
        }
        #expect(throws: LinuxDriverError.self) { try refusal.get() }
        try world.driver.checkWritable(mounted)
    }

    @Test func armsOneShotAndDefaultBoots() async throws {
        guard LinuxWorld.canRun else { return }
        let world = try LinuxWorld.make("linux-boot")
        defer { world.remove() }
        let driver = world.driver
        func env() throws -> String { try HostTool.run(["grub-editenv", world.grubenv, "list"]).text }

        // A GRUB environment block file, edited for real.
        try await driver.setOneShotBoot(.staging)
        #expect(try env().contains("next_entry=staging"))
        try await driver.setDefaultBoot(.original)
        #expect(try env().contains("saved_entry=base"))
        try await driver.clearOneShotBoot()
        #expect(!(try env().contains("next_entry")))
        #expect(try env().contains("saved_entry=base"))
        try driver.saveState(.init(originalBundle: "beta"))
        try await driver.setOneShotBoot(.original)
        #expect(try env().contains("next_entry=target"))
        #expect(world.runner.ran.filter { $0.first == "grub-editenv" }.count == 4)

        // The machine's GRUB: argv recorded, never run.
        var config = world.configuration
        config.bootLoader = .grub(bootDirectory: "/boot", flavor: .grub)
        let grub = LinuxDriver(configuration: config, runner: world.runner)
        try await grub.setOneShotBoot(.staging)
        try await grub.setDefaultBoot(.original)
        try await grub.reboot()
        #expect(world.runner.recorded.suffix(3) == [
            ["grub-reboot", "--boot-directory=/boot", "staging"], ["grub-set-default", "--boot-directory=/boot", "target"],
            ["systemctl", "reboot"],
        ])
        // Disarming edits the machine's own block: the test runner refuses it (and nothing ran).
        await #expect(throws: LinuxCommandError.self) { try await grub.clearOneShotBoot() }
        #expect(world.runner.refused.last == ["grub-editenv", "/boot/grub/grubenv", "unset", "next_entry"])

        // UEFI: entries found by label in `efibootmgr -v`.
        config.bootLoader = .efi
        config.entries = LinuxBootEntryNames(base: "debian", target: "target", staging: "shoal-staging")
        world.runner.canned["efibootmgr -v"] = """
            BootCurrent: 0001
            BootNext: 0004
            Timeout: 1 seconds
            BootOrder: 0001,0004,0003
            Boot0001* debian\tHD(1,GPT,0a,0x800,0x100000)/File(\\EFI\\debian\\shimx64.efi)
            Boot0003* target\tHD(1,GPT,0a,0x800,0x100000)/File(\\EFI\\debian\\grubx64.efi)
            Boot0004* shoal-staging\tHD(1,GPT,0b,0x800,0x100000)/File(\\EFI\\shoal\\grubx64.efi)

            """
        let efi = LinuxDriver(configuration: config, runner: world.runner)
        try await efi.setOneShotBoot(.staging)
        try await efi.setDefaultBoot(.original)
        try await efi.clearOneShotBoot()
        #expect(world.runner.recorded.filter { $0.first == "efibootmgr" && $0 != ["efibootmgr", "-v"] } == [
            ["efibootmgr", "--bootnext", "0004"], ["efibootmgr", "--bootorder", "0003,0001,0004"], ["efibootmgr", "--delete-bootnext"],
        ])
        config.entries.staging = "missing"
        await #expect(throws: LinuxDriverError.self) { try await LinuxDriver(configuration: config, runner: world.runner).setOneShotBoot(.staging) }
    }

    @Test func bootedEntryOnThisVMIsNoneOfTheConfiguredPartitions() async throws {
        guard LinuxWorld.canRun else { return }
        let world = try LinuxWorld.make("linux-booted")
        defer { world.remove() }
        do {
            let entry = try await world.driver.bootedEntry()
            Issue.record("this VM booted \(entry)?")
        } catch let error as LinuxHostDriverError {
            #expect(error.description.contains("not one of the configured partitions"))
            #expect(error.description.contains(world.disk0.partition(2)) && error.description.contains(world.disk1.partition(1)))
        }
        // And the health check says so instead of guessing.
        await #expect(throws: LinuxHostDriverError.self) { _ = try await world.driver.checkHealth() }
    }

    @Test func growsTheOriginalPartitionIntoTheFreeSpace() async throws {
        guard LinuxWorld.canRun else { return }
        let world = try LinuxWorld.make("linux-grow")
        defer { world.remove() }
        let driver = world.driver
        try await driver.growPartition(.original, toBytes: 40 * mib)
        let facts = try driver.partitionFacts(disk: world.disk0.device, partition: world.disk0.partition(2)).facts
        #expect(facts.sizeBytes >= 40 * mib && facts.growableBytes == 0)
        // The kernel sees the new size (partx -u), and a second call changes nothing.
        let size = try HostTool.run(["blockdev", "--getsize64", world.disk0.partition(2)]).text
        #expect(UInt64(size.trimmingCharacters(in: .whitespacesAndNewlines)) == facts.sizeBytes)
        let before = world.runner.ran.count
        try await driver.growPartition(.original, toBytes: 40 * mib)
        #expect(!world.runner.ran.dropFirst(before).contains { $0.first == "sfdisk" && $0.contains("-N") })
        await #expect(throws: LinuxHostDriverError.self) { try await driver.growPartition(.original, toBytes: 1 << 30) }
    }
    /// A whole conversion by the real agent and its file store on the loop disks: the host "boots"
    /// by the GRUB environment file the driver edits (a set `next_entry` wins once and is cleared,
    /// else `saved_entry`), which the test plays as the firmware: it mounts the booted partition
    /// as the live root and makes lsblk and mountinfo say `/` is on it. Everything else is real:
    /// the guard, the mounts, the writes, the renders, the grub-editenv edits.
    ///
    /// With `cut`, the power is cut once at that driver call (before or after its real action):
    /// the agent stops (`interrupted`), the test power-cycles the host (the firmware boots what it
    /// would, as at a reboot), and a new agent finishes.
    @Test(arguments: [nil, "wipeOriginalDisk after", "writeImage after", "renderProfile(original) before", "setDefaultBoot(staging) after"])
    func convertsAlphaToBetaWithTheRealAgent(cut: String?) async throws {
        guard LinuxWorld.canRun else { return }
        let world = try LinuxWorld.make("linux-convert")
        defer { world.remove() }
        let (alpha, beta) = try world.makeBundles()
        let live = world.dir.file("live")
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
        var config = world.configuration
        config.liveRoot = live
        config.mountInfoPath = world.dir.file("mountinfo")
        let driver = LinuxDriver(configuration: config, runner: world.runner)
        // The host before: alpha on both (written with the VM's real root in view).
        try await world.driver.installStagingBundle(alpha)
        try await world.driver.writeImage(bundle: alpha, to: .original, deadline: Date().addingTimeInterval(300))
        try driver.saveState(.init(originalBundle: nil))  // alpha is the base OS, not something this operation wrote
        _ = try HostTool.run(["grub-editenv", world.grubenv, "set", "saved_entry=base"])

        var mounted = false
        var previous: String?
        func boot(_ device: String) throws {
            if mounted {
                _ = try HostTool.run(["umount", live])
                // A real reboot leaves nothing of the old mount behind. Here the kernel may keep the
                // file system busy a moment after umount (on this shared VM, another process's
                // mount namespace can hold a copy briefly), so wait until the device can be
                // claimed exclusively, as BundleApplier and wipefs will.
                if let previous { try Self.waitUntilReleased(previous) }
            }
            previous = device
            _ = try HostTool.run(["mount", device, live])
            mounted = true
            world.runner.booted = device
            try "27 1 259:0 / / rw,relatime - ext4 \(device) rw\n".write(toFile: config.mountInfoPath, atomically: true, encoding: .utf8)
        }
        /// GRUB's choice: next_entry once (cleared), else saved_entry.
        func firmware() throws -> String {
            let env = try HostTool.run(["grub-editenv", world.grubenv, "list"]).text
            func value(_ key: String) -> String? {
                env.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }.flatMap { $0.isEmpty ? nil : $0 }
            }
            let entry = value("next_entry") ?? value("saved_entry") ?? "base"
            _ = try HostTool.run(["grub-editenv", world.grubenv, "unset", "next_entry"])
            return entry
        }
        defer { if mounted { _ = try? HostTool.run(["umount", live]) } }
        try boot(config.originalPartition)
        #expect(try await driver.bootedEntry() == .original)

        let store = try FileOperationStore(directory: driver.agentStateDirectory)
        let request = OperationRequest(
            id: "convert-linux", kind: .convert,
            parameters: OperationParameters(stagingBundle: alpha, targetBundle: beta, healthTimeoutSeconds: 30, healthPollSeconds: 1))
        let started = Date()
        _ = try await Agent(driver: driver, store: store).accept(request)
        var boots: [String] = []
        var record: OperationRecord?
        let cutting = cut.map { PowerCutDriver(driver, cut: .named(String($0.split(separator: " ")[0])), afterAction: $0.hasSuffix("after")) }
        for _ in 0..<8 {
            do {
                switch try await Agent(driver: cutting ?? driver, store: store).resume() {
                case .idle: Issue.record("idle")
                case .finished(let r): record = r
                case .rebooting:
                    let entry = try firmware()
                    boots.append(entry)
                    try boot(entry == "staging" ? config.stagingPartition : config.originalPartition)
                }
            } catch AgentError.interrupted {
                let entry = try firmware()
                boots.append("power cycle: \(entry)")
                try boot(entry == "staging" ? config.stagingPartition : config.originalPartition)
            }
            if record != nil { break }
        }
        if let cutting { #expect(cutting.didCut, "never reached \(cut ?? "")") }
        let seconds = Date().timeIntervalSince(started)
        let r = try #require(record)
        #expect(r.outcome?.result == .succeeded, "\(r.outcome.map { "\($0)" } ?? "no outcome"): \(r.log.suffix(4).map(\.message))")
        if cut == nil {
            #expect(boots == ["staging", "target"])
            #expect(world.runner.recorded.filter { $0 == ["systemctl", "reboot"] }.count == 2)
        } else {
            #expect(boots.contains("power cycle: staging") && boots.last == "target", "\(boots)")
        }
        let env = try HostTool.run(["grub-editenv", world.grubenv, "list"]).text
        #expect(env.contains("saved_entry=target") && !env.contains("next_entry="))
        // The live root is beta now, with alpha's identity and address in netplan.
        #expect(try String(contentsOfFile: live + "/etc/os-release", encoding: .utf8).contains("ID=\"beta\""))
        #expect(try String(contentsOfFile: live + "/etc/hostname", encoding: .utf8).hasPrefix("web-01"))
        #expect(try String(contentsOfFile: live + "/etc/netplan/90-shoal.yaml", encoding: .utf8).contains("\(LabWorld.address)/24"))
        _ = try HostTool.run(["umount", live])
        mounted = false
        #expect(try LinuxWorld.fsck(config.originalPartition) == nil)
        #expect(try LinuxWorld.fsck(config.stagingPartition) == nil)
        #expect(world.runner.refused.isEmpty)
        let timings = stepTimings(r).map { "\($0.0)=\(String(format: "%.3f", $0.1))s" }.joined(separator: " ")
        print("linux convert on loop devices\(cut.map { " (power cut at \($0))" } ?? ""): \(String(format: "%.2f", seconds)) s; boots \(boots); steps: \(timings)")
    }
    /// The writer never follows a symbolic link: not in a parent (refused, nothing written
    /// outside the tree), not at the final name (the link is replaced).
    @Test func treeWriterNeverFollowsALink() throws {
        guard getuid() == 0 else { return }
        let dir = TemporaryDirectory("linux-writer")
        defer { dir.remove() }
        let tree = dir.file("tree"), outside = dir.file("outside")
        try FileManager.default.createDirectory(atPath: tree + "/var", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        #expect(symlink(outside, tree + "/etc") == 0)
        #expect(symlink(outside + "/victim", tree + "/var/hostname") == 0)
        let writer = LinuxTreeWriter(root: tree)
        #expect(throws: LinuxTreeWriter.Failure.self) { try writer.write(RenderedFile(path: "/etc/hostname", text: "x\n", mode: 0o644)) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside).isEmpty)
        try writer.write(RenderedFile(path: "/var/hostname", text: "web-01\n", mode: 0o640, uid: 1000, gid: 1000))
        #expect(!FileManager.default.fileExists(atPath: outside + "/victim"))
        var st = stat()
        #expect(lstat(tree + "/var/hostname", &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG && st.st_mode & 0o7777 == 0o640)
        #expect(st.st_uid == 1000 && st.st_gid == 1000)
        try writer.write(RenderedFile(path: "/new/dir/key", text: "k", mode: 0o600))
        #expect(stat(tree + "/new/dir", &st) == 0 && st.st_mode & 0o7777 == 0o755)
    }
    /// `shoal host … --driver linux`: usage errors, and a host whose root is none of the
    /// configured partitions is refused at the start with the driver's reason (nothing but
    /// `lsblk` runs: devices that do not exist are named on purpose).
    @Test func cliDriverLinuxRefusesWhatItCannotCheck() throws {
        let state = TemporaryDirectory("linux-cli")
        defer { state.remove() }
        var r = try ShoalExecutable.run("host", "convert", "--driver", "linux", "--staging-bundle", "a", "--target-bundle", "b")
        #expect(r.status == 64 && r.stderr.contains("--disk, --root-partition, --staging and --state"), "\(r.stderr)")
        r = try ShoalExecutable.run(
            "host", "convert", "--driver", "linux", "--disk", "/dev/shoal-none", "--root-partition", "/dev/shoal-none2",
            "--staging", "/dev/shoal-nonex1", "--grub-env", state.file("grubenv"), "--state", state.path,
            "--staging-bundle", "a", "--target-bundle", "b", "--id", "c1")
        #expect(r.status == 1 && r.stderr.contains("not one of the configured partitions"), "\(r.stderr)")
        let log = try String(contentsOfFile: state.path + "/linux-driver/commands.log", encoding: .utf8)
        #expect(log.split(separator: "\n").allSatisfy { $0.contains(" lsblk ") })
        r = try ShoalExecutable.run("host", "status", "--state", state.path)
        #expect(r.status == 0 && r.stdout.contains("no operation"))
    }
    /// Waits (up to 10 s) until `device` can be opened with O_EXCL (no mount holds it anywhere).
    static func waitUntilReleased(_ device: String) throws {
        for _ in 0..<200 {
            let fd = open(device, O_RDONLY | O_EXCL | O_CLOEXEC)
            if fd >= 0 { close(fd); return }
            usleep(50_000)
        }
        let holders = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { pid in
            pid.allSatisfy(\.isNumber) && ((try? String(contentsOfFile: "/proc/\(pid)/mountinfo", encoding: .utf8))?.contains(device + " ") ?? false)
        }
        throw TestKitError("\(device) still busy 10 s after umount; mounted in the namespaces of pids \(holders.prefix(5))")
    }
}

