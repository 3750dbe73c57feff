import Foundation
import ShoalBundle
import ShoalCoordinator
import ShoalCrypto
import ShoalTestKit
import ShoalTLS
import ShoalTopology
import ShoalWire
import Testing

/// Every request records exactly the rows it changed (`Tracker.Changes`), so a store that writes
/// only those rows ends up with the state the tracker has in memory.
struct ChangeTrackingTests {
    let ops = FleetIdentity(host: "ops", site: "origin", role: .operator_)
    let a1 = FleetIdentity(host: "a1", site: "a", role: .peer)
    let a2 = FleetIdentity(host: "a2", site: "a", role: .peer)

    /// A signed manifest (base64) and its bundle id; `name` makes a different bundle.
    static func manifest(_ name: String) throws -> (String, String) {
        let m = Manifest(flags: [], name: name, createdAt: 0, imageSize: 4096, regionSize: 4096, compressionLevel: 3,
                         imageDigest: SHA256.hash(Array(name.utf8)), frames: [
                            .init(offset: 32, storedLength: 10, decodedLength: 4096, storedDigest: SHA256.hash([2]), decodedDigest: SHA256.hash([3])),
                         ])
        let signed = try SignedManifest(manifest: m, signingKey: nil)
        return (Data(signed.encodedPayload()).base64EncodedString(), signed.bundleID.hex)
    }

    func announce(_ t: inout Tracker, _ id: FleetIdentity, at now: Double, bundles: [BundleProgress] = [],
                  operation: OperationProgress? = nil) -> ControlResponse {
        t.handle(.announce(listenPort: 7701, listenAddress: "10.0.0.1", bundles: bundles, operation: operation), from: id, remoteAddress: nil, now: now)
    }

    func changes(_ hosts: Set<String> = [], beyond: Set<String> = [], bundles: Set<String> = [], orders: Set<String> = [],
                 bans: Set<String> = [], epochs: Set<String> = [], badPeers: Int = 0, documents: Set<Tracker.DocumentKey> = []) -> Tracker.Changes {
        var c = Tracker.Changes()
        c.hosts = hosts
        c.hostsBeyondLastSeen = beyond
        c.bundles = bundles
        c.orders = orders
        c.bans = bans
        c.epochs = epochs
        c.badPeerReportsAppended = badPeers
        c.documents = documents
        return c
    }

    @Test func announcesRecordTheirHostAndSayWhenMoreThanLastSeenChanged() throws {
        var t = try TrackerTests().tracker()
        _ = announce(&t, a1, at: 1)
        #expect(t.takeChanges() == changes(["a1"], beyond: ["a1"]))  // a new host
        _ = announce(&t, a1, at: 2)
        let seen = t.takeChanges()
        #expect(seen == changes(["a1"]) && seen.isOnlyLastSeen)
        _ = announce(&t, a1, at: 2)
        #expect(t.takeChanges().isEmpty)  // nothing moved at all
        let p = BundleProgress(bundleID: "x", have: 1, total: 2, bytes: 10, complete: false, staged: false)
        _ = announce(&t, a1, at: 3, bundles: [p])
        #expect(t.takeChanges() == changes(["a1"], beyond: ["a1"]))  // progress
        _ = announce(&t, a1, at: 4, bundles: [p], operation: OperationProgress(id: "o", kind: "convert", step: "s", status: .running))
        #expect(t.takeChanges() == changes(["a1"], beyond: ["a1"]))  // operation
        _ = t.handle(.announce(listenPort: 7702, listenAddress: "10.0.0.1", bundles: [p]), from: a1, remoteAddress: nil, now: 5)
        #expect(t.takeChanges() == changes(["a1"], beyond: ["a1"]))  // port
        // Refused announces change nothing.
        _ = announce(&t, FleetIdentity(host: "a1", site: "b", role: .peer), at: 6)
        _ = announce(&t, ops, at: 6)
        #expect(t.takeChanges().isEmpty)
    }

