import Foundation
import Glibc
import ShoalTestKit
import Testing

/// Real multi-process distributions on the small topology: network namespaces with HTB-shaped
/// links when root, loopback addresses otherwise (the report says which).
@Suite(.serialized) struct LabTests {
    static let topology: String = {
        let file = URL(fileURLWithPath: #filePath)
        return file.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("topology/small.yaml").path
    }()

    func runLab(_ extra: [String], topologyText: String? = nil) throws -> [String: Any] {
        try TemporaryDirectory.with { dir in
            let report = dir.file("report.json")
            var topology = LabTests.topology
            if let topologyText {
                topology = dir.file("topology.yaml")
                try topologyText.write(toFile: topology, atomically: true, encoding: .utf8)
            }
            let r = try ShoalTool.run(["lab", "run", topology, "--report", report, "--timeout", "60"] + extra)
            #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
            let data = try Data(contentsOf: URL(fileURLWithPath: report))
            return try JSONSerialization.jsonObject(with: data) as! [String: Any]
        }
    }

    func hosts(_ report: [String: Any]) -> [String: [String: Any]] { report["hosts"] as! [String: [String: Any]] }
    func sites(_ report: [String: Any]) -> [String: [String: Any]] { report["sites"] as! [String: [String: Any]] }

    /// No namespace of this run remains (other suites may run labs of their own meanwhile).
    func expectNothingLeftBehind(_ report: [String: Any]) throws {
        guard let runID = report["run_id"] as? String, !runID.isEmpty else { return }
        let namespaces = (try? ChildProcess.sh("ip netns list")) ?? ""
        #expect(!namespaces.contains(runID), "\(namespaces)")
    }

    @Test func everyHostGetsTheExactImageAndEachChunkEntersEachSiteOnce() throws {
        let report = try runLab([])
        for (name, host) in hosts(report) { #expect(host["image_ok"] as? Bool == true, "\(name)") }
        for (name, site) in sites(report) {
            // The nodes' own count of chunk bytes that came from outside the site: exactly one bundle.
            #expect(site["chunk_copies_in"] as? Double == 1.0, "\(name): \(site)")
        }
        #expect((report["origin_egress_copies"] as? Double ?? 9) <= 1.5)
        #expect((report["ratio_to_bound"] as? Double ?? 0) >= 1.0)  // nothing beats physics
        try expectNothingLeftBehind(report)
    }

    /// The small topology with slower site WAN links (or operator caps on them), so that a
    /// distribution that ignored them would finish in well under the bound.
    static func slowWAN(_ site: String) -> String {
        """
        origin: { uplink: 200Mbit/s, seeds: [seed] }
        sites:
          - { name: a, \(site), host_link: 400Mbit/s }
          - { name: b, \(site), host_link: 400Mbit/s }
        hosts: [{ name: a1, site: a }, { name: a2, site: a }, { name: b1, site: b }, { name: b2, site: b }]
        """
    }

    @Test func onLoopbackThePeersEnforceTheLinkRatesThemselves() throws {
        let report = try runLab(["--loopback"], topologyText: Self.slowWAN("wan: 25Mbit/s"))
        #expect(report["mode"] as? String == "loopback")
        #expect(report["rate_enforcement"] as? String == "application" && report["rates_enforced"] as? Bool == true)
        for (name, host) in hosts(report) { #expect(host["image_ok"] as? Bool == true, "\(name)") }
        // Unshaped loopback moves 16 MiB in a fraction of the 5.4 s that 25 Mbit/s WAN links allow.
        let bound = report["bound_seconds"] as? Double ?? 0
        #expect(bound > 5)
        #expect((report["ratio_to_bound"] as? Double ?? 0) >= 0.95, "\(report)")
    }

    @Test func operatorCapsOnTheWANAreHonoured() throws {
        // 100 Mbit/s links, capped at 25 Mbit/s for Shoal: the capped bound is 4× the link bound.
        let report = try runLab([], topologyText: Self.slowWAN("wan: 100Mbit/s, wan_limit: 25Mbit/s"))
        for (name, host) in hosts(report) { #expect(host["image_ok"] as? Bool == true, "\(name)") }
        #expect((report["bound_seconds"] as? Double ?? 0) > 5)
        #expect((report["ratio_to_bound"] as? Double ?? 0) >= 0.95, "\(report)")
        for (name, site) in sites(report) { #expect(site["chunk_copies_in"] as? Double == 1.0, "\(name): \(site)") }
        try expectNothingLeftBehind(report)
    }

    @Test func theSwarmRunsOverIPv6() throws {
        // Dual-stack namespaces; every process listens on and dials IPv6 addresses only.
        guard getuid() == 0 else { return }  // namespaces need root; the loopback lab is IPv4 only
        let report = try runLab(["--ipv6"])
        #expect(report["ip_version"] as? Int == 6 && report["mode"] as? String == "netns")
        for (name, host) in hosts(report) { #expect(host["image_ok"] as? Bool == true, "\(name)") }
        for (name, site) in sites(report) { #expect(site["chunk_copies_in"] as? Double == 1.0, "\(name): \(site)") }
        try expectNothingLeftBehind(report)
    }

    @Test func aria2cRunsSideBySideOnTheSameLab() throws {
        guard getuid() == 0 else { return }  // the comparison needs namespaces (interface counters)
        let report = try runLab(["--compare-aria2c"])
        let aria = (report["comparison"] as? [String: Any])?["aria2c"] as? [String: Any] ?? [:]
        let hosts = aria["hosts"] as? [String: [String: Any]] ?? [:]
        #expect(hosts.count == 4 && hosts.values.allSatisfy { $0["file_ok"] as? Bool == true }, "\(aria)")
        #expect((aria["completion_seconds"] as? Double ?? 0) > 0 && (aria["ratio_to_bound"] as? Double ?? 0) >= 1.0, "\(aria)")
        let sites = aria["sites"] as? [String: [String: Any]] ?? [:]
        // Measured at the same interfaces as Shoal's: at least one copy entered each site.
        #expect(sites.count == 2 && sites.values.allSatisfy { ($0["wan_in_copies"] as? Double ?? 0) >= 1.0 }, "\(sites)")
        try expectNothingLeftBehind(report)
    }

    @Test func aCorruptingPeerIsCaughtBannedAndReported() throws {
        let report = try runLab(["--corrupt", "a2"])
        for (name, host) in hosts(report) where name != "a2" { #expect(host["image_ok"] as? Bool == true, "\(name)") }
        let reports = report["bad_peer_reports"] as? [String] ?? []
        #expect(!reports.isEmpty && reports.allSatisfy { $0.contains("reports a2") }, "\(reports)")
        try expectNothingLeftBehind(report)
    }

    @Test func aPeerKilledAndRestartedFinishes() throws {
        // b1 dies mid-transfer (kill -9), restarts on its store and resume log, and finishes; the
        // others finish too (its WAN chunks move to its site-mates under a new epoch).
        let report = try runLab(["--kill-peer", "b1", "--kill-after", "1"])
        for (name, host) in hosts(report) { #expect(host["image_ok"] as? Bool == true, "\(name)") }
        let events = report["events"] as? [String] ?? []
        #expect(events.contains { $0.contains("kill -9 b1") } && events.contains { $0.contains("restarted b1") }, "\(events)")
        try expectNothingLeftBehind(report)
    }

    @Test func theSwarmFinishesWhenTheSeedDiesAfterEverySiteHasACopy() throws {
        let report = try runLab(["--kill-seed"])
        for (name, host) in hosts(report) { #expect(host["image_ok"] as? Bool == true, "\(name)") }
        let events = report["events"] as? [String] ?? []
        #expect(events.contains { $0.contains("kill -9 the seed") }, "\(events)")
        try expectNothingLeftBehind(report)
    }
}
