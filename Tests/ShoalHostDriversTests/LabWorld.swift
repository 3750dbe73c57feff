import Foundation
import ShoalAgent
import ShoalHostDrivers
import ShoalHostLab
import ShoalStorage
import ShoalTestKit

let mib: UInt64 = 1 << 20

/// The lab world of a test: two real OS trees (alpha with ifupdown, beta with netplan), their ext4
/// images, Shoal bundles of them in the host's packed store, and a lab host running alpha with
/// the staging bundle (the alpha copy) written onto its staging partition.
struct LabWorld {
    let dir: TemporaryDirectory
    let host: LabHost
    let driver: LabDriver
    let alphaBundle: String
    let betaBundle: String

    static let mac = "52:54:00:12:34:56"
    static let address = "10.20.30.41"

    /// The kernel's view of the host's one NIC (what `ip -j` would print), static address.
    static let ipAddressJSON = """
        [{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295}]},\
        {"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"link_type":"ether","address":"\(mac)","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"\(address)","prefixlen":24,"broadcast":"10.20.30.255","scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]
        """
    static let ipRouteJSON = """
        [{"dst":"default","gateway":"10.20.30.1","dev":"eth0","flags":[]},{"dst":"10.20.30.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"\(address)","flags":[]}]
        """

    static func osTree(
        in dir: TemporaryDirectory, id: String, hostname: String, stacks: [NetworkStack], files: [String: TreeFile],
        size: UInt64 = 20 * mib, tree treeName: String? = nil
    ) throws -> String {
        let spec = OSTreeSpec(
            release: OSRelease(id: id, name: "Shoal Lab \(id.capitalized)", versionID: "1", prettyName: "Shoal Lab \(id.capitalized) 1"),
            hostname: hostname, networkStacks: stacks, sshHostKeys: [.ed25519, .ecdsa],
            applets: ["sh", "init", "ls", "cat", "ip", "ifup"], files: files)
        let tree = try OSTree.build(at: dir.file(treeName ?? "tree-\(id)"), spec: spec)
        let image = dir.file("\(treeName ?? id).ext4")
        try tree.makeImage(at: image, size: size)
        return image
    }

    static func bundle(_ image: String, name: String, in dir: TemporaryDirectory) throws -> String {
        var options = BundleCreator.Options(name: name)
        options.regionSize = 1 << 20
        options.createdAt = 1_700_000_000
        return try BundleCreator(options: options).create(image: image, output: dir.file("\(name).shoal")).path
    }

    /// - Parameters:
    ///   - betaSize: the size of beta's ext4 image (larger than the root partition to need growth).
    ///   - betaBoots: false removes beta's `/etc/os-release`, so the firmware cannot boot it.
    static func make(
        _ label: String, layout: LabHost.Layout = LabHost.Layout(), betaSize: UInt64 = 20 * mib, betaBoots: Bool = true,
        betaImage: ((TemporaryDirectory) throws -> String)? = nil, writeMethod: LabDriver.WriteMethod = .imageFile
    ) throws -> LabWorld {
        let dir = TemporaryDirectory(label)
        let alpha = try osTree(
            in: dir, id: "alpha", hostname: "web-01",
            stacks: [.ifupdown],
            files: [
                "/etc/network/interfaces": TreeFile(text: """
                    auto lo
                    iface lo inet loopback

                    auto eth0
                    iface eth0 inet static
                        address \(address)/24
                        gateway 10.20.30.1

                    """),
                "/etc/resolv.conf": TreeFile(text: "nameserver 10.20.30.53\nsearch lab.example\n"),
                "/root/.ssh/authorized_keys": TreeFile(text: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBf0r3ch0o5MhM4Ccd4f8P7xYv3Hh0hQ0cgzq0GxQmrK ops@lab\n", mode: 0o600),
            ])
        let beta = try betaImage?(dir) ?? osTree(in: dir, id: "beta", hostname: "beta-default", stacks: [.netplan], files: [:], size: betaSize)
        if !betaBoots { try Ext4Filesystem(region: ByteRegion.wholeFile(beta)).remove("/etc/os-release") }
        let alphaPath = try bundle(alpha, name: "alpha", in: dir)
        let betaPath = try bundle(beta, name: "beta", in: dir)

        // The host: alpha on disk0; the staging partition empty until the staging bundle lands.
        let host = try LabHost.create(at: dir.file("host"), baseImage: alpha, stagingImage: nil, layout: layout)
        let driver = LabDriver(host: host, writeMethod: writeMethod)
        try FileManager.default.createDirectory(atPath: host.directory + "/net", withIntermediateDirectories: true)
        try ipAddressJSON.write(toFile: host.directory + "/net/ip-address.json", atomically: true, encoding: .utf8)
        try ipRouteJSON.write(toFile: host.directory + "/net/ip-route.json", atomically: true, encoding: .utf8)
        let alphaID = try driver.importBundle(from: alphaPath)
        let betaID = try driver.importBundle(from: betaPath)
        try driver.installStagingBundle(alphaID)
        try host.boot()
        return LabWorld(dir: dir, host: host, driver: driver, alphaBundle: alphaID, betaBundle: betaID)
    }

    func machine(driver: (any HostDriver)? = nil) throws -> LabMachine {
        try LabMachine(host: host, labDriver: self.driver, driver: driver)
    }

    func request(_ id: String, _ kind: OperationKind) -> OperationRequest {
        OperationRequest(
            id: id, kind: kind,
            parameters: OperationParameters(
                stagingBundle: alphaBundle, targetBundle: kind == .revert ? nil : betaBundle,
                healthTimeoutSeconds: 30, healthPollSeconds: 1))
    }

    /// A file of the OS the host runs now.
    func running(_ path: String) throws -> [UInt8] {
        try host.readFile(try host.bootedOS().entry, path)
    }

    /// The files of the base OS a conversion must carry over: hostname and SSH host keys.
    static let identityFiles = [
        "/etc/hostname", "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub",
        "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ecdsa_key.pub", "/root/.ssh/authorized_keys",
    ]

    func identity() throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for path in Self.identityFiles { out[path] = try running(path) }
        return out
    }

