import Foundation
import ShoalBundle
import ShoalHostDrivers
import ShoalHostLab
import ShoalRollout
import ShoalStorage
import ShoalWire

/// `shoal lab run --convert`: the mission end to end on the emulated datacenter. Every host of the
/// topology becomes a lab host (emulated disks and firmware) running the base OS with its own
/// hostname, address and SSH host keys; its peer runs the lab driver. The staging bundle (the
/// base-OS copy) and the target bundle are distributed to every host, then one rollout converts
/// the whole datacenter in waves, and the report says per wave and per host what happened.
extension LabRunner {
    struct ConvertOptions {
        var baseBundle: String?
        var targetBundle: String?
        var policy: RolloutPolicy
        var failHosts: Set<String> = []
        var killCoordinatorAfter: Double?
        var timeout: Double
    }

    /// The lab's default policy: the cautious defaults, with times that fit a lab (hosts convert
    /// in seconds) and room for half a site at once so a small site does not crawl one by one.
    static func labPolicy() -> RolloutPolicy {
        var p = RolloutPolicy()
        p.soakSeconds = 1
        p.healthDeadlineSeconds = 180
        p.maxUnavailablePerSite = .percent(50)
        p.maxUnavailablePerRack = .percent(50)
        p.agentHealthTimeoutSeconds = 30
        p.agentHealthPollSeconds = 0.5
        return p
    }

    struct Fleet {
        var images: LabFleet.Images
        var nics: [String: LabFleet.NIC]
        var before: [String: LabFleet.Identity]
        func directory(_ work: String, _ host: String) -> String { work + "/hosts/" + host }
    }

    /// Images (the embedded default unless bundles are given) and one lab host per topology host.
    func makeFleet(_ options: ConvertOptions) throws -> Fleet {
        let imagesDir = work + "/images"
        let images: LabFleet.Images
        if let base = options.baseBundle, let target = options.targetBundle {
            try FileManager.default.createDirectory(atPath: imagesDir, withIntermediateDirectories: true)
            let baseImage = imagesDir + "/base.ext4"
            var apply = BundleApplier.Options()
            apply.resumePath = baseImage + ".shoal-resume"
            _ = try BundleApplier(options: apply).apply(bundle: try BundleFile(path: base), to: baseImage)
            images = LabFleet.Images(baseImage: baseImage, baseBundle: base, targetBundle: target)
        } else if options.baseBundle != nil || options.targetBundle != nil {
            throw CLIError(message: "--base-bundle and --target-bundle go together (or give neither for the embedded default images)", code: 64)
        } else {
            Terminal.note("lab: building the default OS images (busybox-based ext4: alpha with ifupdown, beta with netplan)")
            images = try LabFleet.makeDefaultImages(in: imagesDir)
        }
        var nics: [String: LabFleet.NIC] = [:], before: [String: LabFleet.Identity] = [:]
        try FileManager.default.createDirectory(atPath: work + "/hosts", withIntermediateDirectories: true)
        for (i, h) in topology.hosts.enumerated() {
            let nic = LabFleet.NIC.lab(index: i + 1, address: lab.address(of: h.name))
            let host = try LabFleet.createHost(at: work + "/hosts/" + h.name, name: h.name, baseImage: images.baseImage, nic: nic)
            if options.failHosts.contains(h.name) {
                let target = try BundleFile(path: images.targetBundle).bundleID.hex
                FileManager.default.createFile(atPath: LabDriver.unhealthyFaultPath(host), contents: Data((target + "\n").utf8))
            }
            nics[h.name] = nic
            before[h.name] = try LabFleet.identity(of: host, nic: nic)
        }
        Terminal.note("lab: \(topology.hosts.count) lab hosts running \(before.values.first?.os ?? "?")")
        return Fleet(images: images, nics: nics, before: before)
    }

    struct Conversion {
        var rollout: Rollout
        /// Unix time the rollout was created and the whole datacenter ended converted.
        var started: Double
        var ended: Double
        var hosts: [String: HostResult]
        var events: [String]

        struct HostResult {
            var os: String
            var profileOK: Bool
            var differences: [String]
            var phase: String
            var attempt: Int
            /// Boots the lab firmware recorded for the host (a conversion: power on, staging, target).
            var boots: Int
        }

