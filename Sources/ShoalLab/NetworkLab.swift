#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ShoalTopology

/// The emulated datacenter of a topology, built from Linux network namespaces (needs root).
///
/// ```
///   origin ns ──(origin uplink)── core ns ──(site a WAN)── site-a ns [br0] ──(host link)── host-a1 ns
///   (seeds, coordinator)            │                                     └──(host link)── host-a2 ns
///                                   └─────(site b WAN)── site-b ns [br0] ──(host link)── host-b1 ns …
/// ```
///
/// Every link is a veth pair shaped with HTB at both ends, each end at the rate of the traffic
/// leaving through it: the origin's uplink (both directions: the topology has no downlink), a
/// site's WAN up (site end) and down (core end), a host's up (host end) and down (bridge port).
/// `LabPlan` has the naming and addressing; `docs/LAB.md` the whole picture.
///
/// ```swift
/// let lab = try NetworkLab.build(topology: topology)
/// defer { lab.teardown() }
/// let server = try lab.spawn(in: "b1", executable: "python3", arguments: ["-m", "http.server"])
/// try lab.resetCounters()
/// // … traffic …
/// let (into, outOf) = try lab.wanCounters(site: "b")
/// ```
///
/// Cleanup: `build` removes everything it made when it throws; `teardown()` (idempotent) stops
/// every spawned process, kills whatever else still runs in the lab's namespaces and deletes
/// them (which deletes their veths and bridges); `sweepStale()` removes what a crashed run left
/// behind. Each run records its owner (PID and start time) in `/run/shoal-lab/<runid>.owner`,
/// and the default run ID begins with the owner's PID too.
public final class NetworkLab: Lab, @unchecked Sendable {
    /// Build options.
    public struct Options: Sendable {
        /// The second octet of every address: the lab uses `10.<octet>.0.0/16`. Namespaces are
        /// isolated, so two labs may use the same octet.
        public var octet: UInt8 = 77
        /// The queue under each HTB class.
        public var leaf: Shaping.LeafQueue = .bfifo(maxDelay: 0.1)
        /// Whether `build` reads every shaped class back from `tc` and fails on a mismatch.
        public var verifyShaping = true
        /// Whether `build` first removes stale labs (`sweepStale()`).
        public var sweepFirst = true
        /// Dual stack: every interface, bridge and route also gets its IPv6 twin
        /// (`LabPlan.ipv6`), and `address(of:)` and `originAddress` answer in IPv6.
        public var ipv6 = false
        /// Called before each build step with its name (`namespaces`, `forwarding`, `bridges`,
        /// `links`, `routes`, `shaping`, `verify`); throwing aborts the build, which then cleans up.
        /// For progress output, and for tests of the cleanup path.
        public var beforeStep: (@Sendable (String) throws -> Void)? = nil

        public init() {}
    }

    /// Whether this machine can build a `NetworkLab`: running as root, and `ip netns`, veth
    /// pairs and the HTB qdisc all work (checked once, with a throwaway namespace).
    public static var isSupported: Bool { unsupportedReason == nil }

    /// Why `isSupported` is false (or `nil` when it is true).
    public static let unsupportedReason: String? = {
        do { try probe(); return nil } catch { return "\(error)" }
    }()

    /// `.netns`.
    public let mode: LabMode = .netns
    /// The topology the lab was built for.
    public let topology: Topology
    /// The run ID: part of every namespace name.
    public let runID: String
    /// The layout: namespaces, links, addresses, routes.
    public let plan: LabPlan
    /// The options it was built with.
    public let options: Options

    private let lock = NSLock()
    private let tracker = ProcessTracker()
    private var created: [String] = []          // namespaces made so far, in order
    private var baselines: [String: (rx: UInt64, tx: UInt64)] = [:]   // "ns/if" -> counters at reset
    private var isTornDown = false

    /// The directory holding each run's owner file.
    public static let stateDirectory = "/run/shoal-lab"

    private init(topology: Topology, runID: String, plan: LabPlan, options: Options) {
        self.topology = topology
        self.runID = runID
        self.plan = plan
        self.options = options
    }

    deinit {
        // A lab that is dropped without teardown() still cleans up after itself.
        teardown()
    }

    // MARK: - Building