    func remove() { dir.remove() }
}

/// A driver that "loses power" (throws `CancellationError`, as a stopped agent does) once, at the
/// chosen call, before or after letting the lab driver do the work.
final class InterruptingDriver: HostDriver, @unchecked Sendable {
    let inner: LabDriver
    let at: StepPoint
    let afterAction: Bool
    private let lock = NSLock()
    private var fired = false

    enum StepPoint: Sendable { case writeImage, renderTarget, wipe }

    init(_ inner: LabDriver, at: StepPoint, afterAction: Bool) {
        self.inner = inner
        self.at = at
        self.afterAction = afterAction
    }

    func fire(_ point: StepPoint, _ body: () async throws -> Void) async throws {
        let now = lock.withLock { () -> Bool in
            guard point == at, !fired else { return false }
            fired = true
            return true
        }
        guard now else { return try await body() }
        if afterAction { try await body() }
        throw CancellationError()
    }

    func bootedEntry() async throws -> BootEntry { try await inner.bootedEntry() }
    func preflightFacts(bundles: [String]) async throws -> PreflightFacts { try await inner.preflightFacts(bundles: bundles) }
    func captureProfile() async throws -> ProfileReference { try await inner.captureProfile() }
    func checkProfile(_ profile: ProfileReference) async throws -> ProfileCheck { try await inner.checkProfile(profile) }
    func renderProfile(_ profile: ProfileReference, into entry: BootEntry, system: String?) async throws {
        if entry == .original {
            try await fire(.renderTarget) { try await inner.renderProfile(profile, into: entry, system: system) }
        } else {
            try await inner.renderProfile(profile, into: entry, system: system)
        }
    }
    func setOneShotBoot(_ entry: BootEntry) async throws { try await inner.setOneShotBoot(entry) }
    func clearOneShotBoot() async throws { try await inner.clearOneShotBoot() }
    func setDefaultBoot(_ entry: BootEntry) async throws { try await inner.setDefaultBoot(entry) }
    func reboot() async throws { try await inner.reboot() }
    func growPartition(_ entry: BootEntry, toBytes bytes: UInt64) async throws { try await inner.growPartition(entry, toBytes: bytes) }
    func wipeOriginalDisk() async throws { try await fire(.wipe) { try await inner.wipeOriginalDisk() } }
    func writeImage(bundle: String, to entry: BootEntry, deadline: Date) async throws {
        try await fire(.writeImage) { try await inner.writeImage(bundle: bundle, to: entry, deadline: deadline) }
    }
    func checkHealth() async throws -> HealthReport { try await inner.checkHealth() }
    func maintenanceStatus(monitoring: MaintenanceMonitoring) async throws -> MaintenanceStatus {
        try await inner.maintenanceStatus(monitoring: monitoring)
    }
    func captureBundle(of entry: BootEntry, name: String, deadline: Date) async throws -> String {
        try await inner.captureBundle(of: entry, name: name, deadline: deadline)
    }
    func publishBundle(_ bundle: String) async throws { try await inner.publishBundle(bundle) }
}

/// The step log as "step: seconds" lines (from each step's started and finished times).
func stepTimings(_ record: OperationRecord) -> [(String, Double)] {
    record.steps.compactMap { s in
        guard let a = s.startedAt, let b = s.finishedAt else { return nil }
        return ("\(s.step.id)", b.timeIntervalSince(a))
    }
}

