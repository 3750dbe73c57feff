import Foundation
import ShoalBundle
import ShoalCoordinator
import ShoalCrypto
import ShoalTLS
import ShoalTopology
import ShoalWire
import Testing

struct TrackerTests {
    static let yaml = """
        origin: { name: origin, uplink: 100Mbit, seeds: [seed] }
        sites:
          - { name: a, wan: 50Mbit, host_link: 100Mbit }
          - { name: b, wan: 50Mbit, host_link: 100Mbit }
        hosts:
          - { name: a1, site: a }
          - { name: a2, site: a }
          - { name: b1, site: b }
        """

    func tracker() throws -> Tracker { Tracker(topology: try Topology.parse(yaml: Self.yaml), liveTimeout: 10) }

    func manifestB64(name: String = "x") throws -> (String, String) {
        let m = Manifest(flags: [], name: name, createdAt: 0, imageSize: 8192, regionSize: 4096, compressionLevel: 3,
                         imageDigest: SHA256.hash([1]), frames: [
                            .init(offset: 32, storedLength: 10, decodedLength: 4096, storedDigest: SHA256.hash([2]), decodedDigest: SHA256.hash([3])),
                            .init(offset: 42, storedLength: 10, decodedLength: 4096, storedDigest: SHA256.hash([4]), decodedDigest: SHA256.hash([5])),
                         ])
        let signed = try SignedManifest(manifest: m, signingKey: nil)
        return (Data(signed.encodedPayload()).base64EncodedString(), signed.bundleID.hex)
    }

    let op = FleetIdentity(host: "ops", site: "origin", role: .operator_)

    func announce(_ t: inout Tracker, _ host: String, _ site: String, at now: Double, role: FleetIdentity.Role = .peer) -> ControlResponse {
        t.handle(.announce(listenPort: 7701, listenAddress: nil, bundles: []), from: FleetIdentity(host: host, site: site, role: role),
                 remoteAddress: "10.0.0.\(host.hashValue & 0x7F)", now: now)
    }

    @Test func announcesMustMatchTopologyAndCertificate() throws {
        var t = try tracker()
        guard case .jobs = announce(&t, "a1", "a", at: 0) else { Issue.record("a1 refused"); return }
        guard case .refused(let why) = announce(&t, "a1", "b", at: 0) else { Issue.record("a1 claiming site b accepted"); return }
        #expect(why.contains("site"))
        guard case .refused = announce(&t, "zz", "a", at: 0) else { Issue.record("unknown host accepted"); return }
        guard case .refused = t.handle(.announce(listenPort: 1, listenAddress: nil, bundles: []), from: op, remoteAddress: nil, now: 0) else {
            Issue.record("an operator announced"); return
        }
    }

    @Test func publishIsForOperatorsAndTargetsBySelector() throws {
        var t = try tracker()
        let (b64, id) = try manifestB64()
        guard case .refused = t.handle(.publish(manifest: b64, seedHost: "", selector: "all"), from: FleetIdentity(host: "a1", site: "a", role: .peer), remoteAddress: nil, now: 0) else {
            Issue.record("a peer published"); return
        }
        guard case .published(let got, let hosts) = t.handle(.publish(manifest: b64, seedHost: "", selector: "site=a"), from: op, remoteAddress: nil, now: 0) else {
            Issue.record("publish refused"); return
        }
        #expect(got == id && hosts == ["a1", "a2"])
        guard case .refused = t.handle(.publish(manifest: "!!", seedHost: "", selector: "all"), from: op, remoteAddress: nil, now: 0) else {
            Issue.record("garbage manifest accepted"); return
        }
    }

