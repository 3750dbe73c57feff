#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import ShoalAgent
import ShoalBundle
import ShoalCrypto
import ShoalHostLab
import ShoalHostProfile
import ShoalStorage

/// Why the lab driver refused or failed an action (shown in the step log as `actionFailed`).
public struct LabDriverError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The `lab` host driver: the agent's steps on an emulated host (`ShoalHostLab.LabHost`).
///
/// What is real: the GPT partition tables (`sfdisk`), the ext4 file systems (`mke2fs`, read with
/// `debugfs rdump`/`cat`, written with `debugfs -w`), the GRUB environment block
/// (`grub-editenv`), the bundles (verified with `BundleVerifier`, written with `BundleApplier`:
/// zstd frames, SHA-256 per chunk and of the image, io_uring, resume log), the host profile
/// (`ShoalHostProfile` capture, envelope and renderers).
///
/// What is emulated (see docs/AGENT.md, "The lab driver"):
/// - **Where the host booted from** is the firmware's boot record (`HOST/booted.json`, written by
///   `LabHost.boot()`), mapped from the partition it booted to a ``BootEntry``.
/// - **Reboot** only records the request (`HOST/reboot-requested`); the lab (``LabMachine``)
///   then boots the host with `LabFirmware` and starts a fresh `Agent` on the same state store.
/// - **The staging disk's data area** (the agent's state, the stored profile, the resume logs of
///   image writes) is a directory of this machine, `stateDirectory` (default `HOST/state`): the
///   agent code needs POSIX files there, and the lab's staging "disk" is an image file.
/// - **The packed store** is `HOST/bundles/<bundle id>.shoal`: whole bundle files, named by id.
/// - **The kernel's view of the network** (`ip -j address|route show`) comes from
///   `HOST/net/ip-address.json`, `ip-route.json`, `ip6-route.json` when the host has them (a lab
///   host has no NIC); without them the profile has no interfaces and carries the hostname, the
///   SSH host keys, authorized keys and the source OS's network config files verbatim.
/// - **Health** is read from the disks: the original entry booted, its `/etc/os-release` is the one
///   of the image written, its hostname and SSH host key files equal the stored profile's.
/// - **Maintenance images** report through `/var/lib/shoal/maintenance-status` in their own file
///   system (`succeeded`, `failed: why`, anything else = running).
public struct LabDriver: HostDriver {
    public let host: LabHost
    /// The staging disk's data area (agent state, profile, resume logs).
    public let stateDirectory: String
    /// The packed store: `<bundle id>.shoal` files.
    public let bundleDirectory: String
    /// How images reach a partition.
    public let writeMethod: WriteMethod

    /// How `writeImage` puts a bundle's image into a partition of a disk-image file.
    public enum WriteMethod: String, Sendable, Codable, CaseIterable {
        /// Apply into an image file under the state directory (resumable there), then a sparse,
        /// fsynced copy into the partition. Works without root.
        case imageFile
        /// Apply straight onto the partition attached alone as a loop device (`losetup -o
        /// --sizelimit`), as on a real host's block device: no extra copy. Needs root. A resume
        /// log names the device, so a write interrupted and re-attached elsewhere starts over.
        case loopDevice
    }

    public init(host: LabHost, stateDirectory: String? = nil, bundleDirectory: String? = nil, writeMethod: WriteMethod = .imageFile) {
        self.host = host
        self.stateDirectory = stateDirectory ?? host.directory + "/state"
        self.bundleDirectory = bundleDirectory ?? host.directory + "/bundles"
        self.writeMethod = writeMethod
    }

    // MARK: Paths

    /// The agent's operation store directory (on the "staging disk").
    public var agentStateDirectory: String { stateDirectory + "/agent" }
    var driverDirectory: String { stateDirectory + "/lab-driver" }
    /// Where the captured profile is stored (envelope, see docs/HOST-PROFILE.md).
    public var profilePath: String { driverDirectory + "/host-profile" }
    var driverStatePath: String { driverDirectory + "/driver.json" }
    var workDirectory: String { driverDirectory + "/work" }
    /// The file `reboot()` writes; the lab power loop takes it and boots the host.
    public var rebootRequestPath: String { host.directory + "/reboot-requested" }
    var netDirectory: String { host.directory + "/net" }

    /// The bundle file of `id` in the packed store.
    public func bundlePath(_ id: String) -> String { packedStore.path(id) }

