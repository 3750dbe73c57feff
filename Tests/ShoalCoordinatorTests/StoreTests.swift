import Foundation
import GRDB
import ShoalCoordinator
import ShoalTestKit
import ShoalWire
import Testing

/// The SQLite store on its own: every table round trips, migrations run on an empty file, a
/// reopened database has what was saved, a file that is not a healthy database is refused
/// untouched, and an old JSON state file is imported once.
struct StoreTests {
    /// A state with a row in every table, nested values included.
    static func fullState() -> Tracker.State {
        var s = Tracker.State()
        var a1 = Tracker.HostRecord(host: "a1", site: "a", role: "peer", address: "10.0.0.1", port: 7701, lastSeen: 1_700_000_000.25)
        a1.progress = ["b1": BundleProgress(bundleID: "b1", have: 3, total: 8, bytes: 1 << 33, complete: false, staged: false, error: "disk full")]
        a1.operation = OperationProgress(id: "op-1", kind: "convert", step: "writeTarget#1", status: .running, log: ["one", "two"], message: "m")
        s.hosts["a1"] = a1
        s.hosts["seed"] = Tracker.HostRecord(host: "seed", site: "origin", role: "seed")  // no address, port, lastSeen
        s.bundles["b1"] = Tracker.PublishedBundle(bundleID: "b1", manifest: "bWFuaWZlc3Q=", chunkCount: 8, seedHost: "seed",
                                                  targets: ["a1", "a2", "b1"], publishedAt: 12.5)
        s.banned["b1"] = ["b1", "a2"]  // order kept, not sorted
        s.badPeerReports = ["1 a1 reports b1 for bundle b1: bad chunk", "2 a2 reports b1 for bundle b1: bad chunk"]
        s.epochs["b1"] = Tracker.Epoch(fingerprint: "a2,b1", number: 3)
        s.orders = ["a1": Tracker.OrderRecord(order: OperationOrder(id: "op-1", kind: "convert", stagingBundle: "aa", targetBundle: "bb"),
                                              orderedBy: "ops", orderedAt: 11)]
        s.documents = ["rollout": ["r1": Data(#"{"wave":1}"#.utf8), "r2": Data("[]".utf8)], "other": ["x": Data([0, 1, 2])]]
        return s
    }

    @Test func everyTableRoundTrips() throws {
        let dir = TemporaryDirectory("store-roundtrip")
        defer { dir.remove() }
        let state = Self.fullState()
        let store = try SQLiteCoordinatorStore(path: dir.file("c.db"))
        #expect(try store.load() == Tracker.State())
        try store.save(.everything(in: state), of: state)
        #expect(try store.load() == state)
        try store.close()
        // Each table holds its rows (not one blob somewhere).
        let db = try DatabaseQueue(path: dir.file("c.db"))
        defer { try? db.close() }
        let counts = try db.read { db in
            try ["hosts", "bundles", "banned", "bad_peer_reports", "epochs", "orders", "documents"].map {
                try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \($0)")!
            }
        }
        #expect(counts == [2, 1, 2, 2, 1, 1, 3])
    }

    @Test func saveWritesOnlyTheNamedRowsAndRemovesGoneOnes() throws {
        let dir = TemporaryDirectory("store-partial")
        defer { dir.remove() }
        var state = Self.fullState()
        let store = try SQLiteCoordinatorStore(path: dir.file("c.db"))
        try store.save(.everything(in: state), of: state)
        // Changed in memory but not named: not written.
        state.hosts["a1"]!.lastSeen = 99
        state.bundles["b1"]!.chunkCount = 9
        var changes = Tracker.Changes()
        changes.hosts = ["a1"]  // lastSeen only
        try store.save(changes, of: state)
        var loaded = try store.load()
        #expect(loaded.hosts["a1"]!.lastSeen == 99 && loaded.bundles["b1"]!.chunkCount == 8)
        // A document gone from the state is deleted; appended bad-peer lines are appended.
        state.documents["rollout"]!["r1"] = nil
        state.badPeerReports.append("3 b1 reports a1 for bundle b1: slow")
        changes = Tracker.Changes()
        changes.documents = [Tracker.DocumentKey(kind: "rollout", id: "r1")]
        changes.badPeerReportsAppended = 1
        try store.save(changes, of: state)
        loaded = try store.load()
        #expect(loaded.documents["rollout"] == ["r2": Data("[]".utf8)] && loaded.badPeerReports == state.badPeerReports)
        try store.close()
    }

    @Test func migrationsRunOnAnEmptyFileAndAReopenedDatabaseKeepsItsRows() throws {
        let dir = TemporaryDirectory("store-migrate")
        defer { dir.remove() }
        let path = dir.file("c.db")
        _ = FileManager.default.createFile(atPath: path, contents: Data())  // an empty file is a new database
        var store = try SQLiteCoordinatorStore(path: path)
        #expect(try store.appliedMigrations() == ["v1"])
        let state = Self.fullState()
        try store.save(.everything(in: state), of: state)
        try store.close()
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "close should checkpoint the WAL away")
        store = try SQLiteCoordinatorStore(path: path)
        #expect(try store.appliedMigrations() == ["v1"])
        #expect(try store.load() == state)
        let mode = try DatabaseQueue(path: path).read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        try store.close()
    }

    @Test func aFileThatIsNotAHealthyDatabaseIsRefusedUntouched() throws {
        let dir = TemporaryDirectory("store-corrupt")
        defer { dir.remove() }
        // Not SQLite at all.
        let garbage = dir.file("garbage.db")
        let junk = Data((0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })
        try junk.write(to: URL(fileURLWithPath: garbage))
        let e1 = #expect(throws: CoordinatorStoreError.self) { try SQLiteCoordinatorStore(path: garbage) }
        #expect(e1?.description.contains("is not a SQLite database") == true, "\(String(describing: e1))")
        #expect(FileManager.default.contents(atPath: garbage) == junk)

        // A real database whose pages were overwritten after the header.
        let damaged = dir.file("damaged.db")
        let store = try SQLiteCoordinatorStore(path: damaged)
        let state = Self.fullState()
        try store.save(.everything(in: state), of: state)
        try store.close()
        var bytes = try Data(contentsOf: URL(fileURLWithPath: damaged))
        for i in 100..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i &* 31) }
        try bytes.write(to: URL(fileURLWithPath: damaged))
        let e2 = #expect(throws: CoordinatorStoreError.self) { try SQLiteCoordinatorStore(path: damaged) }
        #expect(e2?.description.contains("damaged SQLite database") == true, "\(String(describing: e2))")
        #expect(FileManager.default.contents(atPath: damaged) == bytes)

        // Through the CLI's opener too (neither JSON nor SQLite).
        #expect(throws: CoordinatorStoreError.self) { try SQLiteCoordinatorStore.open(path: garbage) }
        #expect(FileManager.default.contents(atPath: garbage) == junk)
    }

