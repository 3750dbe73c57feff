#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import ShoalAgent
import ShoalBundle
import ShoalCrypto
import ShoalHostProfile
import ShoalStorage

/// Why the `linux` driver refused or failed an action (shown in the step log as `actionFailed`).
public struct LinuxHostDriverError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The `linux` host driver: the agent's steps on a real Linux host.
///
/// Every command comes from `ShoalAgent.LinuxCommands` and runs through a ``LinuxCommandRunner``
/// (``LinuxProcessRunner`` on a host); each one is appended to `STATE/linux-driver/commands.log`.
///
/// - **Safety.** Before anything is wiped, written, grown or mounted read-write, the running root
///   is located from `/proc/self/mountinfo` and `lsblk` (`LinuxDiskGuard`), and the device must
///   pass `checkMayModify` (nothing on a disk that holds the running root, nothing mounted) — or,
///   when the staging partition shares the original disk, the narrower `checkMayModifyPartition`.
///   If the root cannot be located the driver touches nothing.
/// - **Images** are written with `ShoalStorage.BundleApplier` straight onto the partition's block
///   device (every chunk's SHA-256, zstd, io_uring, a resume log in the state directory).
/// - **Profiles** are captured from the running system (`ip -j address|route show`, the files
///   under ``LinuxDriverConfiguration/liveRoot``) and stored, as an envelope with its checksum,
///   inside the staging partition's file system; they are rendered into an OS by mounting its
///   partition on a private temporary mount point (always unmounted, also on error), detecting its
///   network-config format, moving its competing configs aside and writing the files with
///   ``LinuxTreeWriter`` (no link followed, exact modes and owners, fsync, rename).
/// - **Boot**: `grub-reboot`/`grub-set-default`, or `grub-editenv FILE`, or `efibootmgr`
///   (``LinuxBootLoader``); reboot is `systemctl reboot`.
public struct LinuxDriver: HostDriver {
    public let configuration: LinuxDriverConfiguration
    public let runner: any LinuxCommandRunner

    public init(configuration: LinuxDriverConfiguration, runner: any LinuxCommandRunner = LinuxProcessRunner()) {
        self.configuration = configuration
        self.runner = runner
    }

    // MARK: Paths and state

    /// The agent's operation store directory.
    public var agentStateDirectory: String { configuration.stateDirectory + "/agent" }
    var driverDirectory: String { configuration.stateDirectory + "/linux-driver" }
    var driverStatePath: String { driverDirectory + "/driver.json" }
    /// Every command the driver ran, one `displayString` a line with a time stamp.
    public var commandLogPath: String { driverDirectory + "/commands.log" }
    public func bundlePath(_ id: String) -> String { packedStore.path(id) }

    public var packedStore: PackedBundleStore { PackedBundleStore(directory: configuration.bundleDirectory) }

    struct DriverState: Codable, Equatable {
        /// The bundle this driver wrote onto the original partition (then its boot entry is `target`).
        var originalBundle: String?
    }

    func loadState() -> DriverState { DriverStateFile.load(driverStatePath, fallback: DriverState()) }

    func saveState(_ state: DriverState) throws { try DriverStateFile.save(state, to: driverStatePath) }

    /// The boot-loader name of an entry: the original partition is `base` until this driver has
    /// written an image onto it, `target` after.
    public func bootName(_ entry: BootEntry) throws -> String {
        switch entry {
        case .original: return loadState().originalBundle == nil ? configuration.entries.base : configuration.entries.target
        case .staging: return configuration.entries.staging
        case .maintenance:
            guard let name = configuration.entries.maintenance else { throw LinuxHostDriverError("no boot entry name configured for maintenance") }
            return name
        }
    }

    // MARK: Running commands