    /// Builds the datacenter of `topology`: namespaces, bridges, shaped veth links, addresses,
    /// routes and forwarding, then reads every HTB class back to check its rate.
    ///
    /// - Parameters:
    ///   - runID: 1 to 24 ASCII letters and digits, unique among the labs on this machine;
    ///     by default `<pid>x<random hex>`.
    /// - Throws: `LabError`; nothing the build made is left behind when it throws.
    public static func build(topology: Topology, runID: String? = nil, options: Options = Options()) throws -> NetworkLab {
        guard geteuid() == 0 else { throw LabError.unsupported("network namespaces need root") }
        let id = runID ?? makeRunID()
        try checkRunID(id)
        let plan = try LabPlan(topology: topology, runID: id, octet: options.octet)
        if options.sweepFirst { _ = sweepStale() }
        let lab = NetworkLab(topology: topology, runID: id, plan: plan, options: options)
        registry.add(lab)
        do {
            try lab.writeOwnerFile()
            try lab.carryOut()
        } catch {
            lab.teardown()
            throw error
        }
        return lab
    }

    private func step(_ name: String) throws {
        try options.beforeStep?(name)
    }

    private func carryOut() throws {
        try step("namespaces")
        for node in plan.nodes {
            lock.withLock { created.append(node.namespace) }   // recorded first: teardown may delete a half-made one
            try Command.ip("netns", "add", node.namespace)
            try Command.ip("-n", node.namespace, "link", "set", "lo", "up")
        }

        try step("forwarding")
        for node in plan.nodes where node.forwards {
            try setSysctl(namespace: node.namespace, "net.ipv4.ip_forward", "1")
            if options.ipv6 { try setSysctl(namespace: node.namespace, "net.ipv6.conf.all.forwarding", "1") }
        }

        try step("bridges")
        for bridge in plan.bridges {
            try Command.ip("-n", bridge.namespace, "link", "add", bridge.name, "type", "bridge", "forward_delay", "0", "stp_state", "0")
            try Command.ip("-n", bridge.namespace, "addr", "add", bridge.address, "dev", bridge.name)
            // nodad: no duplicate-address detection, so the address is usable at once.
            if options.ipv6 { try Command.ip("-n", bridge.namespace, "addr", "add", LabPlan.ipv6(bridge.address), "dev", bridge.name, "nodad") }
            try Command.ip("-n", bridge.namespace, "link", "set", bridge.name, "up")
        }

        try step("links")
        for link in plan.links {
            // Both ends are created directly in their namespaces, so names never meet the host's
            // interfaces or another lab's.
            try Command.ip("-n", link.a.namespace, "link", "add", link.a.interface, "type", "veth",
                           "peer", "name", link.b.interface, "netns", link.b.namespace)
            for end in [link.a, link.b] {
                if let address = end.address {
                    try Command.ip("-n", end.namespace, "addr", "add", address, "dev", end.interface)
                    if options.ipv6 { try Command.ip("-n", end.namespace, "addr", "add", LabPlan.ipv6(address), "dev", end.interface, "nodad") }
                }
                if let bridge = end.bridge {
                    try Command.ip("-n", end.namespace, "link", "set", end.interface, "master", bridge)
                }
                try Command.ip("-n", end.namespace, "link", "set", end.interface, "up")
            }
        }

        try step("routes")
        for route in plan.routes {
            try Command.ip("-n", route.namespace, "route", "add", route.destination, "via", route.gateway)
            if options.ipv6 {
                try Command.ip("-n", route.namespace, "-6", "route", "add", LabPlan.ipv6(route.destination), "via", LabPlan.ipv6(route.gateway))
            }
        }

        try step("shaping")
        for link in plan.links {
            for end in [link.a, link.b] {
                for command in Shaping(rate: end.egress, leaf: options.leaf).commands(namespace: end.namespace, interface: end.interface) {
                    try Command.tc(command)
                }
            }
        }

        if options.verifyShaping {
            try step("verify")
            let wrong = try shapingReadback().filter { !$0.ok }
            if !wrong.isEmpty {
                throw LabError.shapingMismatch(wrong.map(\.description).joined(separator: "; "))
            }
        }
    }

