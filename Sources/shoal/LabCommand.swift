import ArgumentParser
import Foundation
import ShoalBundle
import ShoalHostDrivers
import ShoalHostLab
import ShoalCrypto
import ShoalLab
import ShoalRollout
import ShoalStorage
import ShoalTLS
import ShoalTopology
import ShoalWire

struct LabCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab",
        abstract: "The emulated datacenter on this machine.",
        subcommands: [LabRun.self]
    )
}

struct LabRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Build the datacenter of a topology, distribute a bundle to every host, report, tear down.",
        discussion: """
            As root: every host in its own network namespace, each site a bridge behind a router, every \
            link shaped with HTB at the topology's rates. Otherwise: loopback addresses, the same rates \
            enforced by the peers themselves (token buckets; the report says mode "loopback" and \
            rate_enforcement "application"). Operator caps in the topology (uplink_limit, wan_limit, \
            host_limit, limit) apply in both modes, and the bound is computed for the capped rates. Starts the CA, the coordinator, the seed and one \
            peer per host as separate processes, distributes, waits until every host has the verified \
            image staged, then reports completion time against the lower bound, WAN copies per site, \
            origin egress, and per-host time, image check and peak memory. Everything it made is removed \
            at the end, also on failure or Ctrl-C.
            """
    )

    @Argument(help: "Topology file (YAML).") var topology: String
    @Option(help: "Bundle to distribute (default: a 64 MiB sample image bundled on the spot).") var bundle: String?
    @Option(help: "Write the JSON report here.") var report: String?
    @Option(help: "Give up after this many seconds of distribution.") var timeout: Double = 900
    @Option(help: "Keep the work directory (logs, stores, staged images) here instead of a temporary one.") var keep: String?
    @Flag(help: "Use loopback addresses even when network namespaces are available.") var loopback = false
    @Flag(help: "Dual-stack namespaces, every process talking IPv6 (fd00:…); needs network namespaces (root).") var ipv6 = false
    @Option(help: "Fault: this host serves corrupt chunks (it must be caught, banned and reported).") var corrupt: [String] = []
    @Option(help: "Fault: kill -9 this host's peer during the distribution, then restart it.") var killPeer: String?
    @Option(help: "Seconds after the start of the distribution to kill --kill-peer.") var killAfter: Double = 1
    @Flag(help: "Fault: kill the seed as soon as every site holds a full copy.") var killSeed = false
    @Flag(help: "Then distribute the same bundle file with aria2c and opentracker over the same lab, and report both side by side (namespaces only).")
    var compareAria2c = false
    @Flag(help: "The whole mission: lab hosts with emulated disks and firmware, distribute the staging and target bundles, then convert every host in waves with a rollout.")
    var convert = false
    @Option(name: .customLong("base-bundle"), help: ArgumentHelp("With --convert: the base OS every lab host starts with (also the staging bundle). Default: a small built-in OS.", valueName: "FILE"))
    var baseBundle: String?
    @Option(name: .customLong("target-bundle"), help: ArgumentHelp("With --convert: the OS to convert to. Default: a small built-in OS.", valueName: "FILE"))
    var targetBundle: String?
    @Option(help: ArgumentHelp("With --convert: the rollout policy (JSON, docs/ROLLOUTS.md); default: the lab policy (the cautious defaults with lab-sized times).", valueName: "FILE"))
    var policy: String?
    @Option(help: "With --convert, fault: this host's target never passes its health check (repeatable).") var failHost: [String] = []
    @Option(help: "With --convert, fault: kill -9 the coordinator this many seconds into the rollout, then start it again on its state.")
    var killCoordinatorAfter: Double?

    func run() throws {
        try reportingErrors {
            let topo: Topology
            do { topo = try Topology.parse(yaml: try String(contentsOfFile: topology, encoding: .utf8)) } catch { throw CLIError(message: "\(topology): \(error)") }
            let work = keep ?? NSTemporaryDirectory() + "shoal-lab-\(getpid())"
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            defer { if keep == nil { try? FileManager.default.removeItem(atPath: work) } }
            // Signals first: a Ctrl-C while the lab is being built must still remove what exists.
            let cancel = ([SIGINT, SIGTERM] as [Int32]).map { sig -> any DispatchSourceSignal in
                signal(sig, SIG_IGN)
                let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                s.setEventHandler {
                    Terminal.note("interrupted: tearing the lab down")
                    NetworkLab.teardownAll()
                    LabRunner.active?.teardown()
                    if keep == nil { try? FileManager.default.removeItem(atPath: work) }
                    Glibc.exit(130)
                }
                s.resume()
                return s
            }
            if ipv6, loopback || !NetworkLab.isSupported {
                throw CLIError(message: "--ipv6 needs network namespaces (root, ip netns); the loopback lab is IPv4 only")
            }
            let runner = try LabRunner(topology: topo, work: work, useNamespaces: !loopback && NetworkLab.isSupported, ipv6: ipv6, timeout: timeout)
            LabRunner.active = runner
            runner.setTopologySource(topology)
            runner.faults = .init(corrupt: Set(corrupt), killPeer: killPeer, killAfter: killAfter, killSeed: killSeed)
            for h in corrupt + [killPeer].compactMap({ $0 }) where topo.host(named: h) == nil { throw CLIError(message: "no host \(h) in the topology") }
            defer { cancel.forEach { $0.cancel() }; runner.teardown() }
            if convert {
                guard bundle == nil, !compareAria2c else { throw CLIError(message: "--convert takes --base-bundle/--target-bundle, not --bundle or --compare-aria2c", code: 64) }
                for h in failHost where topo.host(named: h) == nil { throw CLIError(message: "no host \(h) in the topology") }
                var labPolicy = LabRunner.labPolicy()
                if let policy {
                    guard let data = FileManager.default.contents(atPath: policy) else { throw CLIError(message: "cannot read \(policy)", code: 64) }
                    do {
                        labPolicy = try JSONDecoder().decode(RolloutPolicy.self, from: data)
                        try labPolicy.validate()
                    } catch { throw CLIError(message: "\(policy): \(error)", code: 64) }
                }
                let options = LabRunner.ConvertOptions(baseBundle: baseBundle, targetBundle: targetBundle, policy: labPolicy, failHosts: Set(failHost),
                                                       killCoordinatorAfter: killCoordinatorAfter, timeout: timeout)
                let fleet = try runner.makeFleet(options)
                // The rollout is created as soon as the bundles are published: each host becomes
                // eligible for a wave the moment its own data is local.
                var rolloutStart = 0.0
                let result = try runner.run(bundlePaths: [fleet.images.baseBundle, fleet.images.targetBundle],
                                            convert: .init(hostDirectory: { [work] in fleet.directory(work, $0) },
                                                           onDistributed: { rolloutStart = try runner.createRollout(fleet, options) }))
                result.printTable()
                let conversion = try runner.followRollout(fleet, options, started: rolloutStart)
                conversion.printTable(origin: result.startedAt, bound: result.bound.seconds)
                var json = result.json
                json["conversion"] = conversion.json(origin: result.startedAt, distributionSeconds: result.completion, bound: result.bound.seconds)
                if var hosts = json["hosts"] as? [String: Any] {
                    for (name, h) in conversion.hosts {
                        guard var o = hosts[name] as? [String: Any] else { continue }
                        o["os"] = h.os
                        o["profile_ok"] = h.profileOK
                        o["phase"] = h.phase
                        o["attempt"] = h.attempt
                        o["boots"] = h.boots
                        o["conversion_seconds"] = conversion.hostSeconds[name] ?? NSNull()
                        if !h.differences.isEmpty { o["profile_differences"] = h.differences }
                        hosts[name] = o
                    }
                    json["hosts"] = hosts
                }
                if let report {
                    let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
                    try data.write(to: URL(fileURLWithPath: report))
                    print("report: \(report)")
                }
                guard result.allImagesOK else { throw CLIError(message: "some hosts did not end with both bundles verified") }
                guard conversion.rollout.status == .completed else {
                    throw CLIError(message: "the rollout \(conversion.rollout.status.rawValue)\(conversion.rollout.haltReason.map { ": \($0)" } ?? "") — not converted: \(conversion.rollout.hosts.filter { $0.phase != .succeeded }.map(\.host).joined(separator: ", "))")
                }
                // Hosts made to fail may fail (and be reverted); every other host must be converted with its identity.
                let unexpected = conversion.rollout.hosts.filter { !failHost.contains($0.host) && $0.phase != .succeeded }
                if !unexpected.isEmpty {
                    throw CLIError(message: "not converted: \(unexpected.map { "\($0.host) (\($0.phase.rawValue): \($0.message ?? ""))" }.joined(separator: ", "))")
                }
                let lost = conversion.hosts.filter { !failHost.contains($0.key) && !$0.value.profileOK }
                if !lost.isEmpty { throw CLIError(message: "identity not carried over on \(lost.keys.sorted().joined(separator: ", "))") }
                return
            }
            let bundlePath = try bundle ?? runner.makeSampleBundle()
            if compareAria2c {
                guard !loopback, NetworkLab.isSupported else { throw CLIError(message: "--compare-aria2c needs network namespaces (root)") }
                _ = try LabRunner.aria2Tools()
            }
            let result = try runner.run(bundlePaths: [bundlePath])
            result.printTable()
            var json = result.json
            if compareAria2c {
                for p in runner.lab.processes where p.isRunning { p.terminate() }
                let fileBytes = UInt64((try FileManager.default.attributesOfItem(atPath: bundlePath)[.size] as? NSNumber)?.uint64Value ?? 0)
                let bound = topo.limited().lowerBound(bundleBytes: fileBytes).seconds
                let aria = try runner.runAria2c(bundlePath: bundlePath, bound: bound, bundleBytes: fileBytes, timeout: timeout)
                LabRunner.printSideBySide(shoal: result, aria2c: aria)
                json["comparison"] = ["aria2c": aria.json]
            }
            if let report {
                let data = try JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys])
                try data.write(to: URL(fileURLWithPath: report))
                print("report: \(report)")
            }
            guard result.allImagesOK else { throw CLIError(message: "some hosts did not end with the exact image") }
        }
    }
}