    @Test func publishRecordsItsBundleAndTheFirstAnnouncesTheirEpochs() throws {
        var t = try TrackerTests().tracker()
        _ = announce(&t, a1, at: 1)
        _ = t.takeChanges()
        let (b64, id) = try Self.manifest("one")
        guard case .published = t.handle(.publish(manifest: b64, seedHost: "", selector: "site=a"), from: ops, remoteAddress: nil, now: 2) else {
            Issue.record("refused"); return
        }
        #expect(t.takeChanges() == changes(bundles: [id]))
        // `jobs(for:)` sets the bundle's epoch on the first announce of a target …
        _ = announce(&t, a1, at: 3)
        #expect(t.takeChanges() == changes(["a1"], epochs: [id]))
        // … not again while the live set is the same …
        _ = announce(&t, a1, at: 4)
        #expect(t.takeChanges() == changes(["a1"]))
        // … and moves it when a target comes alive (a2) or goes silent (a2 again, 20 s later).
        _ = announce(&t, a2, at: 5)
        #expect(t.takeChanges() == changes(["a2"], beyond: ["a2"], epochs: [id]))
        _ = announce(&t, a1, at: 25)
        #expect(t.takeChanges() == changes(["a1"], epochs: [id]))
        #expect(t.state.epochs[id]?.number == 3)
        // A host the bundle does not target moves no epoch; refused publishes change nothing.
        _ = announce(&t, FleetIdentity(host: "b1", site: "b", role: .peer), at: 26)
        #expect(t.takeChanges() == changes(["b1"], beyond: ["b1"]))
        _ = t.handle(.publish(manifest: "not base64!", seedHost: "", selector: "all"), from: ops, remoteAddress: nil, now: 27)
        _ = t.handle(.publish(manifest: b64, seedHost: "", selector: "all"), from: a1, remoteAddress: nil, now: 27)
        #expect(t.takeChanges().isEmpty)
    }

    @Test func badPeerReportsRecordTheLineAndTheBanOnce() throws {
        var t = try TrackerTests().tracker()
        _ = t.handle(.reportBadPeer(bundleID: "bb", peer: "a2", reason: "bad chunk"), from: a1, remoteAddress: nil, now: 1)
        #expect(t.takeChanges() == changes(bans: ["bb"], badPeers: 1))
        _ = t.handle(.reportBadPeer(bundleID: "bb", peer: "a2", reason: "again"), from: a1, remoteAddress: nil, now: 2)
        #expect(t.takeChanges() == changes(badPeers: 1))  // already banned: only the line
        _ = t.handle(.reportBadPeer(bundleID: "bb", peer: "b1", reason: "x"), from: a1, remoteAddress: nil, now: 3)
        _ = t.handle(.reportBadPeer(bundleID: "cc", peer: "b1", reason: "x"), from: a1, remoteAddress: nil, now: 3)
        #expect(t.takeChanges() == changes(bans: ["bb", "cc"], badPeers: 2))  // accumulated until taken
    }

    @Test func ordersRecordTheirHostAndReadsRecordNothing() throws {
        var t = try TrackerTests().tracker()
        let order = OperationOrder(id: "op-1", kind: "convert", stagingBundle: "aa", targetBundle: "bb")
        _ = t.handle(.orderOperation(host: "a1", request: order), from: ops, remoteAddress: nil, now: 1)
        #expect(t.takeChanges() == changes(orders: ["a1"]))
        _ = t.handle(.orderOperation(host: "a1", request: order), from: ops, remoteAddress: nil, now: 2)  // re-sent: same order
        _ = t.handle(.orderOperation(host: "a2", request: order), from: a1, remoteAddress: nil, now: 2)  // refused: not an operator
        _ = t.handle(.orderOperation(host: "zz", request: order), from: ops, remoteAddress: nil, now: 2)  // refused: unknown host
        _ = t.handle(.status, from: ops, remoteAddress: nil, now: 3)
        _ = t.handle(.operationStatus(host: "a1"), from: ops, remoteAddress: nil, now: 3)
        #expect(t.takeChanges().isEmpty)
    }

    @Test func documentsRecordTheirKey() throws {
        var t = try TrackerTests().tracker()
        t.saveDocument(kind: "rollout", id: "r1", body: Data("{}".utf8))
        let key = Tracker.DocumentKey(kind: "rollout", id: "r1")
        #expect(t.takeChanges() == changes(documents: [key]))
        t.saveDocument(kind: "rollout", id: "r1", body: Data("{}".utf8))
        #expect(t.takeChanges().isEmpty)
        #expect(t.document(kind: "rollout", id: "r1") == Data("{}".utf8))
        t.removeDocument(kind: "rollout", id: "r1")
        #expect(t.takeChanges() == changes(documents: [key]) && t.state.documents.isEmpty)
        t.removeDocument(kind: "rollout", id: "r1")
        #expect(t.takeChanges().isEmpty)
    }

    // MARK: - A scripted random run