    /// Runs one command through the runner, logging it first.
    @discardableResult
    public func run(_ command: LinuxCommand) throws -> LinuxCommandOutput {
        let line = ISO8601DateFormatter().string(from: Date()) + " " + command.displayString + "\n"
        try? FileManager.default.createDirectory(atPath: driverDirectory, withIntermediateDirectories: true)
        let fd = open(commandLogPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if fd >= 0 {
            _ = Array(line.utf8).withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            close(fd)
        }
        return try runner.run(command)
    }

    // MARK: Safety

    /// The running root and the block devices, read now.
    public func diskGuard() throws -> LinuxDiskGuard {
        guard let mountInfo = FileManager.default.contents(atPath: configuration.mountInfoPath) else {
            throw LinuxHostDriverError("cannot read \(configuration.mountInfoPath)")
        }
        let lsblk = try run(LinuxCommands.lsblk()).text
        return try LinuxDiskGuard(mountInfoText: String(decoding: mountInfo, as: UTF8.self), lsblkJSON: lsblk)
    }

    /// `/dev/disk/by-…` and other links resolved to the kernel's device node.
    static func resolve(_ device: String) -> String {
        guard let real = realpath(device, nil) else { return device }
        defer { free(real) }
        return String(cString: real)
    }

    /// Throws unless `device` may be written (wiped, partitioned, imaged, mounted read-write).
    public func checkWritable(_ device: String, guard diskGuard: LinuxDiskGuard? = nil) throws {
        let g = try diskGuard ?? self.diskGuard()
        let dev = Self.resolve(device)
        if Self.resolve(configuration.stagingDisk) == Self.resolve(configuration.originalDisk), dev != Self.resolve(configuration.originalDisk) {
            try g.checkMayModifyPartition(dev)
        } else {
            try g.checkMayModify(dev)
        }
    }

    // MARK: Mounts

    /// Mounts `device` on a fresh private directory (`/run/shoal-mnt.XXXXXX`, else under /tmp),
    /// runs `body` with it, and always unmounts it and removes the directory — also when `body`
    /// throws (then `body`'s error is the one thrown; a failing unmount is added to it).
    /// A read-write mount must pass ``checkWritable(_:guard:)`` first.
    public func withMount<T>(_ device: String, readOnly: Bool, _ body: (String) throws -> T) throws -> T {
        let directory = try mountPrivately(device, readOnly: readOnly)
        let result: T
        do {
            result = try body(directory)
        } catch {
            try unmountPrivately(directory, device: device, after: error)
            throw error
        }
        try unmountPrivately(directory, device: device, after: nil)
        return result
    }

    /// ``withMount(_:readOnly:_:)`` for async work.
    public func withMounted<T>(_ device: String, readOnly: Bool, _ body: (String) async throws -> T) async throws -> T {
        let directory = try mountPrivately(device, readOnly: readOnly)
        let result: T
        do {
            result = try await body(directory)
        } catch {
            try unmountPrivately(directory, device: device, after: error)
            throw error
        }
        try unmountPrivately(directory, device: device, after: nil)
        return result
    }

    func mountPrivately(_ device: String, readOnly: Bool) throws -> String {
        if !readOnly { try checkWritable(device) }
        let parent = access("/run", W_OK) == 0 ? "/run" : "/tmp"
        var template = Array((parent + "/shoal-mnt.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw LinuxHostDriverError("mkdtemp in \(parent): \(String(cString: strerror(errno)))")
        }
        let directory = String(cString: made)
        let command = try LinuxCommands.mount(device: device, at: directory, type: configuration.fileSystemType, options: readOnly ? ["ro"] : [])
        // mount exits 32 with EBUSY while the file system's previous superblock is still going
        // away (seen on this VM right after an unmount, when another process briefly holds a copy
        // of the mount in its own mount namespace): retried for up to about 3 s.
        var attempt = 0
        while true {
            do {
                try run(command)
                return directory
            } catch let error as LinuxCommandError where error.status == 32 && attempt < 12 {
                attempt += 1
                usleep(250_000)
            } catch {
                rmdir(directory)
                throw error
            }
        }
    }

    func unmountPrivately(_ directory: String, device: String, after error: (any Error)?) throws {
        do {
            try run(LinuxCommands.umount(directory))
        } catch let umountError {
            if let error {
                throw LinuxHostDriverError("\(error); and then unmounting \(device) from \(directory) failed: \(umountError)")
            }
            throw umountError
        }
        rmdir(directory)
        Self.waitForRelease(device)
    }

    /// After an unmount the kernel can keep the file system busy a moment (another mount
    /// namespace holding a copy, a last reference going away), and an exclusive open — wipefs,
    /// BundleApplier — would fail with EBUSY. Waits up to `seconds` for `device` to be claimable;
    /// gives up silently (the next action then fails with its own clear error).
    static func waitForRelease(_ device: String, seconds: Double = 5) {
        let until = Date().addingTimeInterval(seconds)
        repeat {
            let fd = open(device, O_RDONLY | O_EXCL | O_CLOEXEC)
            if fd >= 0 { close(fd); return }
            if errno != EBUSY { return }
            usleep(50_000)
        } while Date() < until
    }

    /// Runs `body` with the root of the staging partition's file system: `liveRoot` when the
    /// host runs from it, else a private mount of it.
    func withStagingRoot<T>(readOnly: Bool, _ body: (String) throws -> T) throws -> T {
        if (try? bootedEntryNow()) == .staging { return try body(configuration.liveRoot) }
        return try withMount(configuration.stagingPartition, readOnly: readOnly, body)
    }

    // MARK: HostDriver: where am I

    public func bootedEntry() async throws -> BootEntry { try bootedEntryNow() }

    func bootedEntryNow() throws -> BootEntry {
        let g = try diskGuard()
        let root = g.root.device
        var known: [String] = []
        for entry in BootEntry.allCases {
            guard let partition = configuration.partition(entry) else { continue }
            known.append("\(entry) \(partition)")
            if g.blockDevices.device(forPath: Self.resolve(partition))?.name == root { return entry }
        }
        throw LinuxHostDriverError(
            "the running root is /dev/\(root) (\(g.root.source) on /), which is not one of the configured partitions (\(known.joined(separator: ", ")))")
    }

    // MARK: HostDriver: preflight

    /// Size and free space after `partition`, from `sfdisk --json DISK`.
    func partitionFacts(disk: String, partition: String) throws -> (facts: PartitionFacts, number: Int) {
        let json = try run(LinuxCommands.sfdiskDump(disk: disk)).text
        guard let top = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
            let table = top["partitiontable"] as? [String: Any],
            let parts = table["partitions"] as? [[String: Any]]
        else { throw LinuxHostDriverError("cannot read the partition table of \(disk) (sfdisk --json)") }
        let sector = (table["sectorsize"] as? NSNumber)?.uint64Value ?? 512
        let lastLBA = (table["lastlba"] as? NSNumber)?.uint64Value ?? 0
        let wanted = Self.resolve(partition)
        let entries = parts.compactMap { p -> (node: String, start: UInt64, size: UInt64)? in
            guard let node = p["node"] as? String, let start = (p["start"] as? NSNumber)?.uint64Value,
                let size = (p["size"] as? NSNumber)?.uint64Value
            else { return nil }
            return (node, start, size)
        }
        guard let mine = entries.first(where: { Self.resolve($0.node) == wanted || $0.node == partition }) else {
            throw LinuxHostDriverError("\(partition) is not a partition of \(disk)")
        }
        let end = mine.start + mine.size
        let next = entries.map(\.start).filter { $0 >= end }.min() ?? (lastLBA + 1)
        let digits = mine.node.reversed().prefix { $0.isNumber }
        guard let number = Int(String(digits.reversed())) else { throw LinuxHostDriverError("cannot tell the number of \(mine.node)") }
        return (PartitionFacts(sizeBytes: mine.size * sector, growableBytes: (next > end ? next - end : 0) * sector), number)
    }

    public func bundleState(_ id: String) -> BundleState { packedStore.state(id) }

    /// Puts a bundle file into the packed store (hard link, else copy). Returns its id.
    @discardableResult
    public func importBundle(from path: String) throws -> String { try packedStore.importBundle(from: path) }

    public func preflightFacts(bundles: [String]) async throws -> PreflightFacts {
        var states: [String: BundleState] = [:]
        for id in bundles { states[id] = bundleState(id) }
        var partitions: [BootEntry: PartitionFacts] = [:]
        var problem: String?
        do {
            let g = try diskGuard()
            let booted = try bootedEntryNow()
            // From the original disk the staging partition must be writable (the profile and the
            // render go there); from staging, the original partition (wipe and write).
            if booted == .original { try checkWritable(configuration.stagingPartition, guard: g) }
            if booted == .staging { try checkWritable(configuration.originalPartition, guard: g) }
        } catch {
            problem = "\(error)"
        }
        for entry in [BootEntry.original, .staging] {
            guard let disk = configuration.disk(entry), let partition = configuration.partition(entry) else { continue }
            do {
                partitions[entry] = try partitionFacts(disk: disk, partition: partition).facts
            } catch {
                problem = problem ?? "\(error)"
            }
        }
        if let maintenance = configuration.maintenancePartition, let size = blockDeviceSize(maintenance) {
            partitions[.maintenance] = PartitionFacts(sizeBytes: size, growableBytes: 0)
        }
        if problem == nil {
            let hasOS = (try? withStagingRoot(readOnly: true) { root in
                FileManager.default.fileExists(atPath: root + "/etc/os-release") || FileManager.default.fileExists(atPath: root + "/usr/lib/os-release")
            }) ?? false
            if !hasOS { problem = "the staging partition \(configuration.stagingPartition) holds no OS (no /etc/os-release): write the staging bundle onto it first" }
        }
        var stored: ProfileReference?
        var check = ProfileCheck.missing
        if let data = try? withStagingRoot(readOnly: true, { root in FileManager.default.contents(atPath: root + configuration.profilePath) }) {
            let ref = ProfileReference(location: configuration.profilePath, checksum: SHA256.hash(Array(data)).hex)
            stored = ref
            check = try await checkProfile(ref)
        }
        return PreflightFacts(bundles: states, partitions: partitions, layoutProblem: problem, storedProfile: stored, storedProfileCheck: check)
    }

    func blockDeviceSize(_ device: String) -> UInt64? {
        guard let g = try? diskGuard() else { return nil }
        return g.blockDevices.device(forPath: Self.resolve(device))?.size
    }

    // MARK: HostDriver: profile

    public func captureProfile() async throws -> ProfileReference {
        let input = CaptureInput(
            ipAddressJSON: try run(LinuxCommands.ipAddressShow()).text,
            ipRouteJSON: try run(LinuxCommands.ipRouteShow(ipv6: false)).text,
            ipv6RouteJSON: try run(LinuxCommands.ipRouteShow(ipv6: true)).text,
            files: DirectoryFileSource(root: configuration.liveRoot))
        let result = try HostProfileCapture.capture(from: input)
        let envelope = Array(try HostProfileEnvelope.encode(result.profile))
        try withStagingRoot(readOnly: false) { root in
            try LinuxTreeWriter(root: root).writeFile(configuration.profilePath, envelope, mode: 0o600)
        }
        try LabDriver.writeAtomically(Array((result.notes.joined(separator: "\n") + "\n").utf8), to: driverDirectory + "/capture-notes.txt")
        return ProfileReference(location: configuration.profilePath, checksum: SHA256.hash(envelope).hex)
    }

    public func checkProfile(_ profile: ProfileReference) async throws -> ProfileCheck {
        guard let data = try withStagingRoot(readOnly: true, { root in FileManager.default.contents(atPath: root + profile.location) }) else {
            return .missing
        }
        let sum = SHA256.hash(Array(data)).hex
        guard sum == profile.checksum else {
            return .corrupt("\(profile.location) on the staging partition: sha256 \(sum.prefix(12)), expected \(profile.checksum.prefix(12))")
        }
        do { _ = try HostProfileEnvelope.decode(data) } catch { return .corrupt("\(profile.location): \(error)") }
        return .intact
    }

    /// Loads the stored profile from the staging partition, checked against `reference` when given.
    public func loadProfile(_ reference: ProfileReference? = nil) throws -> HostProfile {
        let location = reference?.location ?? configuration.profilePath
        guard let data = try withStagingRoot(readOnly: true, { root in FileManager.default.contents(atPath: root + location) }) else {
            throw LinuxHostDriverError("no stored profile at \(location) on \(configuration.stagingPartition)")
        }
        if let reference, SHA256.hash(Array(data)).hex != reference.checksum {
            throw AgentError.profileCorrupt("\(location) does not match its checksum")
        }
        return try HostProfileEnvelope.decode(data)
    }

    public func renderProfile(_ profile: ProfileReference, into entry: BootEntry, system: String?) async throws {
        let loaded = try loadProfile(profile)
        guard let partition = configuration.partition(entry) else { throw LinuxHostDriverError("no \(entry) partition configured") }
        let note = try withMount(partition, readOnly: false) { root in
            try Self.render(loaded, intoTree: root)
        }
        try LabDriver.writeAtomically(Array(("rendered into \(entry) (\(partition)) " + note + "\n").utf8), to: driverDirectory + "/render-\(entry).txt")
    }

    /// Renders `profile` into the OS tree at `root` (a mount point): detects the format, moves
    /// the competing network configs to `/var/lib/shoal/network-config-disabled/…`, writes the
    /// files. Returns a line saying what was written and why that format.
    public static func render(_ profile: HostProfile, intoTree root: String) throws -> String {
        let target = DirectoryFileSource(root: root)
        let writer = LinuxTreeWriter(root: root)
        let detection = try TargetFormatDetector.detect(target)
        var moved: [String] = []
        for path in try HostProfileRenderer.conflictingConfigFiles(in: target, for: detection.format) {
            guard let contents = try target.read(path) else { continue }
            let status = try target.status(path)
            try writer.writeFile("/var/lib/shoal/network-config-disabled" + path, Array(contents), mode: status?.mode ?? 0o600,
                                 uid: status?.uid ?? 0, gid: status?.gid ?? 0)
            try writer.remove(path)
            moved.append(path)
        }
        let hosts = try target.read("/etc/hosts").map { String(decoding: $0, as: UTF8.self) }
        let files = try HostProfileRenderer.render(profile, as: detection.format, options: RenderOptions(existingHosts: hosts))
        for file in files { try writer.write(file) }
        sync()
        return "as \(detection.format) (\(detection.reason)): " + files.map(\.path).joined(separator: " ")
            + (moved.isEmpty ? "" : "; moved aside: " + moved.joined(separator: " "))
    }

    // MARK: HostDriver: boot configuration

    public func setOneShotBoot(_ entry: BootEntry) async throws {
        let name = try bootName(entry)
        switch configuration.bootLoader {
        case .grub(let dir, let flavor): try run(LinuxCommands.grubReboot(entry: name, bootDirectory: dir, flavor: flavor))
        case .grubEnvFile(let file, let flavor): try run(LinuxCommands.grubEditenv(file: file, .set([("next_entry", name)]), flavor: flavor))
        case .efi: try run(LinuxCommands.efibootmgrBootNext(try efiState().entryNumber(label: name)))
        }
    }

    public func clearOneShotBoot() async throws {
        switch configuration.bootLoader {
        case .grub(let dir, let flavor):
            let file = (dir ?? "/boot") + "/\(flavor.rawValue)/grubenv"
            try run(LinuxCommands.grubEditenv(file: file, .unset(["next_entry"]), flavor: flavor))
        case .grubEnvFile(let file, let flavor):
            try run(LinuxCommands.grubEditenv(file: file, .unset(["next_entry"]), flavor: flavor))
        case .efi:
            if try efiState().bootNext != nil { try run(LinuxCommands.efibootmgrDeleteBootNext()) }
        }
    }

    public func setDefaultBoot(_ entry: BootEntry) async throws {
        let name = try bootName(entry)
        switch configuration.bootLoader {
        case .grub(let dir, let flavor): try run(LinuxCommands.grubSetDefault(entry: name, bootDirectory: dir, flavor: flavor))
        case .grubEnvFile(let file, let flavor): try run(LinuxCommands.grubEditenv(file: file, .set([("saved_entry", name)]), flavor: flavor))
        case .efi:
            let state = try efiState()
            let number = try state.entryNumber(label: name)
            try run(LinuxCommands.efibootmgrBootOrder([number] + state.bootOrder.filter { $0 != number }))
        }
    }

    func efiState() throws -> LinuxEFIBootState {
        try LinuxEFIBootManager.parse(run(LinuxCommands.efibootmgrList()).text)
    }

    public func reboot() async throws {
        try run(LinuxCommands.systemctlReboot())
    }

    // MARK: HostDriver: disks

    public func growPartition(_ entry: BootEntry, toBytes bytes: UInt64) async throws {
        guard let disk = configuration.disk(entry), let partition = configuration.partition(entry) else {
            throw LinuxHostDriverError("cannot grow the \(entry) partition: no disk configured for it")
        }
        try checkWritable(partition)
        let (facts, number) = try partitionFacts(disk: disk, partition: partition)
        if facts.sizeBytes >= bytes { return }
        guard facts.sizeBytes + facts.growableBytes >= bytes else {
            throw LinuxHostDriverError("\(partition) is \(facts.sizeBytes) bytes with \(facts.growableBytes) free after it: it cannot grow to \(bytes)")
        }
        try run(LinuxCommands.sfdiskGrowPartition(disk: disk, partition: number))
        try run(LinuxCommands.partxUpdate(disk))
    }

    public func wipeOriginalDisk() async throws {
        // The OS partition only: the table and the boot partitions stay.
        try checkWritable(configuration.originalPartition)
        try run(LinuxCommands.wipefs([configuration.originalPartition]))
        try saveState(DriverState(originalBundle: nil))
    }

    public func writeImage(bundle: String, to entry: BootEntry, deadline: Date) async throws {
        guard let partition = configuration.partition(entry) else { throw LinuxHostDriverError("no \(entry) partition configured") }
        try checkWritable(partition)
        let cancellation = ApplyCancellation()
        if deadline <= Date() { cancellation.cancel() }
        let timer = DispatchWorkItem { cancellation.cancel() }
        DispatchQueue.global().asyncAfter(wallDeadline: .now() + max(0, deadline.timeIntervalSinceNow), execute: timer)
        defer { timer.cancel() }
        let started = Date()
        do {
            try await withTaskCancellationHandler {
                try applyImage(bundle: bundle, onto: partition, entry: entry, cancellation: cancellation)
            } onCancel: {
                cancellation.cancel()
            }
        } catch StorageError.interrupted {
            if Task.isCancelled { throw CancellationError() }
            throw AgentError.stepTimedOut(step: entry == .maintenance ? .stageMaintenanceImage : .writeImage, seconds: Date().timeIntervalSince(started))
        }
        if entry == .original { try saveState(DriverState(originalBundle: bundle)) }
    }

    /// Writes a bundle's image onto the staging partition: how the base-OS copy lands there
    /// before a conversion (from the base OS; the guard refuses it while staging runs).
    public func installStagingBundle(_ id: String) async throws {
        try await writeImage(bundle: id, to: .staging, deadline: Date().addingTimeInterval(7200))
    }

    func applyImage(bundle id: String, onto partition: String, entry: BootEntry, cancellation: ApplyCancellation) throws {
        guard FileManager.default.fileExists(atPath: bundlePath(id)) else { throw AgentError.bundleMissing(bundle: id) }
        let file = try BundleFile(path: bundlePath(id))
        guard file.bundleID.hex == id else {
            throw AgentError.bundleCorrupt(bundle: id, detail: "\(bundlePath(id)) holds bundle \(file.bundleID.hex)")
        }
        if let size = blockDeviceSize(partition), file.manifest.imageSize > size {
            throw LinuxHostDriverError("the image of \(id.prefix(12)) (\(file.manifest.imageSize) bytes) does not fit \(partition) (\(size) bytes)")
        }
        try FileManager.default.createDirectory(atPath: driverDirectory, withIntermediateDirectories: true)
        var options = BundleApplier.Options()
        options.cancellation = cancellation
        let resume = driverDirectory + "/\(id).\(entry).resume"
        options.resumePath = resume
        let applied = try BundleApplier(options: options).apply(bundle: file, to: partition)
        let record = "{\"at\":\"\(ISO8601DateFormatter().string(from: Date()))\",\"bundle\":\"\(id)\",\"device\":\"\(partition)\",\"imageBytes\":\(file.manifest.imageSize),\"bytesWritten\":\(applied.report?.bytesWritten ?? 0),\"seconds\":\(applied.seconds),\"alreadyComplete\":\(applied.alreadyComplete)}\n"
        let fd = open(driverDirectory + "/writes.jsonl", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        if fd >= 0 {
            _ = Array(record.utf8).withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            fsync(fd)
            close(fd)
        }
        unlink(resume)
    }

    // MARK: HostDriver: health, maintenance, capture

    public func checkHealth() async throws -> HealthReport {
        let booted = try bootedEntryNow()
        guard booted == .original else { return HealthReport(healthy: false, detail: "the host runs from \(booted), not the original disk") }
        let profile = try loadProfile()
        let root = configuration.liveRoot
        let hostname = (FileManager.default.contents(atPath: root + "/etc/hostname").map { String(decoding: $0, as: UTF8.self) } ?? "")
            .split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
        guard hostname == profile.hostname || hostname == profile.fqdn else {
            return HealthReport(healthy: false, detail: "hostname is '\(hostname)', the profile's is \(profile.hostname)")
        }
        for key in profile.security.sshHostKeys where FileManager.default.contents(atPath: root + key.path) != key.contents {
            return HealthReport(healthy: false, detail: "\(key.path) differs from the profile's")
        }
        // Same address: every captured static address is up on the interface with its MAC.
        let live = try run(LinuxCommands.ipAddressShow()).text
        guard let links = try? JSONSerialization.jsonObject(with: Data(live.utf8)) as? [[String: Any]] else {
            return HealthReport(healthy: false, detail: "cannot read `ip -j address show`")
        }
        for interface in profile.interfaces {
            guard let link = links.first(where: { ($0["address"] as? String)?.lowercased() == "\(interface.mac)".lowercased() }) else {
                return HealthReport(healthy: false, detail: "no interface with MAC \(interface.mac)")
            }
            let up = Set(((link["addr_info"] as? [[String: Any]]) ?? []).compactMap { a -> String? in
                guard let local = a["local"] as? String, let len = a["prefixlen"] as? NSNumber else { return nil }
                return "\(local)/\(len)"
            })
            for address in interface.addresses where !up.contains("\(address)") {
                return HealthReport(healthy: false, detail: "\(address) is not up on \(interface.mac)")
            }
        }
        return HealthReport(healthy: true, detail: "hostname \(hostname), \(profile.security.sshHostKeys.count) SSH host key files as captured, \(profile.interfaces.count) interfaces with their addresses")
    }

    public func maintenanceStatus(monitoring: MaintenanceMonitoring) async throws -> MaintenanceStatus {
        guard let data = FileManager.default.contents(atPath: configuration.liveRoot + "/var/lib/shoal/maintenance-status") else { return .running }
        let line = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if line == "succeeded" { return .succeeded }
        if line.hasPrefix("failed") { return .failed(String(line.dropFirst("failed".count)).trimmingCharacters(in: CharacterSet(charactersIn: ": "))) }
        return .running
    }

    public func captureBundle(of entry: BootEntry, name: String, deadline: Date) async throws -> String {
        guard let partition = configuration.partition(entry) else { throw LinuxHostDriverError("no \(entry) partition configured") }
        // Not mounted and not the running system: the same rule as for writing it.
        try checkWritable(partition)
        try FileManager.default.createDirectory(atPath: configuration.bundleDirectory, withIntermediateDirectories: true)
        let output = configuration.bundleDirectory + "/.capture.shoal"
        defer { unlink(output) }
        var options = BundleCreator.Options(name: name)
        options.createdAt = 0  // the same disk content gives the same bundle
        let result = try BundleCreator(options: options).create(image: partition, output: output)
        let id = result.bundleID.hex
        guard rename(output, bundlePath(id)) == 0 else { throw LinuxHostDriverError("cannot move the captured bundle into \(configuration.bundleDirectory)") }
        return id
    }

    public func publishBundle(_ bundle: String) async throws {
        // Announcing to the fleet is the peer's (`shoal peer`); here the bundle must be in the store.
        guard FileManager.default.fileExists(atPath: bundlePath(bundle)) else { throw AgentError.bundleMissing(bundle: bundle) }
    }
}