    public var packedStore: PackedBundleStore { PackedBundleStore(directory: bundleDirectory) }

    /// The partition names of the boot entries on the lab host.
    static func partitionName(_ entry: BootEntry) -> String {
        switch entry {
        case .original: return LabHost.rootPartition
        case .staging: return LabHost.stagingPartition
        case .maintenance: return LabHost.maintenancePartition
        }
    }

    func disk(_ entry: BootEntry) -> DiskImage { entry == .original ? host.disk0 : host.disk1 }

    func filesystem(_ entry: BootEntry) throws -> Ext4Filesystem {
        try disk(entry).filesystem(in: Self.partitionName(entry))
    }

    // MARK: Driver state (what was written onto the original disk)

    struct DriverState: Codable, Equatable {
        /// The bundle whose image the original disk holds, when this driver wrote it.
        var originalBundle: String?
        /// That image's `/etc/os-release`, read from the image before it was copied in.
        var originalOSRelease: String?
    }

    func loadState() -> DriverState { DriverStateFile.load(driverStatePath, fallback: DriverState()) }

    func saveState(_ state: DriverState) throws { try DriverStateFile.save(state, to: driverStatePath) }

    /// The GRUB menu entry name of a boot entry. The original partition is `base` until this
    /// driver has written an image onto it, then `target` (both names boot the same partition;
    /// the names keep the boot log readable).
    func menuEntryName(_ entry: BootEntry) -> String {
        switch entry {
        case .original: return loadState().originalBundle == nil ? "base" : "target"
        case .staging: return "staging"
        case .maintenance: return "maintenance"
        }
    }

    // MARK: Bundles

    /// Puts a bundle file into the packed store (a hard link when possible, else a copy) after
    /// checking it opens as a bundle. Returns its id.
    @discardableResult
    public func importBundle(from path: String) throws -> String { try packedStore.importBundle(from: path) }

    /// The state of one bundle in the packed store: missing, corrupt (structure, id, a chunk or
    /// the image digest) or verified.
    public func bundleState(_ id: String) -> BundleState { packedStore.state(id) }