/// Drives one lab run: certificates, processes, distribution, measurement, teardown.
final class LabRunner: @unchecked Sendable {
    /// The run in progress, for the signal handler.
    nonisolated(unsafe) static var active: LabRunner?
    // Invariant: used from the command's thread; `teardown` may also run from the signal handler
    // (the lab's teardown is idempotent and thread-safe).
    let topology: Topology
    let work: String
    let lab: any Lab
    let timeout: Double
    let shoal: String
    let coordinatorPort = 7700
    let peerPort = 7701

    struct Faults {
        var corrupt: Set<String> = []
        var killPeer: String?
        var killAfter: Double = 1
        var killSeed = false
    }
    var faults = Faults()
    private var events: [String] = []
    /// Samples of the distribution every 0.5 s: seconds, and per site the bytes in over its WAN
    /// interface and the chunks its hosts hold together.
    private var timeline: [[String: Any]] = []

    init(topology: Topology, work: String, useNamespaces: Bool, ipv6: Bool = false, timeout: Double) throws {
        self.topology = topology
        self.work = work
        self.timeout = timeout
        self.shoal = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        do {
            var options = NetworkLab.Options()
            options.ipv6 = ipv6
            lab = useNamespaces ? try NetworkLab.build(topology: topology, options: options) : try LoopbackLab(topology: topology)
        } catch {
            throw CLIError(message: "cannot build the lab: \(error)")
        }
        Terminal.note("lab: mode \(lab.mode), \(topology.sites.count) sites, \(topology.hosts.count) hosts, work dir \(work)")
    }