        var converted: Int { rollout.hosts.filter { $0.phase == .succeeded }.count }
        var failed: Int { rollout.hosts.filter { $0.phase == .failed }.count }
        var reverted: Int { rollout.hosts.filter { $0.phase == .reverted }.count }
    }

    static let rolloutID = "lab-convert"

    /// Creates the rollout of every host (as an operator would, with `shoal rollout create`).
    /// Returns when it was created (Unix time).
    func createRollout(_ fleet: Fleet, _ options: ConvertOptions) throws -> Double {
        let staging = try BundleFile(path: fleet.images.baseBundle).bundleID.hex
        let target = try BundleFile(path: fleet.images.targetBundle).bundleID.hex
        let policyPath = work + "/policy.json"
        try JSONEncoder().encode(options.policy).write(to: URL(fileURLWithPath: policyPath))
        let started = Date().timeIntervalSince1970
        try operatorCommand(["rollout", "create", Self.rolloutID, "--staging-bundle", staging, "--target-bundle", target, "--hosts", "all",
                             "--policy", policyPath, "--json"], output: "rollout-create")
        Terminal.note("rollout \(Self.rolloutID): \(topology.hosts.count) hosts convert in waves as their data becomes local")
        return started
    }

    /// Follows the rollout to its end; kills and restarts the coordinator once when asked.
    func followRollout(_ fleet: Fleet, _ options: ConvertOptions, started: Double) throws -> Conversion {
        let id = Self.rolloutID
        var events: [String] = []
        var killed = false
        var last: Rollout?
        var lastLine = ""
        while true {
            let now = Date().timeIntervalSince1970
            if let after = options.killCoordinatorAfter, !killed, now - started >= after, let p = coordinatorProcess {
                killed = true
                p.kill()
                _ = p.waitUntilExit(timeout: 5)
                events.append(String(format: "%.2f s after the rollout started: kill -9 the coordinator", now - started))
                try startCoordinator()
                events.append(String(format: "%.2f s: coordinator restarted on its state", Date().timeIntervalSince1970 - started))
                usleep(300_000)
            }
            guard now - started < options.timeout else {
                throw CLIError(message: "the rollout did not finish within \(Int(options.timeout)) s (\(last.map(rolloutSummary) ?? "no status"); logs in \(work))")
            }
            if let p = coordinatorProcess, !p.isRunning {
                throw CLIError(message: "the coordinator exited (\(p.termination.map(\.description) ?? "?")); see \(work)/coordinator*.log")
            }
            if let data = try? operatorCommand(["rollout", "status", id, "--json"], output: "rollout-status"),
               let list = try? JSONDecoder().decode([Rollout].self, from: data), let r = list.first {
                last = r
                let line = rolloutSummary(r)
                if line != lastLine {
                    if Terminal.isInteractive { Terminal.note(String(format: "%.1f s: ", now - started) + line) }
                    lastLine = line
                }
                if r.isSettled { break }
            }
            usleep(500_000)
        }
        let rollout = last!
        let ended = rollout.waves.compactMap(\.endedAt).max() ?? Date().timeIntervalSince1970
        var hosts: [String: Conversion.HostResult] = [:]
        for h in rollout.hosts {
            let host = LabHost(directory: fleet.directory(work, h.host))
            let nic = fleet.nics[h.host]!
            let boots = host.bootLog().count
            if let after = try? LabFleet.identity(of: host, nic: nic), let before = fleet.before[h.host] {
                let diff = LabFleet.differences(before: before, after: after)
                hosts[h.host] = .init(os: after.os, profileOK: diff.isEmpty, differences: diff, phase: h.phase.rawValue, attempt: h.attempt, boots: boots)
            } else {
                hosts[h.host] = .init(os: "?", profileOK: false, differences: ["cannot read the host's disks"], phase: h.phase.rawValue,
                                      attempt: h.attempt, boots: boots)
            }
        }
        return Conversion(rollout: rollout, started: started, ended: ended, hosts: hosts, events: events)
    }