    /// Writes a bundle's image onto the staging partition: how the staging bundle (the base-OS
    /// copy) lands there before a conversion. Refused while the host runs from staging.
    public func installStagingBundle(_ id: String) throws {
        if (try? host.bootedOS()).map({ Self.entry(of: $0) }) == .staging {
            throw LabDriverError("the host runs from the staging partition; it cannot be rewritten now")
        }
        // The marker goes before the write and after it: a write cut short leaves no marker, so
        // the next install writes again instead of trusting a half-written partition.
        unlink(stagingMarkerPath)
        _ = try applyImage(bundle: id, to: .staging)
        let tmp = stagingMarkerPath + ".tmp"
        try Data((id + "\n").utf8).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, stagingMarkerPath) == 0 else { throw LabDriverError("cannot record the staging bundle in \(stagingMarkerPath)") }
    }

    /// The bundle whose image `installStagingBundle` last wrote completely onto the staging
    /// partition (`nil`: none, or a write that did not finish).
    public var installedStagingBundle: String? {
        guard let data = FileManager.default.contents(atPath: stagingMarkerPath) else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A lab fault (`shoal lab run --convert --fail-host`): while this file names the bundle whose
    /// image the original disk holds, the host's health check fails, as a target that never comes
    /// up right would (a revert to another bundle is healthy again).
    public static func unhealthyFaultPath(_ host: LabHost) -> String { host.directory + "/fault-unhealthy" }

    /// Next to the disks: what the staging partition holds is part of the host, not of its state.
    var stagingMarkerPath: String { host.directory + "/staging-bundle" }

    // MARK: HostDriver: reading

    static func entry(of record: BootRecord) -> BootEntry? {
        switch record.partition {
        case LabHost.rootPartition: return .original
        case LabHost.stagingPartition: return .staging
        case LabHost.maintenancePartition: return .maintenance
        default: return nil
        }
    }

    public func bootedEntry() async throws -> BootEntry {
        let record = try host.bootedOS()
        guard let entry = Self.entry(of: record) else {
            throw LabDriverError("the host booted partition \(record.partition) of \(record.disk), which is no boot entry the agent knows")
        }
        return entry
    }

    public func preflightFacts(bundles: [String]) async throws -> PreflightFacts {
        var states: [String: BundleState] = [:]
        for id in bundles { states[id] = bundleState(id) }
        var partitions: [BootEntry: PartitionFacts] = [:]
        var problem: String?
        for entry in BootEntry.allCases {
            let d = disk(entry)
            guard FileManager.default.fileExists(atPath: d.path) else {
                if entry != .maintenance { problem = problem ?? "\(d.path) is missing" }
                continue
            }
            do {
                let table = try d.table()
                guard let p = table.partition(Self.partitionName(entry)) else {
                    if entry != .maintenance { problem = problem ?? "\(d.path) has no \(Self.partitionName(entry)) partition" }
                    continue
                }
                partitions[entry] = PartitionFacts(sizeBytes: p.length, growableBytes: table.freeBytes(after: p))
            } catch {
                problem = problem ?? "\(d.path): \(error)"
            }
        }
        if problem == nil, partitions[.staging] != nil {
            let fs = try filesystem(.staging)
            if (try? fs.osReleaseText()) == nil {
                problem = "the staging partition holds no OS (no ext4 with /etc/os-release): write the staging bundle onto it first"
            }
        }
        var stored: ProfileReference?
        var check = ProfileCheck.missing
        if let data = FileManager.default.contents(atPath: profilePath) {
            let ref = ProfileReference(location: profilePath, checksum: SHA256.hash(Array(data)).hex)
            stored = ref
            check = try await checkProfile(ref)
        }
        return PreflightFacts(
            bundles: states, partitions: partitions, layoutProblem: problem, storedProfile: stored, storedProfileCheck: check)
    }

    public func checkProfile(_ profile: ProfileReference) async throws -> ProfileCheck {
        guard let data = FileManager.default.contents(atPath: profile.location) else { return .missing }
        let sum = SHA256.hash(Array(data)).hex
        guard sum == profile.checksum else {
            return .corrupt("\(profile.location): sha256 \(sum.prefix(12)), expected \(profile.checksum.prefix(12))")
        }
        do {
            _ = try HostProfileEnvelope.decode(data)
        } catch {
            return .corrupt("\(profile.location): \(error)")
        }
        return .intact
    }

    /// Loads the stored profile, checked against `reference` when given.
    public func loadProfile(_ reference: ProfileReference? = nil) throws -> HostProfile {
        let path = reference?.location ?? profilePath
        guard let data = FileManager.default.contents(atPath: path) else { throw LabDriverError("no stored profile at \(path)") }
        if let reference, SHA256.hash(Array(data)).hex != reference.checksum {
            throw AgentError.profileCorrupt("\(path) does not match its checksum")
        }
        return try HostProfileEnvelope.decode(data)
    }

    public func checkHealth() async throws -> HealthReport {
        let booted = try host.bootedOS()
        guard Self.entry(of: booted) == .original else {
            return HealthReport(healthy: false, detail: "the host runs \(booted.entry) (partition \(booted.partition)), not the original disk")
        }
        let state = loadState()
        if let data = FileManager.default.contents(atPath: Self.unhealthyFaultPath(host)),
           String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == state.originalBundle {
            return HealthReport(healthy: false, detail: "lab fault: the image of bundle \(state.originalBundle!.prefix(12)) was made to fail its health check on this host")
        }
        let fs = try filesystem(.original)
        let release = try fs.osReleaseText()
        guard let expected = state.originalOSRelease, release == expected else {
            return HealthReport(healthy: false, detail: "/etc/os-release is not the one of the image written (\(OSRelease(parsing: release)))")
        }
        let profile = try loadProfile()
        let hostname = try fs.readText("/etc/hostname").split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
        guard hostname == profile.hostname || hostname == profile.fqdn else {
            return HealthReport(healthy: false, detail: "hostname is \(hostname), the profile's is \(profile.hostname)")
        }
        for key in profile.security.sshHostKeys {
            guard (try? fs.readFile(key.path)) == Array(key.contents) else {
                return HealthReport(healthy: false, detail: "\(key.path) differs from the profile's")
            }
        }
        // Same address: every file the renderer makes for this OS (network config with the
        // captured addresses, matched by MAC; hosts; keys) is in place, byte for byte.
        let tree = try TemporaryTree(in: workDirectory)
        defer { tree.remove() }
        try Self.dump(fs, paths: ["/etc"], into: tree.path)
        let source = LabTreeSource(dump: DirectoryFileSource(root: tree.path), dumped: ["/etc"], fs: fs)
        let format = try TargetFormatDetector.detect(source).format
        let rendered = try HostProfileRenderer.render(profile, as: format, options: RenderOptions(existingHosts: try source.readText("/etc/hosts")))
        var checked = 0
        for file in rendered where file.kind == .file {
            guard (try? fs.readFile(file.path)) == Array(file.contents) else {
                return HealthReport(healthy: false, detail: "\(file.path) is not the rendered profile's (\(format))")
            }
            checked += 1
        }
        return HealthReport(
            healthy: true,
            detail: "\(OSRelease(parsing: release).prettyName), hostname \(hostname), \(profile.security.sshHostKeys.count) SSH host key files as captured, \(checked) rendered \(format) profile files in place")
    }

    public func maintenanceStatus(monitoring: MaintenanceMonitoring) async throws -> MaintenanceStatus {
        let fs = try filesystem(.maintenance)
        guard let text = try? fs.readText("/var/lib/shoal/maintenance-status") else { return .running }
        let line = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if line == "succeeded" { return .succeeded }
        if line.hasPrefix("failed") { return .failed(String(line.dropFirst("failed".count)).trimmingCharacters(in: CharacterSet(charactersIn: ": "))) }
        return .running
    }

    // MARK: HostDriver: profile

    /// The ip outputs of the lab host's "kernel" (`HOST/net/*.json`), `[]` when absent.
    func ipOutput(_ name: String) -> String {
        FileManager.default.contents(atPath: netDirectory + "/" + name).map { String(decoding: $0, as: UTF8.self) } ?? "[]"
    }

    public func captureProfile() async throws -> ProfileReference {
        let booted = try await bootedEntry()
        let fs = try filesystem(booted)
        let tree = try TemporaryTree(in: workDirectory)
        defer { tree.remove() }
        try Self.dump(fs, paths: ["/etc", "/root", "/home"], into: tree.path)
        let input = CaptureInput(
            ipAddressJSON: ipOutput("ip-address.json"), ipRouteJSON: ipOutput("ip-route.json"),
            ipv6RouteJSON: ipOutput("ip6-route.json"), files: DirectoryFileSource(root: tree.path))
        let result = try HostProfileCapture.capture(from: input)
        let envelope = Array(try HostProfileEnvelope.encode(result.profile))
        try Self.writeAtomically(envelope, to: profilePath)
        try Self.writeAtomically(Array((result.notes.joined(separator: "\n") + "\n").utf8), to: driverDirectory + "/capture-notes.txt")
        return ProfileReference(location: profilePath, checksum: SHA256.hash(envelope).hex)
    }

    public func renderProfile(_ profile: ProfileReference, into entry: BootEntry, system: String?) async throws {
        let loaded = try loadProfile(profile)
        let fs = try filesystem(entry)
        let tree = try TemporaryTree(in: workDirectory)
        defer { tree.remove() }
        try Self.dump(fs, paths: ["/etc"], into: tree.path)
        let target = LabTreeSource(dump: DirectoryFileSource(root: tree.path), dumped: ["/etc"], fs: fs)
        let detection = try TargetFormatDetector.detect(target)
        // The target's own competing network configs are moved aside (kept for an operator).
        for path in try HostProfileRenderer.conflictingConfigFiles(in: target, for: detection.format) {
            let aside = "/var/lib/shoal/network-config-disabled" + path
            let contents = try fs.readFile(path)
            let mode = try fs.info(path)?.permissions ?? 0o600
            try fs.writeFile(aside, contents: contents, mode: mode)
            try fs.remove(path)
        }
        let hosts = try target.readText("/etc/hosts")
        let files = try HostProfileRenderer.render(loaded, as: detection.format, options: RenderOptions(existingHosts: hosts))
        let out = try TemporaryTree(in: workDirectory)
        defer { out.remove() }
        for file in files { try Self.stage(file, under: out.path) }
        try fs.writeTree(from: out.path, to: "/")
        let note = "rendered into \(entry) as \(detection.format) (\(detection.reason)): " + files.map(\.path).joined(separator: " ") + "\n"
        try Self.writeAtomically(Array(note.utf8), to: driverDirectory + "/render-\(entry).txt")
    }

    // MARK: HostDriver: boot configuration

    public func setOneShotBoot(_ entry: BootEntry) async throws {
        try host.env.setOneShot(menuEntryName(entry))
    }

    public func clearOneShotBoot() async throws {
        try host.env.set(GrubEnv.nextEntry, to: "")
    }

    public func setDefaultBoot(_ entry: BootEntry) async throws {
        try host.env.setDefault(menuEntryName(entry))
    }

    public func reboot() async throws {
        let line = ISO8601DateFormatter().string(from: Date()) + " reboot requested from \((try? host.bootedOS())?.entry ?? "?")\n"
        try Self.writeAtomically(Array(line.utf8), to: rebootRequestPath)
    }

    /// Takes a pending reboot request (the lab's side of `reboot()`): true when there was one.
    public func takeRebootRequest() -> Bool {
        unlink(rebootRequestPath) == 0
    }

    // MARK: HostDriver: disks

    public func growPartition(_ entry: BootEntry, toBytes bytes: UInt64) async throws {
        if try await bootedEntry() == entry { throw LabDriverError("refusing to grow the partition the host runs from (\(entry))") }
        let d = disk(entry)
        let p = try d.partition(named: Self.partitionName(entry))
        if p.length >= bytes { return }
        try d.growPartition(Self.partitionName(entry), to: bytes)
    }

    public func wipeOriginalDisk() async throws {
        if try await bootedEntry() == .original {
            throw LabDriverError("refusing to wipe the original disk: the host runs from it")
        }
        // The OS partition only: the ESP (the boot loader in real life) stays, and so does the table.
        try host.disk0.wipe(LabHost.rootPartition)
        var state = loadState()
        state.originalBundle = nil
        state.originalOSRelease = nil
        try saveState(state)
    }

    public func writeImage(bundle: String, to entry: BootEntry, deadline: Date) async throws {
        if try await bootedEntry() == entry { throw LabDriverError("refusing to write the partition the host runs from (\(entry))") }
        // The apply stops cleanly (queued chunks written, synced, recorded in the resume log) when
        // the task is cancelled or the step's deadline passes; the next call resumes from the log.
        let cancellation = ApplyCancellation()
        if deadline <= Date() { cancellation.cancel() }
        let timer = DispatchWorkItem { cancellation.cancel() }
        DispatchQueue.global().asyncAfter(wallDeadline: .now() + max(0, deadline.timeIntervalSinceNow), execute: timer)
        defer { timer.cancel() }
        let started = Date()
        let release: String?
        do {
            release = try await withTaskCancellationHandler {
                try applyImage(bundle: bundle, to: entry, cancellation: cancellation)
            } onCancel: {
                cancellation.cancel()
            }
        } catch StorageError.interrupted {
            if Task.isCancelled { throw CancellationError() }
            throw AgentError.stepTimedOut(step: entry == .maintenance ? .stageMaintenanceImage : .writeImage, seconds: Date().timeIntervalSince(started))
        }
        if entry == .original {
            try saveState(DriverState(originalBundle: bundle, originalOSRelease: release))
        }
    }

    /// Applies the bundle into an image file under the state directory (resumable: the resume log
    /// sits next to it), reads its `/etc/os-release`, copies it into the partition, and removes
    /// the image file. Returns the os-release text (nil when the image has none).
    func applyImage(bundle id: String, to entry: BootEntry, cancellation: ApplyCancellation? = nil) throws -> String? {
        // No separate verification pass: the applier checks every chunk's SHA-256 before writing
        // it and the whole image's digest at the end (preflight verified the bundle already).
        guard FileManager.default.fileExists(atPath: bundlePath(id)) else { throw AgentError.bundleMissing(bundle: id) }
        let file = try BundleFile(path: bundlePath(id))
        guard file.bundleID.hex == id else {
            throw AgentError.bundleCorrupt(bundle: id, detail: "\(bundlePath(id)) holds bundle \(file.bundleID.hex)")
        }
        let d = disk(entry)
        let partition = try d.partition(named: Self.partitionName(entry))
        guard file.manifest.imageSize <= partition.length else {
            throw LabDriverError("the image of \(id.prefix(12)) (\(file.manifest.imageSize) bytes) does not fit the \(entry) partition (\(partition.length) bytes)")
        }
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        var options = BundleApplier.Options()
        options.cancellation = cancellation
        switch writeMethod {
        case .imageFile:
            let image = workDirectory + "/\(id).img"
            options.resumePath = image + ".resume"
            let applied = try BundleApplier(options: options).apply(bundle: file, to: image)
            let release = try? Ext4Filesystem(region: ByteRegion.wholeFile(image)).osReleaseText()
            let copyStart = Date()
            // A sparse copy into the partition (zero runs skipped, the rest of the partition zeroed), fsynced.
            let copied = try ByteRegion.wholeFile(image).copy(to: partition.region)
            try appendWriteRecord(WriteRecord(
                at: Date(), method: writeMethod, bundle: id, entry: entry.rawValue, imageBytes: file.manifest.imageSize,
                bundleBytes: file.fileLength, applyBytesWritten: applied.report?.bytesWritten ?? 0,
                applySeconds: applied.seconds, alreadyApplied: applied.alreadyComplete,
                partitionBytesWritten: copied, copySeconds: Date().timeIntervalSince(copyStart)))
            unlink(image)
            unlink(image + ".resume")
            return release
        case .loopDevice:
            let resume = workDirectory + "/\(id).\(entry).loop.resume"
            options.resumePath = resume
            let applied = try d.withLoopDevice(partition: Self.partitionName(entry)) { device in
                try BundleApplier(options: options).apply(bundle: file, to: device)
            }
            // As the copy does: nothing of an older OS is left after the image.
            if partition.length > file.manifest.imageSize {
                try ByteRegion(path: d.path, offset: partition.offset + file.manifest.imageSize, length: partition.length - file.manifest.imageSize).zero()
            }
            let release = try? d.filesystem(in: Self.partitionName(entry)).osReleaseText()
            try appendWriteRecord(WriteRecord(
                at: Date(), method: writeMethod, bundle: id, entry: entry.rawValue, imageBytes: file.manifest.imageSize,
                bundleBytes: file.fileLength, applyBytesWritten: applied.report?.bytesWritten ?? 0,
                applySeconds: applied.seconds, alreadyApplied: applied.alreadyComplete,
                partitionBytesWritten: applied.report?.bytesWritten ?? 0, copySeconds: 0))
            unlink(resume)
            return release
        }
    }

    /// One image write: what the bundle apply wrote into the image file and what the copy wrote
    /// into the partition (non-zero bytes), with their times. Kept in `lab-driver/writes.jsonl`.
    public struct WriteRecord: Codable, Sendable, Equatable {
        public var at: Date
        public var method: WriteMethod
        public var bundle: String
        public var entry: String
        public var imageBytes: UInt64
        public var bundleBytes: UInt64
        public var applyBytesWritten: UInt64
        public var applySeconds: Double
        public var alreadyApplied: Bool
        public var partitionBytesWritten: UInt64
        public var copySeconds: Double
    }

    var writeLogPath: String { driverDirectory + "/writes.jsonl" }

    func appendWriteRecord(_ record: WriteRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        var line = try encoder.encode(record)
        line.append(0x0A)
        try FileManager.default.createDirectory(atPath: driverDirectory, withIntermediateDirectories: true)
        let fd = open(writeLogPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LabDriverError("open \(writeLogPath): errno \(errno)") }
        defer { close(fd) }
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        fsync(fd)
    }

    /// The image writes this driver made, oldest first.
    public func writeLog() -> [WriteRecord] {
        guard let data = FileManager.default.contents(atPath: writeLogPath) else { return [] }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(WriteRecord.self, from: Data($0)) }
    }

    // MARK: HostDriver: capture

    public func captureBundle(of entry: BootEntry, name: String, deadline: Date) async throws -> String {
        if try await bootedEntry() == entry { throw LabDriverError("refusing to capture the running system (\(entry))") }
        let fs = try filesystem(entry)
        let size = try fs.size()
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        let image = workDirectory + "/capture.img", output = workDirectory + "/capture.shoal"
        defer { unlink(image); unlink(output) }
        try disk(entry).extract(Self.partitionName(entry), to: image, length: size)
        var options = BundleCreator.Options(name: name)
        options.createdAt = 0  // the same disk content gives the same bundle
        let result = try BundleCreator(options: options).create(image: image, output: output)
        try FileManager.default.createDirectory(atPath: bundleDirectory, withIntermediateDirectories: true)
        let id = result.bundleID.hex
        guard rename(output, bundlePath(id)) == 0 else { throw LabDriverError("cannot move the captured bundle into \(bundleDirectory)") }
        return id
    }

    public func publishBundle(_ bundle: String) async throws {
        // A lab host without a coordinator has no one to announce to; the bundle stays in the store.
        guard FileManager.default.fileExists(atPath: bundlePath(bundle)) else { throw AgentError.bundleMissing(bundle: bundle) }
    }

    // MARK: Helpers

    /// `debugfs rdump` of the directories of `paths` that exist, into `directory` (modes, owners
    /// and symbolic links kept).
    static func dump(_ fs: Ext4Filesystem, paths: [String], into directory: String) throws {
        let present = try paths.filter { try fs.info($0)?.isDirectory == true }
        guard !present.isEmpty else { return }
        let output = try HostTool.run(["debugfs", "-R", "rdump \(present.joined(separator: " ")) \(directory)", fs.region.e2fsName])
        let problems = output.stderr.split(separator: "\n").filter { !$0.hasPrefix("debugfs ") }
        guard problems.isEmpty else { throw LabDriverError("debugfs rdump of \(fs): \(problems.joined(separator: "; "))") }
    }

    /// Puts one rendered file into a staging tree with its mode and owner.
    static func stage(_ file: RenderedFile, under root: String) throws {
        let path = root + file.path
        let parent = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        switch file.kind {
        case .directory:
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        case .symlink(let target):
            unlink(path)
            guard symlink(target, path) == 0 else { throw LabDriverError("symlink \(path): errno \(errno)") }
            return
        case .file:
            guard FileManager.default.createFile(atPath: path, contents: file.contents) else {
                throw LabDriverError("cannot write \(path)")
            }
        }
        guard chmod(path, mode_t(file.mode & 0o7777)) == 0,
            chown(path, file.uid ?? 0, file.gid ?? 0) == 0
        else { throw LabDriverError("chmod/chown \(path): errno \(errno)") }
    }

    /// Write, fsync, rename, fsync the directory.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw LabDriverError("open \(tmp): errno \(errno)") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            guard n > 0 else { close(fd); throw LabDriverError("write \(tmp): errno \(errno)") }
            done += n
        }
        guard fsync(fd) == 0 else { close(fd); throw LabDriverError("fsync \(tmp): errno \(errno)") }
        close(fd)
        guard rename(tmp, path) == 0 else { throw LabDriverError("rename \(tmp): errno \(errno)") }
        let dfd = open(directory, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}