    func teardown() { lab.teardown() }

    /// `HOST:PORT`, with an IPv6 host in brackets.
    func hostPort(_ host: String, _ port: Int) -> String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    func makeSampleBundle() throws -> String {
        let image = work + "/sample.img", bundle = work + "/sample.shoal"
        try SampleImage.write(to: image, size: 64 << 20)
        var options = BundleCreator.Options(name: "lab-sample")
        options.regionSize = 1 << 20
        _ = try BundleCreator(options: options).create(image: image, output: bundle)
        return bundle
    }

    struct Result {
        var mode: String
        var bundleBytes: UInt64
        var completion: Double
        var bound: LowerBound
        var originEgress: UInt64
        var sites: [String: (inBytes: UInt64, outBytes: UInt64)]
        var hosts: [String: (site: String, seconds: Double?, imageOK: Bool, peakRSS: UInt64?)]
        /// Chunk bytes that entered each site, by the nodes' own accounting (exactly one bundle per
        /// site when the WAN rule held and nobody died).
        var chunkBytesIn: [String: UInt64] = [:]
        var events: [String] = []
        var timeline: [[String: Any]] = []
        var peerSeconds: [String: Double] = [:]
        var observed: [String: Double] = [:]
        var badPeerReports: [String] = []
        var faulty: Set<String> = []
        var runID = ""
        /// 6 when every process talked IPv6 (`--ipv6`).
        var ipVersion = 4
        /// Chunk bytes the seed served (the nodes' own accounting, without TLS/TCP overhead).
        var originChunkBytes: UInt64 = 0
        var allImagesOK: Bool { hosts.values.allSatisfy(\.imageOK) }
        /// Unix time the distribution started (the lab's "start").
        var startedAt: Double = 0