    /// The rows that differ between two states: what `Changes` must name.
    static func diff(_ a: Tracker.State, _ b: Tracker.State) -> Tracker.Changes {
        func keys<V: Equatable>(_ x: [String: V], _ y: [String: V]) -> Set<String> {
            Set(x.keys).union(y.keys).filter { x[$0] != y[$0] }
        }
        var c = Tracker.Changes()
        c.hosts = keys(a.hosts, b.hosts)
        c.hostsBeyondLastSeen = c.hosts.filter {
            var x = a.hosts[$0], y = b.hosts[$0]
            x?.lastSeen = nil
            y?.lastSeen = nil
            return x == nil || x != y
        }
        c.bundles = keys(a.bundles, b.bundles)
        c.orders = keys(a.orders ?? [:], b.orders ?? [:])
        c.bans = keys(a.banned, b.banned)
        c.epochs = keys(a.epochs, b.epochs)
        c.badPeerReportsAppended = b.badPeerReports.count - a.badPeerReports.count
        for kind in Set(a.documents.keys).union(b.documents.keys) {
            for id in keys(a.documents[kind] ?? [:], b.documents[kind] ?? [:]) { c.documents.insert(.init(kind: kind, id: id)) }
        }
        return c
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func aRandomRunSavedChangeByChangeReloadsAsTheStateInMemory(seed: UInt64) throws {
        let dir = TemporaryDirectory("store-random")
        defer { dir.remove() }
        var rng = SplitMix64(seed: seed)
        var t = Tracker(topology: try Topology.parse(yaml: TrackerTests.yaml), liveTimeout: 10)
        var store = try SQLiteCoordinatorStore(path: dir.file("c.db"))
        let hosts = [a1, a2, FleetIdentity(host: "b1", site: "b", role: .peer), FleetIdentity(host: "seed", site: "origin", role: .seed)]
        let manifests = try (0..<3).map { try Self.manifest("bundle-\($0)") }
        var now = 1000.0
        var pending = Tracker.Changes()  // lastSeen-only changes wait, as in the server
        var steps = 0
        for step in 0..<300 {
            now += Double(Int.random(in: 0...40, using: &rng)) / 4
            let before = t.state
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<50:
                let h = hosts.randomElement(using: &rng)!
                let progress = manifests.prefix(Int.random(in: 0...2, using: &rng)).map {
                    BundleProgress(bundleID: $0.1, have: Int.random(in: 0...1, using: &rng), total: 1, bytes: 4096, complete: false, staged: false)
                }
                let op: OperationProgress? = Bool.random(using: &rng) ? nil
                    : OperationProgress(id: "op-\(Int.random(in: 0...3, using: &rng))", kind: "convert", step: "s",
                                        status: Bool.random(using: &rng) ? .running : .succeeded)
                _ = announce(&t, h, at: now, bundles: progress, operation: op)
            case 50..<60:
                let m = manifests.randomElement(using: &rng)!
                _ = t.handle(.publish(manifest: m.0, seedHost: "", selector: ["all", "site=a", "site=b"].randomElement(using: &rng)!),
                             from: ops, remoteAddress: nil, now: now)
            case 60..<70:
                _ = t.handle(.reportBadPeer(bundleID: manifests.randomElement(using: &rng)!.1, peer: hosts.randomElement(using: &rng)!.host,
                                            reason: "bad"), from: hosts.randomElement(using: &rng)!, remoteAddress: nil, now: now)
            case 70..<82:
                let order = OperationOrder(id: "op-\(Int.random(in: 0...3, using: &rng))", kind: "convert", stagingBundle: "aa")
                _ = t.handle(.orderOperation(host: hosts.randomElement(using: &rng)!.host, request: order), from: ops, remoteAddress: nil, now: now)
            case 82..<90:
                let id = "r\(Int.random(in: 0...2, using: &rng))"
                if Int.random(in: 0..<4, using: &rng) == 0 {
                    t.removeDocument(kind: "rollout", id: id)
                } else {
                    t.saveDocument(kind: "rollout", id: id, body: Data("{\"n\":\(Int.random(in: 0...2, using: &rng))}".utf8))
                }
            default:
                _ = t.handle(.status, from: ops, remoteAddress: nil, now: now)
            }
            let changes = t.takeChanges()
            #expect(changes == Self.diff(before, t.state), "step \(step) of seed \(seed)")
            pending.formUnion(changes)
            if !changes.isOnlyLastSeen || step % 25 == 0 {
                try store.save(pending, of: t.state)
                pending = Tracker.Changes()
                steps += 1
            }
            if step % 100 == 99 {  // reopen and compare
                try store.save(pending, of: t.state)
                pending = Tracker.Changes()
                try store.close()
                store = try SQLiteCoordinatorStore(path: dir.file("c.db"))
                #expect(try store.load() == t.state, "after step \(step) of seed \(seed)")
            }
        }
        #expect(steps > 50 && !t.state.bundles.isEmpty && !t.state.epochs.isEmpty && !(t.state.orders ?? [:]).isEmpty)
        try store.close()
    }
}