    private func setSysctl(namespace: String, _ key: String, _ value: String) throws {
        if let sysctl = Command.find("sysctl") {
            try Command.ip("netns", "exec", namespace, sysctl, "-qw", "\(key)=\(value)")
        } else {
            let path = "/proc/sys/" + key.replacingOccurrences(of: ".", with: "/")
            try Command.ip("netns", "exec", namespace, "/bin/sh", "-c", "echo \(value) > \(path)")
        }
    }

    // MARK: - Shaping read-back

    /// One shaped link end as `tc class show` reports it.
    public struct ShapedEnd: Sendable, CustomStringConvertible {
        /// What the link connects.
        public var link: LabPlan.LinkKind
        /// The namespace and interface.
        public var namespace: String
        public var interface: String
        /// The topology's rate for traffic leaving through this end, in bit/s.
        public var expected: UInt64
        /// HTB class 1:1's rate and ceil as read back (bit/s), or `nil` if there is no such class.
        public var rate: UInt64?
        public var ceil: UInt64?
        /// Whether rate and ceil both match the expected rate.
        public var ok: Bool {
            guard let rate, let ceil else { return false }
            let shaping = Shaping(rate: Rate(bitsPerSecond: expected))
            return shaping.matches(rate) && shaping.matches(ceil)
        }

        public var description: String {
            "\(namespace)/\(interface): expected \(Rate(bitsPerSecond: expected)), tc has rate \(rate.map { "\($0)bit" } ?? "none") ceil \(ceil.map { "\($0)bit" } ?? "none")"
        }
    }

    /// Every shaped link end with its expected rate and what `tc class show` reports.
    public func shapingReadback() throws -> [ShapedEnd] {
        var result: [ShapedEnd] = []
        for link in plan.links {
            for end in [link.a, link.b] {
                let output = try Command.tc(["-n", end.namespace, "class", "show", "dev", end.interface])
                let parsed = Shaping.parseClass(output)
                result.append(ShapedEnd(link: link.kind, namespace: end.namespace, interface: end.interface,
                                        expected: end.egress.bitsPerSecond, rate: parsed?.rate, ceil: parsed?.ceil))
            }
        }
        return result
    }

    // MARK: - Names and addresses

    /// The address of the origin's end of its uplink, where the seeds and coordinator listen.
    public var originAddress: String { options.ipv6 ? LabPlan.ipv6(plan.originAddress) : plan.originAddress }

    /// The address of a host; for a seed or the origin's name, `originAddress`. Traps on a name
    /// that is not in the topology.
    public func address(of name: String) -> String {
        if let address = plan.hostAddresses[name] { return options.ipv6 ? LabPlan.ipv6(address) : address }
        if isOriginMachine(name) { return originAddress }
        preconditionFailure("no host, seed or origin named \"\(name)\" in the lab's topology")
    }

    /// The namespace of a host; for a seed or the origin's name, the origin namespace. Traps on a
    /// name that is not in the topology.
    public func namespace(of name: String) -> String {
        guard let namespace = resolveNamespace(name) else {
            preconditionFailure("no host, seed or origin named \"\(name)\" in the lab's topology")
        }
        return namespace
    }

    /// The namespace of a site's router.
    public func routerNamespace(site: String) -> String? { plan.routerNamespaces[site] }

    /// The core (backbone) namespace.
    public var coreNamespace: String { plan.coreNamespace }

    /// The origin namespace.
    public var originNamespace: String { plan.originNamespace }

    /// Every namespace of this lab, in creation order.
    public var namespaces: [String] { plan.namespaces }

    private func isOriginMachine(_ name: String) -> Bool {
        name == topology.origin.name || topology.origin.seeds.contains(name)
    }

    private func resolveNamespace(_ name: String) -> String? {
        if let namespace = plan.hostNamespaces[name] { return namespace }
        if isOriginMachine(name) { return plan.originNamespace }
        if plan.namespaces.contains(name) { return name }
        return nil
    }

    // MARK: - Processes

    /// Starts `ip netns exec NAMESPACE executable arguments…` (see `Lab.spawn`).
    public func spawn(in target: String, executable: String, arguments: [String] = [], environment: [String: String]? = nil,
                      stdout: String? = nil, stderr: String? = nil) throws -> LabProcess {
        guard let namespace = resolveNamespace(target) else { throw LabError.unknownTarget(target) }
        guard let path = Command.find(executable) else { throw LabError.executableNotFound(executable) }
        // Refuse under the lock, so teardown cannot miss a process started while it runs.
        lock.lock(); defer { lock.unlock() }
        guard !isTornDown else { throw LabError.tornDown }
        let process = try LabProcess.launch(target: target, executable: path, arguments: arguments,
                                            launcher: [Command.ip, "netns", "exec", namespace],
                                            environment: environment, stdout: stdout, stderr: stderr)
        tracker.add(process)
        return process
    }