        var json: [String: Any] {
            var sitesJSON: [String: Any] = [:]
            for (name, s) in sites {
                sitesJSON[name] = ["wan_in_bytes": s.inBytes, "wan_out_bytes": s.outBytes,
                                   "wan_in_copies": Double(s.inBytes) / Double(bundleBytes), "wan_out_copies": Double(s.outBytes) / Double(bundleBytes),
                                   "chunk_bytes_in": chunkBytesIn[name] ?? 0,
                                   "chunk_copies_in": Double(chunkBytesIn[name] ?? 0) / Double(bundleBytes)]
            }
            var hostsJSON: [String: Any] = [:]
            for (name, h) in hosts {
                var o: [String: Any] = ["site": h.site, "image_ok": h.imageOK, "faulty": faulty.contains(name)]
                o["seconds"] = h.seconds ?? NSNull()
                o["peer_seconds"] = peerSeconds[name] ?? NSNull()
                o["observed_seconds"] = observed[name] ?? NSNull()
                o["peak_rss_bytes"] = h.peakRSS ?? NSNull()
                hostsJSON[name] = o
            }
            return [
                "mode": mode, "ip_version": ipVersion, "bundle_bytes": bundleBytes, "completion_seconds": completion, "bound_seconds": bound.seconds,
                "ratio_to_bound": completion / bound.seconds, "bound_binding": "\(bound.binding)",
                "origin_egress_bytes": originEgress, "origin_egress_copies": Double(originEgress) / Double(bundleBytes),
                "sites": sitesJSON, "hosts": hostsJSON, "rates_enforced": true,
                "rate_enforcement": mode == "netns" ? "htb" : "application",
                "events": events, "bad_peer_reports": badPeerReports, "run_id": runID, "timeline": timeline,
                "origin_chunk_bytes": originChunkBytes, "origin_chunk_copies": Double(originChunkBytes) / Double(bundleBytes),
            ]
        }