    /// Runs `shoal ARGS --coordinator … --tls operator` at the origin; returns its standard output.
    @discardableResult
    func operatorCommand(_ args: [String], output name: String) throws -> Data {
        let out = work + "/\(name).out", err = work + "/\(name).err"
        let p = try lab.spawn(in: topology.origin.name, executable: shoal, arguments: args + [
            "--coordinator", coordinatorAddress, "--tls", tlsDir("operator"),
        ], environment: nil, stdout: out, stderr: err)
        _ = p.waitUntilExit(timeout: 30)
        guard p.exitStatus == 0 else {
            let why = (try? String(contentsOfFile: err, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            throw CLIError(message: "shoal \(args.prefix(2).joined(separator: " ")) failed: \(why)")
        }
        return FileManager.default.contents(atPath: out) ?? Data()
    }
}

extension LabRunner.Conversion {
    /// The report's `conversion` object; times are seconds from `origin` (the lab's start).
    /// Seconds from each host's order to its outcome (its own conversion steps, reboots included).
    var hostSeconds: [String: Double] {
        var out: [String: Double] = [:]
        for h in rollout.hosts { if let a = h.orderedAt, let b = h.finishedAt { out[h.host] = b - a } }
        return out
    }

    var medianHostSeconds: Double {
        let v = hostSeconds.values.sorted()
        return v.isEmpty ? 0 : v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
    }

    /// What no rollout of these waves can beat: the distribution's lower bound, then each wave
    /// taking one median host conversion, with the policy's soak between waves.
    func floorSeconds(bound: Double) -> Double {
        let n = Double(rollout.waves.count)
        return bound + n * medianHostSeconds + max(0, n - 1) * rollout.spec.policy.soakSeconds
    }

    func json(origin: Double, distributionSeconds: Double, bound: Double) -> [String: Any] {
        let waves: [[String: Any]] = rollout.waves.map { w in
            [
                "index": w.index, "hosts": w.hosts, "started": w.startedAt - origin, "ended": w.endedAt.map { $0 - origin } ?? NSNull(),
                "converted": w.converted, "failed": w.failed, "reverted": w.reverted,
            ]
        }
        return [
            "rollout": rollout.spec.id, "status": rollout.status.rawValue, "halt_reason": rollout.haltReason ?? NSNull(),
            "waves": waves, "hosts_converted": converted, "hosts_failed": failed, "hosts_reverted": reverted,
            "distribution_seconds": distributionSeconds, "rollout_seconds": ended - started,
            "total_seconds": ended - origin, "events": events + rollout.events,
            "host_seconds_median": medianHostSeconds, "floor_seconds": floorSeconds(bound: bound),
            "ratio_to_floor": (ended - origin) / max(floorSeconds(bound: bound), 1e-9),
        ]
    }

    func printTable(origin: Double, bound: Double) {
        print(String(format: "conversion: %@ — %d converted, %d failed, %d reverted; whole datacenter %.2f s from the start (rollout %.2f s)",
                     rollout.status.rawValue, converted, failed, reverted, ended - origin, ended - started))
        print(String(format: "floor: %.2f s = distribution bound %.2f s + %d waves × %.2f s (median host conversion) + soaks → %.2f× the floor",
                     floorSeconds(bound: bound), bound, rollout.waves.count, medianHostSeconds, (ended - origin) / max(floorSeconds(bound: bound), 1e-9)))
        if let why = rollout.haltReason { print("halted: \(why)") }
        print("wave  hosts  start (s)  end (s)  converted  failed  reverted")
        for w in rollout.waves {
            let end = w.endedAt.map { String(format: "%.2f", $0 - origin) } ?? "-"
            print(String(format: "%-5d %-6d %-10.2f ", w.index, w.hosts.count, w.startedAt - origin)
                  + end.padding(toLength: 9, withPad: " ", startingAt: 0) + String(format: "%-10d %-7d %d", w.converted, w.failed, w.reverted))
        }
        print("host      phase       seconds  os                    profile")
        for name in hosts.keys.sorted() {
            let h = hosts[name]!
            func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
            print(pad(name, 10) + pad(h.phase, 12) + pad(hostSeconds[name].map { String(format: "%.2f", $0) } ?? "-", 9) + pad(h.os, 22)
                  + (h.profileOK ? "same" : "DIFFERENT: " + h.differences.joined(separator: "; ")))
        }
        for e in events { print("event: \(e)") }
    }
}