    /// Every process started with `spawn`.
    public var processes: [LabProcess] { tracker.all }

    /// Which of `addresses` answer an ICMP echo from machine `from` within `timeout` seconds.
    /// Uses `ping -c1 -W…` when installed, else an equivalent `python3` raw-socket probe.
    public func ping(from: String, to addresses: [String], timeout: Double = 2) throws -> [String: Bool] {
        guard let namespace = resolveNamespace(from) else { throw LabError.unknownTarget(from) }
        var result: [String: Bool] = [:]
        if let ping = Command.find("ping") {
            let wait = "\(max(1, Int(timeout.rounded(.up))))"
            for address in addresses {
                result[address] = try Command.run(Command.ip, ["netns", "exec", namespace, ping, "-c1", "-q", "-W", wait, address]).status == 0
            }
            return result
        }
        guard let python = Command.find("python3") else { throw LabError.executableNotFound("ping or python3") }
        let output = try Command.run(Command.ip, ["netns", "exec", namespace, python, "-c", pingScript, "\(timeout)"] + addresses)
        guard output.status == 0 else {
            throw LabError.commandFailed(command: "python3 ping probe in \(namespace)", status: output.status, message: output.stderr)
        }
        for line in output.stdout.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 2 { result[String(words[0])] = words[1] == "ok" }
        }
        for address in addresses where result[address] == nil { result[address] = false }
        return result
    }

    // MARK: - Counters

    /// Bytes received and sent by an interface of one of this lab's namespaces since the last
    /// `resetCounters()` (absolute counters before the first).
    public func counters(namespace: String, interface: String) throws -> (rxBytes: UInt64, txBytes: UInt64) {
        let now = try NetworkLab.readCounters(namespace: namespace, interface: interface)
        let saved: (rx: UInt64, tx: UInt64)? = lock.withLock { baselines["\(namespace)/\(interface)"] }
        let base = saved ?? (rx: 0, tx: 0)
        return (now.rx >= base.rx ? now.rx - base.rx : 0, now.tx >= base.tx ? now.tx - base.tx : 0)
    }

    /// The bytes that entered (`inBytes`: received on the site router's `wan` interface) and left
    /// (`outBytes`: sent on it) a site over its WAN link since the last `resetCounters()`.
    /// Counted at layer 2, so they include Ethernet, IP and TCP headers (about 0.3 % with the
    /// veths' 64 KiB segmentation offload, up to 5 % for full-size single frames).
    public func wanCounters(site: String) throws -> (inBytes: UInt64, outBytes: UInt64) {
        guard let namespace = plan.routerNamespaces[site] else { throw LabError.unknownTarget(site) }
        let counters = try counters(namespace: namespace, interface: "wan")
        return (counters.rxBytes, counters.txBytes)
    }

    /// The bytes the origin sent over its uplink (its `eth0`) since the last `resetCounters()`.
    public var originEgressBytes: UInt64 {
        get throws { try counters(namespace: plan.originNamespace, interface: "eth0").txBytes }
    }

    /// The bytes the origin received over its uplink since the last `resetCounters()`.
    public var originIngressBytes: UInt64 {
        get throws { try counters(namespace: plan.originNamespace, interface: "eth0").rxBytes }
    }

    /// Makes every counter of every link end count from zero (stores the current values as baselines).
    public func resetCounters() throws {
        var fresh: [String: (rx: UInt64, tx: UInt64)] = [:]
        for link in plan.links {
            for end in [link.a, link.b] {
                fresh["\(end.namespace)/\(end.interface)"] = try NetworkLab.readCounters(namespace: end.namespace, interface: end.interface)
            }
        }
        lock.withLock { baselines = fresh }
    }

    /// The absolute rx/tx byte counters of an interface (`ip -s -j link show`).
    static func readCounters(namespace: String, interface: String) throws -> (rx: UInt64, tx: UInt64) {
        let output = try Command.check(Command.ip, ["-n", namespace, "-s", "-j", "link", "show", "dev", interface])
        guard let json = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]],
              let stats = (json.first?["stats64"] ?? json.first?["stats"]) as? [String: Any],
              let rx = (stats["rx"] as? [String: Any])?["bytes"] as? NSNumber,
              let tx = (stats["tx"] as? [String: Any])?["bytes"] as? NSNumber else {
            throw LabError.other("cannot read the counters of \(namespace)/\(interface) from: \(output.prefix(200))")
        }
        return (rx.uint64Value, tx.uint64Value)
    }

    // MARK: - Teardown

    /// Stops every spawned process (SIGTERM, SIGKILL after a second), SIGKILLs whatever else
    /// still runs inside the lab's namespaces, deletes the namespaces (and so every veth and
    /// bridge in them) and the owner file. Idempotent, and safe after a failed build.
    public func teardown() {
        lock.withLock { isTornDown = true }
        tracker.stopAll(grace: 1)
        let namespaces = lock.withLock { created }
        for namespace in namespaces.reversed() {
            NetworkLab.removeNamespace(namespace)
        }
        lock.withLock { created.removeAll { !NetworkLab.namespaceExists($0) } }
        try? FileManager.default.removeItem(atPath: ownerFilePath)
    }

    /// Tears down every lab this process built that is still alive: for a SIGINT/SIGTERM
    /// handler (or `atexit`) of a program that must leave nothing behind however it ends.
    public static func teardownAll() {
        for lab in registry.live() { lab.teardown() }
    }

    private static let registry = LabRegistry()

    /// Kills what runs in `namespace` (by PID, as listed by `ip netns pids`) and deletes it.
    static func removeNamespace(_ namespace: String) {
        for _ in 0..<3 {
            guard namespaceExists(namespace) else { return }
            if let pids = try? Command.run(Command.ip, ["netns", "pids", namespace]), pids.status == 0 {
                for pid in pids.stdout.split(separator: "\n").compactMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }) where pid > 1 && pid != getpid() {
                    signalProcess(pid, SIGKILL)
                }
            }
            if (try? Command.run(Command.ip, ["netns", "del", namespace]))?.status == 0 { return }
            usleep(50_000)
        }
    }

    /// Whether a named namespace exists (`/run/netns/NAME`).
    static func namespaceExists(_ namespace: String) -> Bool {
        FileManager.default.fileExists(atPath: "/run/netns/" + namespace)
    }

    /// The names of every namespace (`ip netns list`).
    public static func listNamespaces() -> [String] {
        guard let result = try? Command.run(Command.ip, ["netns", "list"]), result.status == 0 else { return [] }
        return result.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    // MARK: - Owners and stale labs

    private var ownerFilePath: String { NetworkLab.stateDirectory + "/" + runID + ".owner" }

    private func writeOwnerFile() throws {
        try FileManager.default.createDirectory(atPath: NetworkLab.stateDirectory, withIntermediateDirectories: true)
        let pid = getpid()
        let start = ProcessInfoProbe.startTime(of: pid).map(String.init) ?? "?"
        let text = "pid \(pid)\nstart \(start)\n" + plan.namespaces.map { "namespace \($0)\n" }.joined()
        try text.write(toFile: ownerFilePath, atomically: true, encoding: .utf8)
    }

    /// A fresh run ID: this process's PID, `x`, and 6 random hex digits (`4242x1f0c3a`).
    public static func makeRunID() -> String {
        "\(getpid())x" + String(UInt32.random(in: 0..<(1 << 24)), radix: 16).leftPadded(to: 6)
    }

    static func checkRunID(_ id: String) throws {
        guard (1...24).contains(id.utf8.count), id.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }) else {
            throw LabError.invalidRunID(id)
        }
    }

    /// Whether the owner of run `runID` is alive: the PID and start time in its owner file, or,
    /// without one, the PID a default run ID begins with. `nil` when the owner cannot be told.
    static func ownerAlive(runID: String) -> Bool? {
        let path = stateDirectory + "/" + runID + ".owner"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            var pid: Int32?, start: UInt64?
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                guard words.count == 2 else { continue }
                if words[0] == "pid" { pid = Int32(words[1]) }
                if words[0] == "start" { start = UInt64(words[1]) }
            }
            if let pid {
                guard ProcessInfoProbe.isAlive(pid) else { return false }
                if let start, let now = ProcessInfoProbe.startTime(of: pid), now != start { return false }   // PID reused
                return true
            }
        }
        if let x = runID.firstIndex(of: "x"), let pid = Int32(runID[..<x]),
           runID[runID.index(after: x)...].allSatisfy(\.isHexDigit), runID.index(after: x) < runID.endIndex {
            return ProcessInfoProbe.isAlive(pid)
        }
        return nil
    }

    /// Removes the namespaces (`shoal-lab-<runid>-…`) of every lab whose owner process is dead,
    /// killing what still runs in them, and their owner files. Labs whose owner is alive, or
    /// cannot be told, are left alone.
    /// - Returns: the namespaces removed.
    @discardableResult
    public static func sweepStale() -> [String] {
        var removed: [String] = []
        var verdicts: [String: Bool?] = [:]
        for namespace in listNamespaces() where namespace.hasPrefix(LabPlan.namespacePrefix) {
            let rest = namespace.dropFirst(LabPlan.namespacePrefix.count)
            guard let dash = rest.firstIndex(of: "-") else { continue }
            let runID = String(rest[..<dash])
            if verdicts[runID] == nil { verdicts[runID] = .some(ownerAlive(runID: runID)) }
            guard case .some(.some(false)) = verdicts[runID] else { continue }
            removeNamespace(namespace)
            removed.append(namespace)
        }
        // Owner files of dead runs (whether or not namespaces were left).
        if let files = try? FileManager.default.contentsOfDirectory(atPath: stateDirectory) {
            for file in files where file.hasSuffix(".owner") {
                let runID = String(file.dropLast(".owner".count))
                if ownerAlive(runID: runID) == false {
                    try? FileManager.default.removeItem(atPath: stateDirectory + "/" + file)
                }
            }
        }
        return removed
    }

    // MARK: - Support probe

    @discardableResult
    private static func probe() throws -> Bool {
        guard geteuid() == 0 else { throw LabError.unsupported("not running as root") }
        let namespace = LabPlan.namespace(runID: makeRunID(), suffix: "probe")
        defer { removeNamespace(namespace) }
        try Command.ip("netns", "add", namespace)
        try Command.ip("-n", namespace, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        try Command.ip("-n", namespace, "link", "add", "br0", "type", "bridge")
        for command in Shaping(rate: .mbit(10)).commands(namespace: namespace, interface: "v0") {
            try Command.tc(command)
        }
        return true
    }
}