        func printTable() {
            print(String(format: "mode %@: %.2f s for %@ (bound %.2f s, %@) → %.3f× the bound", mode, completion,
                         Format.bytes(bundleBytes), bound.seconds, "\(bound.binding)", completion / bound.seconds))
            print(String(format: "origin egress: %.3f copies of the bundle (%.3f in chunk bytes served by the seed)",
                         Double(originEgress) / Double(bundleBytes), Double(originChunkBytes) / Double(bundleBytes)))
            func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
            print("site      WAN in (copies)   WAN out (copies)   chunk bytes in (copies)")
            for name in sites.keys.sorted() {
                let s = sites[name]!
                print(pad(name, 10) + pad(String(format: "%.3f", Double(s.inBytes) / Double(bundleBytes)), 18)
                      + pad(String(format: "%.3f", Double(s.outBytes) / Double(bundleBytes)), 19)
                      + String(format: "%.3f", Double(chunkBytesIn[name] ?? 0) / Double(bundleBytes)))
            }
            for e in events { print("event: \(e)") }
            for r in badPeerReports { print("bad peer: \(r)") }
            print("host      site      seconds   image   peak RSS")
            for name in hosts.keys.sorted() {
                let h = hosts[name]!
                print(pad(name, 10) + pad(h.site, 10) + pad(h.seconds.map { String(format: "%.2f", $0) } ?? "-", 10)
                      + pad(faulty.contains(name) ? "faulty" : h.imageOK ? "ok" : "WRONG", 8) + (h.peakRSS.map { Format.bytes($0) } ?? "-"))
            }
        }
    }

    func tlsDir(_ name: String) -> String { work + "/tls/" + name }

    /// For `--convert`: every peer runs the lab driver on its own lab host (made from the base
    /// image), and its packed store is where the swarm delivers the bundles.
    struct ConvertSetup {
        var hostDirectory: (String) -> String
        /// Called once the bundles are published (the distribution is under way).
        var onDistributed: () throws -> Void = {}
    }

