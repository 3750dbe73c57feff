import Foundation
import Glibc
import ShoalTestKit
import Testing

/// The mission end to end (`shoal lab run --convert`): lab hosts with emulated disks and
/// firmware, both bundles distributed, then a rollout converts the datacenter in waves — real
/// processes, namespaces when root (loopback otherwise).
@Suite(.serialized) struct LabConvertTests {
    struct Run {
        var status: Int32
        var output: String
        var report: [String: Any]
        var conversion: [String: Any] { report["conversion"] as? [String: Any] ?? [:] }
        var hosts: [String: [String: Any]] { report["hosts"] as? [String: [String: Any]] ?? [:] }
        var waves: [[String: Any]] { conversion["waves"] as? [[String: Any]] ?? [] }
    }

    func runConvert(_ extra: [String], policy: String? = nil) throws -> Run {
        try TemporaryDirectory.with { dir in
            let report = dir.file("report.json")
            var args = ["lab", "run", LabTests.topology, "--convert", "--report", report, "--timeout", "240"] + extra
            if let policy {
                try policy.write(toFile: dir.file("policy.json"), atomically: true, encoding: .utf8)
                args += ["--policy", dir.file("policy.json")]
            }
            let r = try ShoalTool.run(args)
            let data = FileManager.default.contents(atPath: report) ?? Data("{}".utf8)
            let json = (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
            return Run(status: r.status, output: r.stdout + "\n" + r.stderr, report: json)
        }
    }

    func expectConverted(_ run: Run, _ names: [String]) {
        for name in names {
            let h = run.hosts[name] ?? [:]
            #expect(h["os"] as? String == "Shoal Lab Beta 1", "\(name): \(h)")
            #expect(h["profile_ok"] as? Bool == true, "\(name): \(h)")
            #expect(h["image_ok"] as? Bool == true, "\(name): \(h)")
            #expect(h["phase"] as? String == "succeeded", "\(name): \(h)")
        }
    }

    @Test func theWholeDatacenterConvertsInWavesKeepingEveryHostsIdentity() throws {
        let run = try runConvert([])
        #expect(run.status == 0, "\(run.output)")
        expectConverted(run, ["a1", "a2", "b1", "b2"])
        #expect(run.conversion["hosts_converted"] as? Int == 4)
        #expect(run.conversion["hosts_failed"] as? Int == 0 && run.conversion["hosts_reverted"] as? Int == 0)
        // Waves as the policy allows: a canary per site first, never more than half of a
        // two-host site at once, a soak of 1 s between waves. Which host is a site's canary, and
        // whether both sites' canaries share a wave, follows the order in which data arrived.
        let waveHosts = run.waves.map { $0["hosts"] as? [String] ?? [] }
        #expect(waveHosts.flatMap { $0 }.sorted() == ["a1", "a2", "b1", "b2"], "\(run.waves)")
        #expect((2...4).contains(run.waves.count), "\(run.waves)")
        for hosts in waveHosts { #expect(Set(hosts.map { $0.prefix(1) }).count == hosts.count, "one host per site and wave: \(hosts)") }
        for (k, w) in run.waves.enumerated() {
            #expect(w["converted"] as? Int == waveHosts[k].count && w["failed"] as? Int == 0 && w["reverted"] as? Int == 0)
            if k > 0 {
                let previousEnd = run.waves[k - 1]["ended"] as? Double ?? 99, start = w["started"] as? Double ?? 0
                #expect(start >= previousEnd + 1 - 0.01, "soak of 1 s between waves")
            }
        }
        // A host is ordered only once its own data is local: each wave starts after every one
        // of its hosts had both bundles (by the host's clock), and the datacenter ends converted
        // after the distribution.
        for w in run.waves {
            let started = w["started"] as? Double ?? 0
            for host in w["hosts"] as? [String] ?? [] {
                let local = run.hosts[host]?["seconds"] as? Double ?? 999
                #expect(local <= started + 0.05, "\(host) was ordered at \(started) s, its data was local at \(local) s")
            }
        }
        let distribution = run.report["completion_seconds"] as? Double ?? 0
        #expect((run.conversion["total_seconds"] as? Double ?? 0) > distribution)
        // Both bundles entered each site exactly once.
        for (name, site) in run.report["sites"] as? [String: [String: Any]] ?? [:] {
            #expect(site["chunk_copies_in"] as? Double == 1.0, "\(name): \(site)")
        }
    }

    @Test func aCoordinatorKilledMidRolloutResumesItWithoutConvertingAnyHostTwice() throws {
        let run = try runConvert(["--kill-coordinator-after", "1.5"])
        #expect(run.status == 0, "\(run.output)")
        let events = run.conversion["events"] as? [String] ?? []
        #expect(events.contains { $0.contains("kill -9 the coordinator") }, "\(events)")
        expectConverted(run, ["a1", "a2", "b1", "b2"])
        for (name, h) in run.hosts {
            // One operation each (attempt 1), and the boots of exactly one conversion:
            // power on, the staging OS, the target.
            #expect(h["attempt"] as? Int == 1, "\(name): \(h)")
            #expect(h["boots"] as? Int == 3, "\(name): \(h)")
        }
    }

    @Test func aHostFailingItsHealthCheckHaltsTheRolloutAndIsReverted() throws {
        // Both b hosts' targets never get healthy, so b's canary (whichever host had its data
        // first) fails. The policy reverts failed hosts and allows no failure.
        let run = try runConvert(["--fail-host", "b1", "--fail-host", "b2"], policy: """
            {"soakSeconds": 1, "maxUnavailablePerSite": "50%", "maxUnavailablePerRack": "50%", "onFailure": "revert",
             "failureBudget": 0, "minHostsBeforeJudging": 1, "agentHealthTimeoutSeconds": 3, "agentHealthPollSeconds": 0.5,
             "healthDeadlineSeconds": 120}
            """)
        #expect(run.status != 0, "a halted rollout is not a converted datacenter")
        #expect(run.output.contains("the rollout halted"), "\(run.output)")
        #expect(run.conversion["status"] as? String == "halted", "\(run.conversion)")
        #expect(run.conversion["hosts_reverted"] as? Int == 1)
        let phases = run.hosts.mapValues { $0["phase"] as? String ?? "?" }
        let reverted = phases.filter { $0.value == "reverted" }.keys.sorted()
        let converted = phases.filter { $0.value == "succeeded" }.keys.sorted()
        let untouched = phases.filter { $0.value == "ready" }.keys.sorted()
        // b's canary failed and was reverted; a's hosts converted meanwhile (one, or both when
        // b's data arrived after a's first wave); nothing was ordered after the halt.
        #expect(reverted.count == 1 && reverted.allSatisfy { $0.hasPrefix("b") }, "\(phases)")
        #expect((0...2).contains(converted.count) && converted.allSatisfy { $0.hasPrefix("a") }, "\(phases)")
        #expect(untouched.count == 3 - converted.count && untouched.contains { $0.hasPrefix("b") }, "\(phases)")
        if let canary = reverted.first {
            #expect((run.conversion["halt_reason"] as? String ?? "").contains(canary), "\(run.conversion)")
            let h = run.hosts[canary] ?? [:]
            #expect(h["os"] as? String == "Shoal Lab Alpha 1" && h["profile_ok"] as? Bool == true, "\(h)")
        }
        expectConverted(run, converted)
        for name in untouched { #expect(run.hosts[name]?["os"] as? String == "Shoal Lab Alpha 1" && run.hosts[name]?["boots"] as? Int == 1) }
    }
}