/// Weak references to the labs of this process, for `NetworkLab.teardownAll()`.
private final class LabRegistry: @unchecked Sendable {
    private final class Weak { weak var lab: NetworkLab?; init(_ lab: NetworkLab) { self.lab = lab } }
    private let lock = NSLock()
    private var entries: [Weak] = []

    func add(_ lab: NetworkLab) {
        lock.withLock {
            entries.removeAll { $0.lab == nil }
            entries.append(Weak(lab))
        }
    }

    func live() -> [NetworkLab] { lock.withLock { entries.compactMap(\.lab) } }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// An ICMP echo probe for machines without `ping`: `python3 -c SCRIPT TIMEOUT ADDRESS…` prints
/// `ADDRESS ok` or `ADDRESS fail` per address (raw socket; root).
let pingScript = """
import os, select, socket, struct, sys, time
def checksum(b):
    if len(b) % 2: b += b"\\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
timeout = float(sys.argv[1]); ident = os.getpid() & 0xffff
for seq, dst in enumerate(sys.argv[2:], 1):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    payload = b"shoal-lab-ping"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    s.sendto(struct.pack("!BBHHH", 8, 0, checksum(header + payload), ident, seq) + payload, (dst, 0))
    end = time.monotonic() + timeout; ok = False
    while not ok:
        left = end - time.monotonic()
        if left <= 0 or not select.select([s], [], [], left)[0]: break
        data, addr = s.recvfrom(4096)
        ihl = (data[0] & 15) * 4
        kind, code, _, i, sq = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        ok = kind == 0 and i == ident and sq == seq and addr[0] == dst
    s.close()
    print(dst, "ok" if ok else "fail", flush=True)
"""