    /// Distributes `bundlePaths` (the seed serves them all) to every host. Without `convert`, the
    /// first bundle is staged onto each host's staging file and checked; with it, every bundle lands
    /// in the lab host's packed store and is verified there.
    func run(bundlePaths: [String], convert: ConvertSetup? = nil) throws -> Result {
        let files = try bundlePaths.map { try BundleFile(path: $0) }
        let file = files[0]
        let manifest = file.manifest
        let ids = files.map(\.bundleID.hex)
        let bundleBytes = files.map(\.manifest.storedSize).reduce(0, +)
        let totalChunks = files.map(\.manifest.frames.count).reduce(0, +)
        // Certificates: coordinator and operator and seeds at the origin, one per host.
        let ca = try FleetCA.create(name: "Shoal lab CA")
        let origin = topology.origin.name
        try ca.issue(FleetIdentity(host: "coordinator", site: origin, role: .coordinator), into: tlsDir("coordinator"))
        try ca.issue(FleetIdentity(host: "operator", site: origin, role: .operator_), into: tlsDir("operator"))
        for seed in topology.origin.seeds { try ca.issue(FleetIdentity(host: seed, site: origin, role: .seed), into: tlsDir(seed)) }
        for h in topology.hosts { try ca.issue(FleetIdentity(host: h.name, site: h.site, role: .peer), into: tlsDir(h.name)) }

        let coordinatorAddress = self.coordinatorAddress
        let topologyPath = work + "/topology.yaml"
        try? FileManager.default.removeItem(atPath: topologyPath)
        try FileManager.default.copyItem(atPath: resolvedTopologyPath(), toPath: topologyPath)
        try startCoordinator()
        usleep(300_000)
        let seedName = topology.origin.seeds.first ?? "seed"
        let seedProcess = try lab.spawn(in: seedName, executable: shoal, arguments: ["seed"] + bundlePaths + [
            "--listen", hostPort(lab.address(of: seedName), peerPort), "--advertise", lab.address(of: seedName),
            "--coordinator", coordinatorAddress, "--tls", tlsDir(seedName),
        ], environment: nil, stdout: work + "/\(seedName).log", stderr: work + "/\(seedName).log")
        var peers: [String: LabProcess] = [:]
        func startPeer(_ name: String) throws -> LabProcess {
            let address = lab.address(of: name)
            var args = [
                "peer", "--listen", hostPort(address, peerPort), "--advertise", address, "--coordinator", coordinatorAddress,
                "--tls", tlsDir(name),
            ]
            if let convert {
                let dir = convert.hostDirectory(name)
                args += ["--store", dir + "/bundles", "--lab", dir]
            } else {
                args += ["--store", work + "/store-\(name)", "--stage", work + "/stage-\(name).img"]
            }
            if faults.corrupt.contains(name) { args += ["--fault", "corrupt-serving"] }
            return try lab.spawn(in: name, executable: shoal, arguments: args, environment: nil,
                                 stdout: work + "/\(name).log", stderr: work + "/\(name).log")
        }
        for h in topology.hosts { peers[h.name] = try startPeer(h.name) }
        // Wait until every node has announced.
        let everyone = topology.origin.seeds + topology.hosts.map(\.name)
        let joinDeadline = Date().addingTimeInterval(30)
        while true {
            if let s = try? status(), Set(s.hosts.filter(\.alive).map(\.host)).isSuperset(of: everyone) { break }
            guard Date() < joinDeadline else { throw CLIError(message: "not every node reached the coordinator within 30 s (logs in \(work))") }
            usleep(200_000)
        }
        if let net = lab as? NetworkLab { try net.resetCounters() }
        let start = Date()
        for path in bundlePaths {
            let distribute = try lab.spawn(in: origin, executable: shoal, arguments: [
                "distribute", path, "--coordinator", coordinatorAddress, "--tls", tlsDir("operator"), "--hosts", "all",
            ], environment: nil, stdout: work + "/distribute.log", stderr: work + "/distribute.log")
            _ = distribute.waitUntilExit(timeout: 30)
            guard distribute.exitStatus == 0 else { throw CLIError(message: "distribute failed (see \(work)/distribute.log)") }
        }
        Terminal.note("distributing \(Format.bytes(bundleBytes)) (\(files.count) bundle\(files.count == 1 ? "" : "s"), \(totalChunks) chunks) to \(topology.hosts.count) hosts")
        try convert?.onDistributed()

        var done: [String: Double] = [:]
        /// What each peer measured itself: from its first job for the bundle to the image staged.
        var peerSeconds: [String: Double] = [:]
        var observed: [String: Double] = [:]
        var last: StatusReport?
        var killed = false, seedKilled = false
        // A host made to corrupt what it serves gets banned by everyone: it is not waited for.
        let expected = Set(topology.hosts.map(\.name)).subtracting(faults.corrupt)
        while !expected.isSubset(of: Set(done.keys)) {
            let elapsed = Date().timeIntervalSince(start)
            if let victim = faults.killPeer, !killed, elapsed >= faults.killAfter, let p = peers[victim] {
                killed = true
                p.kill()
                _ = p.waitUntilExit(timeout: 5)
                events.append(String(format: "%.2f s: kill -9 %@", elapsed, victim))
                usleep(500_000)
                peers[victim] = try startPeer(victim)
                events.append(String(format: "%.2f s: restarted %@", Date().timeIntervalSince(start), victim))
            }
            guard Date().timeIntervalSince(start) < timeout else {
                throw CLIError(message: "timed out after \(Int(timeout)) s with \(done.count)/\(expected.count) hosts done (logs in \(work))")
            }
            // Completion times come from the hosts' own clocks, so polling need not be fast (each
            // poll is a process and a TLS handshake on the same two cores as the peers).
            usleep(250_000)
            for (name, p) in peers where !p.isRunning {
                throw CLIError(message: "the peer of \(name) exited unexpectedly (\(p.termination.map(\.description) ?? "?")); see \(work)/\(name).log")
            }
            guard let s = try? status() else { continue }
            last = s
            let now = Date().timeIntervalSince(start)
            if now >= Double(timeline.count) * 0.5 {
                var sample: [String: Any] = ["t": (now * 100).rounded() / 100]
                for site in topology.sites {
                    let held = s.hosts.filter { $0.site == site.name }.flatMap { $0.bundles.filter { ids.contains($0.bundleID) } }.map(\.have).reduce(0, +)
                    var o: [String: Any] = ["chunks_held": held]
                    if let net = lab as? NetworkLab, let c = try? net.wanCounters(site: site.name) { o["wan_in_bytes"] = c.inBytes; o["wan_out_bytes"] = c.outBytes }
                    sample[site.name] = o
                }
                if let net = lab as? NetworkLab, let e = try? net.originEgressBytes { sample["origin_egress_bytes"] = e }
                timeline.append(sample)
            }
            if faults.killSeed, !seedKilled {
                // Every site holds a full copy once the union of its hosts' verified chunks is all of them.
                let everySite = topology.sites.allSatisfy { site in
                    zip(ids, files).allSatisfy { id, f in
                        var union = [UInt8](repeating: 0, count: (f.manifest.frames.count + 7) / 8)
                        for b in s.hosts.filter({ $0.site == site.name }).flatMap({ $0.bundles.filter { ids.contains($0.bundleID) } }) {
                            guard let bits = b.haveBits.flatMap({ Data(base64Encoded: $0) }), bits.count == union.count else { continue }
                            for (k, byte) in bits.enumerated() { union[k] |= byte }
                        }
                        return union.reduce(0) { $0 + $1.nonzeroBitCount } == f.manifest.frames.count
                    }
                }
                if everySite {
                    seedProcess.kill()
                    seedKilled = true
                    events.append(String(format: "%.2f s: every site holds a copy; kill -9 the seed", now))
                }
            }
            for h in s.hosts where done[h.host] == nil && topology.host(named: h.host) != nil {
                let mine = ids.compactMap { id in h.bundles.first(where: { $0.bundleID == id }) }
                if let e = mine.compactMap(\.error).first { throw CLIError(message: "\(h.host): \(e)") }
                if mine.count == ids.count, mine.allSatisfy({ $0.complete && ($0.staged || convert != nil) }) {
                    // The host's own clock says when (same machine); the poll only notices it later.
                    let at = mine.compactMap(\.completedAt).max()
                    done[h.host] = at.map { $0 - start.timeIntervalSince1970 } ?? now
                    observed[h.host] = now
                    peerSeconds[h.host] = mine.compactMap(\.seconds).max()
                }
            }
            if Terminal.isInteractive {
                let have = s.hosts.flatMap { $0.bundles.filter { ids.contains($0.bundleID) }.map(\.have) }.reduce(0, +)
                FileHandle.standardError.write(Data(String(format: "\r  %.1f s: %d/%d hosts done, %d/%d chunks   ", now, done.count, topology.hosts.count,
                                                           have, totalChunks * (topology.hosts.count + 1)).utf8))
            }
        }
        let completion = expected.compactMap { done[$0] }.max() ?? 0
        if Terminal.isInteractive { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }

        // Measurements, before anything stops.
        var sites: [String: (UInt64, UInt64)] = [:]
        var originEgress: UInt64 = 0
        var chunkBytesIn: [String: UInt64] = [:]
        let originChunkBytes = (last?.hosts ?? []).filter { $0.site == origin }.flatMap { $0.bundles.filter { ids.contains($0.bundleID) } }
            .compactMap(\.servedBytes).reduce(0, +)
        for site in topology.sites {
            chunkBytesIn[site.name] = (last?.hosts ?? []).filter { $0.site == site.name }
                .flatMap { $0.bundles.filter { ids.contains($0.bundleID) } }.compactMap(\.wanInBytes).reduce(0, +)
        }
        if let net = lab as? NetworkLab {
            for s in topology.sites { sites[s.name] = try net.wanCounters(site: s.name) }
            originEgress = try net.originEgressBytes
        } else if let last {
            // Loopback: the nodes' own accounting of chunk bytes that crossed a site boundary.
            for site in topology.sites {
                let hosts = last.hosts.filter { $0.site == site.name }
                let bundles = hosts.flatMap { $0.bundles.filter { ids.contains($0.bundleID) } }
                sites[site.name] = (bundles.compactMap(\.wanInBytes).reduce(0, +), bundles.compactMap(\.wanOutBytes).reduce(0, +))
            }
            originEgress = last.hosts.filter { $0.site == origin }.flatMap { $0.bundles.filter { ids.contains($0.bundleID) } }.compactMap(\.servedBytes).reduce(0, +)
        }
        var hosts: [String: (String, Double?, Bool, UInt64?)] = [:]
        for h in topology.hosts {
            let rss = peers[h.name].flatMap { Self.peakRSS(pid: $0.pid) }
            let ok: Bool
            if let convert {
                // Every bundle complete and verified (each chunk, then the image digest) in the lab host's packed store.
                let driver = LabDriver(host: LabHost(directory: convert.hostDirectory(h.name)))
                ok = ids.allSatisfy { if case .verified = driver.bundleState($0) { return true } else { return false } }
            } else {
                ok = (try? Self.hashFile(work + "/stage-\(h.name).img", length: manifest.imageSize)) == manifest.imageDigest
            }
            hosts[h.name] = (h.site, done[h.name], ok || faults.corrupt.contains(h.name), rss)
        }
        // Operator caps lower what the datacenter can do; the bound is for the capped rates.
        let bound = topology.limited().lowerBound(bundleBytes: bundleBytes)
        var result = Result(mode: lab.mode.rawValue, bundleBytes: bundleBytes, completion: completion, bound: bound, originEgress: originEgress,
                      sites: sites.mapValues { (inBytes: $0.0, outBytes: $0.1) },
                      hosts: hosts.mapValues { (site: $0.0, seconds: $0.1, imageOK: $0.2, peakRSS: $0.3) },
                      chunkBytesIn: chunkBytesIn, events: events, badPeerReports: last?.badPeerReports ?? [], faulty: faults.corrupt,
                      runID: (lab as? NetworkLab)?.runID ?? "", ipVersion: ((lab as? NetworkLab)?.options.ipv6 ?? false) ? 6 : 4,
                      originChunkBytes: originChunkBytes)
        result.timeline = timeline
        result.startedAt = start.timeIntervalSince1970
        result.peerSeconds = peerSeconds
        result.observed = observed
        return result
    }