    @Test func jobsCarryPeersSeedsAndAPlanWhoseEpochMovesWhenAHostDies() throws {
        var t = try tracker()
        let (b64, id) = try manifestB64()
        _ = t.handle(.publish(manifest: b64, seedHost: "", selector: "all"), from: op, remoteAddress: nil, now: 0)
        _ = announce(&t, "seed", "origin", at: 0, role: .seed)
        _ = announce(&t, "a2", "a", at: 0)
        _ = announce(&t, "b1", "b", at: 0)
        guard case .jobs(let jobs) = announce(&t, "a1", "a", at: 1), let job = jobs.first else { Issue.record("no job"); return }
        #expect(job.bundleID == id)
        #expect(job.seeds.map(\.host) == ["seed"])
        #expect(Set(job.peers.map(\.host)) == ["a2", "b1"])
        #expect(job.plan.sites == ["a": ["a1", "a2"], "b": ["b1"]])
        let epoch = job.plan.epoch
        // b1 stops announcing: after the live timeout it leaves the plan and the epoch moves.
        _ = announce(&t, "a2", "a", at: 15)
        _ = announce(&t, "seed", "origin", at: 15, role: .seed)
        guard case .jobs(let later) = announce(&t, "a1", "a", at: 15), let job2 = later.first else { Issue.record("no job"); return }
        #expect(job2.plan.sites == ["a": ["a1", "a2"], "b": ["b1"]])
        #expect(job2.plan.down == ["b1"])
        #expect(job2.plan.epoch > epoch)
        #expect(!job2.peers.map(\.host).contains("b1"))
        // Nothing changes: the epoch stays.
        _ = announce(&t, "a2", "a", at: 16)
        guard case .jobs(let again) = announce(&t, "a1", "a", at: 16), let job3 = again.first else { Issue.record("no job"); return }
        #expect(job3.plan.epoch == job2.plan.epoch)
    }

    @Test func aReportedPeerIsBannedForThatBundle() throws {
        var t = try tracker()
        let (b64, id) = try manifestB64()
        _ = t.handle(.publish(manifest: b64, seedHost: "", selector: "all"), from: op, remoteAddress: nil, now: 0)
        for (h, s) in [("a1", "a"), ("a2", "a"), ("b1", "b")] { _ = announce(&t, h, s, at: 0) }
        _ = t.handle(.reportBadPeer(bundleID: id, peer: "a2", reason: "chunk 1 corrupt"), from: FleetIdentity(host: "a1", site: "a", role: .peer), remoteAddress: nil, now: 1)
        guard case .jobs(let jobs) = announce(&t, "b1", "b", at: 1), let job = jobs.first else { Issue.record("no job"); return }
        #expect(job.banned == ["a2"])
        #expect(!job.peers.map(\.host).contains("a2"))
        #expect(job.plan.down == ["a2"])
        guard case .status(let report) = t.handle(.status, from: op, remoteAddress: nil, now: 1) else { return }
        #expect(report.badPeerReports.count == 1)
    }
}

struct TrackerManifestTests {
    @Test func theManifestTravelsOnceAndAgainAfterAHostLosesIt() throws {
        var t = try TrackerTests().tracker()
        let (b64, id) = try TrackerTests().manifestB64()
        let op = FleetIdentity(host: "ops", site: "origin", role: .operator_)
        let a1 = FleetIdentity(host: "a1", site: "a", role: .peer)
        _ = t.handle(.publish(manifest: b64, seedHost: "", selector: "all"), from: op, remoteAddress: nil, now: 0)
        func job(_ bundles: [BundleProgress]) -> Job? {
            guard case .jobs(let jobs) = t.handle(.announce(listenPort: 1, listenAddress: "10.0.0.1", bundles: bundles), from: a1, remoteAddress: nil, now: 1) else { return nil }
            return jobs.first
        }
        #expect(job([])?.manifest == b64)
        let progress = BundleProgress(bundleID: id, have: 1, total: 2, bytes: 10, complete: false, staged: false)
        #expect(job([progress])?.manifest == "")
        #expect(job([])?.manifest == b64)  // restarted without it: sent again
    }
}