/// A temporary directory under `parent`, removed by `remove()`.
struct TemporaryTree {
    let path: String
    init(in parent: String) throws {
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        var template = Array((parent + "/tree.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw LabDriverError("mkdtemp in \(parent): errno \(errno)")
        }
        path = String(cString: made)
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A lab OS's root tree for `ShoalHostProfile`: the directories dumped with `debugfs rdump`
/// (fast, modes, owners and symlinks as they are) serve paths under them; any other path is
/// looked up in the ext4 file system itself (`debugfs ls -p`/`cat`), so target-format detection
/// also sees binaries such as `/usr/sbin/netplan` or `/usr/lib/systemd/systemd-networkd`.
/// A symbolic link outside the dumped directories is reported as `.other` (not followed).
struct LabTreeSource: FileSource {
    let dump: DirectoryFileSource
    let dumped: [String]
    let fs: Ext4Filesystem

    func inDump(_ path: String) -> Bool { dumped.contains { path == $0 || path.hasPrefix($0 + "/") } }

    func read(_ path: String) throws(HostProfileError) -> Data? {
        if inDump(path) { return try dump.read(path) }
        guard let entry = try? fs.info(path), entry.isRegularFile, let bytes = try? fs.readFile(path) else { return nil }
        return Data(bytes)
    }

    func list(_ path: String) throws(HostProfileError) -> [String] {
        if inDump(path) { return try dump.list(path) }
        return ((try? fs.list(path)) ?? []).map(\.name).sorted()
    }

    func status(_ path: String) throws(HostProfileError) -> FileStatus? {
        if inDump(path) { return try dump.status(path) }
        guard let entry = try? fs.info(path) else { return nil }
        let kind: FileStatus.Kind = entry.isDirectory ? .directory : entry.isRegularFile ? .file : .other
        return FileStatus(kind: kind, mode: entry.permissions, uid: entry.uid, gid: entry.gid)
    }
}