    var coordinatorAddress: String { hostPort(lab.originAddress, coordinatorPort) }
    /// The coordinator's process (replaced when a fault restarts it).
    var coordinatorProcess: LabProcess?

    /// Starts the coordinator at the origin on its state file (a restart continues from it).
    func startCoordinator() throws {
        // A restart logs to a file of its own: coordinator.log, coordinator.1.log, …
        let log = coordinatorLogPath(restart: coordinatorStarts)
        coordinatorProcess = try lab.spawn(in: topology.origin.name, executable: shoal, arguments: [
            "coordinator", "--topology", work + "/topology.yaml", "--listen", coordinatorAddress, "--tls", tlsDir("coordinator"),
            "--state", work + "/coordinator.db", "--live-timeout", "5",
        ] + (lab.mode == .loopback ? ["--enforce-link-rates"] : []), environment: nil, stdout: log, stderr: log)
        coordinatorStarts += 1
    }
    private var coordinatorStarts = 0
    func coordinatorLogPath(restart: Int) -> String { work + (restart == 0 ? "/coordinator.log" : "/coordinator.\(restart).log") }

    private var topologySource: String?
    func resolvedTopologyPath() -> String { topologySource ?? "" }
    func setTopologySource(_ path: String) { topologySource = path }

    func status() throws -> StatusReport {
        let out = work + "/status.json"
        let p = try lab.spawn(in: topology.origin.name, executable: shoal, arguments: [
            "status", "--coordinator", hostPort(lab.originAddress, coordinatorPort), "--tls", tlsDir("operator"), "--json",
        ], environment: nil, stdout: out, stderr: nil)
        _ = p.waitUntilExit(timeout: 10)
        guard p.exitStatus == 0, let data = FileManager.default.contents(atPath: out) else { throw CLIError(message: "status failed") }
        return try JSONDecoder().decode(StatusReport.self, from: data)
    }

    static func peakRSS(pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { UInt64($0) }.first
            return kb.map { $0 * 1024 }
        }
        return nil
    }

    static func hashFile(_ path: String, length: UInt64) throws -> Digest {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw CLIError(message: "cannot read \(path)") }
        defer { try? handle.close() }
        let hasher = SHA256Hasher()
        var remaining = length
        while remaining > 0 {
            let data = handle.readData(ofLength: Int(min(remaining, 4 << 20)))
            if data.isEmpty { break }
            hasher.update(Array(data))
            remaining -= UInt64(data.count)
        }
        return hasher.finalize()
    }
}