    @Test func anOldJSONStateFileIsImportedOnce() throws {
        let dir = TemporaryDirectory("store-import")
        defer { dir.remove() }
        let path = dir.file("coordinator.state")
        // What an older coordinator wrote: no documents, and (older still) no orders.
        var old = Self.fullState()
        old.documents = [:]
        let json = try JSONEncoder().encode(old)
        var object = try JSONSerialization.jsonObject(with: json) as! [String: Any]
        object["documents"] = nil
        try (Data("  \n".utf8) + JSONSerialization.data(withJSONObject: object)).write(to: URL(fileURLWithPath: path))
        var lines: [String] = []
        let store = try SQLiteCoordinatorStore.open(path: path) { lines.append($0) }
        #expect(try store.load() == old)
        try store.close()
        #expect(lines.count == 1 && lines[0].contains("imported") && lines[0].contains(path + ".imported.json"), "\(lines)")
        #expect(try JSONDecoder().decode(Tracker.State.self, from: Data(contentsOf: URL(fileURLWithPath: path + ".imported.json"))) == old)
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: 15)
        #expect(head == Data("SQLite format 3".utf8))
        #expect(!FileManager.default.fileExists(atPath: path + ".importing"))
        // The second start opens the database; nothing is imported again.
        lines = []
        let again = try SQLiteCoordinatorStore.open(path: path) { lines.append($0) }
        #expect(try again.load() == old && lines.isEmpty)
        try again.close()

        // A file without orders or documents (the oldest format) decodes too.
        #expect(try JSONDecoder().decode(Tracker.State.self, from: Data(#"{"bundles":{},"hosts":{},"banned":{},"badPeerReports":[],"epochs":{}}"#.utf8))
            == Tracker.State())
        // A JSON file that does not decode as a state is refused and left alone.
        let bad = dir.file("bad.json")
        try Data(#"{"hosts": 3}"#.utf8).write(to: URL(fileURLWithPath: bad))
        #expect(throws: CoordinatorStoreError.self) { try SQLiteCoordinatorStore.open(path: bad) }
        #expect(FileManager.default.contents(atPath: bad) == Data(#"{"hosts": 3}"#.utf8))
        #expect(!FileManager.default.fileExists(atPath: bad + ".imported.json"))
    }
}