extension LabWorld {
    /// Another host in the same directory, from the same images and bundles (cheaper than a new
    /// world: no trees, keys, images or bundles to make).
    func anotherHost(_ name: String) throws -> LabWorld {
        let host = try LabHost.create(at: dir.file(name), baseImage: dir.file("alpha.ext4"), stagingImage: nil)
        let driver = LabDriver(host: host)
        try FileManager.default.createDirectory(atPath: host.directory + "/net", withIntermediateDirectories: true)
        try Self.ipAddressJSON.write(toFile: host.directory + "/net/ip-address.json", atomically: true, encoding: .utf8)
        try Self.ipRouteJSON.write(toFile: host.directory + "/net/ip-route.json", atomically: true, encoding: .utf8)
        try driver.importBundle(from: dir.file("alpha.shoal"))
        try driver.importBundle(from: dir.file("beta.shoal"))
        try driver.installStagingBundle(alphaBundle)
        try host.boot()
        return LabWorld(dir: dir, host: host, driver: driver, alphaBundle: alphaBundle, betaBundle: betaBundle)
    }
}

/// A driver (lab or linux) that loses power once: at its `n`-th call that changes the host
/// (0-based), or at the first call with a given name (`renderProfile(original)`), before or after
/// the real driver did the work. It throws `CancellationError`, which the agent records as nothing
/// done (`interrupted`). Read-only calls always pass.
final class PowerCutDriver<Inner: HostDriver>: HostDriver, @unchecked Sendable {
    enum Cut {
        case call(Int)
        case named(String)
    }

    let inner: Inner
    let cut: Cut
    let afterAction: Bool
    private let lock = NSLock()
    private var calls = 0
    private(set) var cutCall: String?

    init(_ inner: Inner, cut: Cut, afterAction: Bool) {
        self.inner = inner
        self.cut = cut
        self.afterAction = afterAction
    }

    convenience init(_ inner: Inner, cutAt: Int, afterAction: Bool) { self.init(inner, cut: .call(cutAt), afterAction: afterAction) }

    var didCut: Bool { lock.withLock { cutCall != nil } }

    func change<T>(_ name: String, _ body: () async throws -> T) async throws -> T {
        let cut = lock.withLock { () -> Bool in
            defer { calls += 1 }
            guard cutCall == nil else { return false }
            switch self.cut {
            case .call(let n): guard calls == n else { return false }
            case .named(let at): guard name == at else { return false }
            }
            cutCall = name
            return true
        }
        guard cut else { return try await body() }
        if afterAction { _ = try await body() }
        throw CancellationError()
    }

    func bootedEntry() async throws -> BootEntry { try await inner.bootedEntry() }
    func preflightFacts(bundles: [String]) async throws -> PreflightFacts { try await inner.preflightFacts(bundles: bundles) }
    func checkProfile(_ profile: ProfileReference) async throws -> ProfileCheck { try await inner.checkProfile(profile) }
    func checkHealth() async throws -> HealthReport { try await inner.checkHealth() }
    func maintenanceStatus(monitoring: MaintenanceMonitoring) async throws -> MaintenanceStatus {
        try await inner.maintenanceStatus(monitoring: monitoring)
    }
    func captureProfile() async throws -> ProfileReference { try await change("captureProfile") { try await inner.captureProfile() } }
    func renderProfile(_ profile: ProfileReference, into entry: BootEntry, system: String?) async throws {
        try await change("renderProfile(\(entry))") { try await inner.renderProfile(profile, into: entry, system: system) }
    }
    func setOneShotBoot(_ entry: BootEntry) async throws { try await change("setOneShotBoot(\(entry))") { try await inner.setOneShotBoot(entry) } }
    func clearOneShotBoot() async throws { try await change("clearOneShotBoot") { try await inner.clearOneShotBoot() } }
    func setDefaultBoot(_ entry: BootEntry) async throws { try await change("setDefaultBoot(\(entry))") { try await inner.setDefaultBoot(entry) } }
    func reboot() async throws { try await change("reboot") { try await inner.reboot() } }
    func growPartition(_ entry: BootEntry, toBytes bytes: UInt64) async throws {
        try await change("growPartition") { try await inner.growPartition(entry, toBytes: bytes) }
    }
    func wipeOriginalDisk() async throws { try await change("wipeOriginalDisk") { try await inner.wipeOriginalDisk() } }
    func writeImage(bundle: String, to entry: BootEntry, deadline: Date) async throws {
        try await change("writeImage") { try await inner.writeImage(bundle: bundle, to: entry, deadline: deadline) }
    }
    func captureBundle(of entry: BootEntry, name: String, deadline: Date) async throws -> String {
        try await change("captureBundle") { try await inner.captureBundle(of: entry, name: name, deadline: deadline) }
    }
    func publishBundle(_ bundle: String) async throws { try await change("publishBundle") { try await inner.publishBundle(bundle) } }
}
