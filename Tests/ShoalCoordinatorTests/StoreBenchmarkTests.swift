import Foundation
import ShoalCoordinator
import ShoalTestKit
import ShoalTLS
import ShoalTopology
import ShoalWire
import Testing

/// Announces per second that `Tracker.handle` + `CoordinatorStore.save` sustain in-process over a
/// 10,000-host fleet, and the database's size. Prints figures, asserts nothing about time. Run:
///
///     swift build -c release && SHOAL_STORE_BENCH=1 swift test -c release --filter StoreBenchmarkTests
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["SHOAL_STORE_BENCH"] == "1"))
struct StoreBenchmarkTests {
    static let sites = 100
    static let hostsPerSite = 100

    /// 100 sites × 100 hosts, built in code.
    static func topology() -> Topology {
        let rate = Rate.mbit(1000)
        let sites = (0..<Self.sites).map { Site(name: "s\($0)", wanUp: rate, wanDown: rate) }
        let hosts = (0..<Self.sites).flatMap { s in (0..<Self.hostsPerSite).map { Host(name: "s\(s)-h\($0)", site: "s\(s)", up: rate, down: rate) } }
        return Topology(origin: Origin(uplink: rate, seeds: ["seed"]), sites: sites, hosts: hosts)
    }

    static func identities(_ topology: Topology) -> [FleetIdentity] {
        topology.hosts.map { FleetIdentity(host: $0.name, site: $0.site, role: .peer) }
    }

    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    func announce(_ t: inout Tracker, _ id: FleetIdentity, _ i: Int, now: Double, bundles: [BundleProgress] = []) {
        _ = t.handle(.announce(listenPort: 7701, listenAddress: "10.\(i >> 16 & 255).\(i >> 8 & 255).\(i & 255)", bundles: bundles),
                     from: id, remoteAddress: nil, now: now)
    }

    @Test func announcesPerSecondOverTenThousandHosts() throws {
        let topology = Self.topology()
        let ids = Self.identities(topology)
        let n = ids.count
        var join: [Double] = [], noStore: [Double] = [], steadyEach: [Double] = [], steadyBatched: [Double] = [], withBundle: [Double] = [], json: [Double] = []
        var size: UInt64 = 0
        let bundleAnnounces = 1000
        for run in 0..<3 {
            let dir = TemporaryDirectory("store-bench")
            defer { dir.remove() }
            let store = try SQLiteCoordinatorStore(path: dir.file("c.db"))
            var t = Tracker(topology: topology, liveTimeout: 1e9)
            let clock = ContinuousClock()

            // 1. Every host's first announce: a new host, saved before the answer (one transaction each).
            var t0 = clock.now
            for (i, id) in ids.enumerated() {
                announce(&t, id, i, now: 1000)
                try store.save(t.takeChanges(), of: t.state)
            }
            join.append(Double(n) / (clock.now - t0).seconds)

            // The tracker alone, for reference: re-announces, changes taken, nothing saved.
            t0 = clock.now
            for (i, id) in ids.enumerated() {
                announce(&t, id, i, now: 1500)
                _ = t.takeChanges()
            }
            noStore.append(Double(n) / (clock.now - t0).seconds)
            try store.save(Tracker.Changes.everything(in: t.state), of: t.state)

            // 2. Re-announces that only move lastSeen, each saved at once (the worst case).
            t0 = clock.now
            for (i, id) in ids.enumerated() {
                announce(&t, id, i, now: 2000)
                try store.save(t.takeChanges(), of: t.state)
            }
            steadyEach.append(Double(n) / (clock.now - t0).seconds)

            // 3. The same, as the server does it: collected, flushed in one transaction.
            t0 = clock.now
            var pending = Tracker.Changes()
            for (i, id) in ids.enumerated() {
                announce(&t, id, i, now: 3000)
                pending.formUnion(t.takeChanges())
            }
            try store.save(pending, of: t.state)
            steadyBatched.append(Double(n) / (clock.now - t0).seconds)

            // 4. One bundle published to all 10,000: announces carry progress (saved at once) and
            //    each answer lists the bundle's live peers (jobs(for:) is O(targets)).
            let (manifest, bundleID) = try ChangeTrackingTests.manifest("bench")
            _ = t.handle(.publish(manifest: manifest, seedHost: "seed", selector: "all"),
                         from: FleetIdentity(host: "ops", site: "origin", role: .operator_), remoteAddress: nil, now: 3500)
            try store.save(t.takeChanges(), of: t.state)
            t0 = clock.now
            for k in 0..<bundleAnnounces {
                let i = (k * 7919) % n
                announce(&t, ids[i], i, now: 4000 + Double(k) / 1000,
                         bundles: [BundleProgress(bundleID: bundleID, have: k % 64, total: 64, bytes: UInt64(k) << 20, complete: false, staged: false)])
                try store.save(t.takeChanges(), of: t.state)
            }
            withBundle.append(Double(bundleAnnounces) / (clock.now - t0).seconds)

            // For comparison: the old way, the whole state as one JSON file per save.
            t0 = clock.now
            let data = try JSONEncoder().encode(t.state)
            try data.write(to: URL(fileURLWithPath: dir.file("state.json")), options: .atomic)
            json.append((clock.now - t0).seconds * 1000)

            #expect(try store.load() == t.state)
            try store.close()
            size = (try FileManager.default.attributesOfItem(atPath: dir.file("c.db"))[.size] as? NSNumber)?.uint64Value ?? 0
            print("store bench run \(run + 1): join \(Int(join.last!))/s, tracker alone \(Int(noStore.last!))/s, lastSeen each \(Int(steadyEach.last!))/s, "
                  + "lastSeen batched \(Int(steadyBatched.last!))/s, with a 10k-target bundle \(Int(withBundle.last!))/s, "
                  + "JSON whole-state save \(String(format: "%.1f", json.last!)) ms (\(data.count) bytes), database \(size) bytes")
        }
        print("""
            store bench (\(n) hosts, median of 3): \
            new-host announces saved one by one \(Int(median(join)))/s; \
            announces through the tracker alone, no store \(Int(median(noStore)))/s; \
            lastSeen-only announces saved one by one \(Int(median(steadyEach)))/s; \
            lastSeen-only announces flushed in one transaction \(Int(median(steadyBatched)))/s; \
            progress announces with one bundle targeting all hosts, saved one by one \(Int(median(withBundle)))/s; \
            old whole-state JSON save \(String(format: "%.1f", median(json))) ms each; \
            SQLite file \(size) bytes after close
            """)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
