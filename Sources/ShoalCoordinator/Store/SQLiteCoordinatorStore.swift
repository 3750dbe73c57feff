import Foundation
import GRDB
import ShoalWire

/// The coordinator's state in one SQLite file (through GRDB): a row per host, bundle, ban, bad-peer
/// line, epoch, order and document, so a save writes only the rows a request changed.
///
/// Durability: the database runs in WAL mode with `synchronous = NORMAL`. A committed transaction
/// is in the WAL file (written with `write(2)`, so in the kernel's page cache) before `save`
/// returns; only checkpoints fsync. Killing the process, even with SIGKILL, loses nothing that
/// was committed: the kernel still writes those pages, and the next open replays the WAL. What
/// NORMAL gives up against FULL is a power loss or kernel crash, which may lose the last
/// transactions (never corrupt the file). The coordinator's promise is "an answered request
/// survives a crash of the coordinator"; a fleet whose coordinator host loses power re-announces
/// within seconds, and an operator re-sends an order it did not see confirmed. FULL would cost
/// an fsync per answered request.
///
/// Schema (migration "v1"): `hosts`, `bundles`, `banned`, `bad_peer_reports`, `epochs`, `orders`
/// and `documents` (kind, id → a JSON body, for later features). Nested values (a host's progress
/// and operation, a bundle's targets, an order) are JSON text in their row.
///
/// Opening refuses, without writing to it, a file that is not a SQLite database, one that fails
/// `PRAGMA quick_check`, and one migrated by a newer coordinator.
public final class SQLiteCoordinatorStore: CoordinatorStore {
    public let path: String
    private let queue: DatabaseQueue

    public init(path: String) throws {
        self.path = path
        try Self.checkExisting(path)
        var config = Configuration()
        config.journalMode = .wal
        config.label = "coordinator-store"
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            try queue.read { db in
                if try Self.migrator.hasBeenSuperseded(db) {
                    throw CoordinatorStoreError("\(path) was written by a newer coordinator (unknown migrations); not opening it")
                }
            }
            try Self.migrator.migrate(queue)
        } catch let error as DatabaseError {
            throw CoordinatorStoreError("cannot open the coordinator database \(path): \(error.message ?? "\(error)")")
        }
    }

    /// The migrations that have been applied, by name (for tests and diagnostics).
    public func appliedMigrations() throws -> Set<String> {
        try queue.read { try Self.migrator.appliedIdentifiers($0) }
    }

    public func close() throws {
        try queue.close()
    }

    /// The bytes that start every SQLite 3 database file.
    static let sqliteHeader = Array("SQLite format 3\0".utf8)

    /// Refuses an existing non-empty file that is not a healthy SQLite database, before anything
    /// opens it for writing (opening in WAL mode writes to the header).
    private static func checkExisting(_ path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { return }  // a new database
        let head = (try? handle.read(upToCount: 16)) ?? Data()
        try? handle.close()
        guard !head.isEmpty else { return }
        guard Array(head) == sqliteHeader else {
            throw CoordinatorStoreError("\(path) is not a SQLite database (it does not start with the SQLite header); not touching it")
        }
        do {
            var config = Configuration()
            config.readonly = true
            let probe = try DatabaseQueue(path: path, configuration: config)
            defer { try? probe.close() }
            let result = try probe.read { try String.fetchAll($0, sql: "PRAGMA quick_check") }
            guard result == ["ok"] else {
                throw CoordinatorStoreError("\(path) is a damaged SQLite database (quick_check: \(result.prefix(3).joined(separator: "; "))); not touching it")
            }
        } catch let error as DatabaseError {
            throw CoordinatorStoreError("\(path) is a damaged SQLite database (\(error.message ?? "\(error)")); not touching it")
        }
    }

    static let migrator: DatabaseMigrator = {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE hosts (
                    name TEXT PRIMARY KEY NOT NULL, site TEXT NOT NULL, role TEXT NOT NULL,
                    address TEXT, port INTEGER, last_seen REAL,
                    progress TEXT NOT NULL,   -- JSON: bundle id → BundleProgress
                    operation TEXT            -- JSON: OperationProgress
                );
                CREATE TABLE bundles (
                    id TEXT PRIMARY KEY NOT NULL, manifest TEXT NOT NULL, chunk_count INTEGER NOT NULL,
                    seed_host TEXT NOT NULL, targets TEXT NOT NULL /* JSON array */, published_at REAL NOT NULL
                );
                CREATE TABLE banned (
                    bundle_id TEXT NOT NULL, host TEXT NOT NULL,
                    position INTEGER NOT NULL,  -- the ban list's order
                    PRIMARY KEY (bundle_id, host)
                );
                CREATE TABLE bad_peer_reports (seq INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);
                CREATE TABLE epochs (bundle_id TEXT PRIMARY KEY NOT NULL, fingerprint TEXT NOT NULL, number INTEGER NOT NULL);
                CREATE TABLE orders (
                    host TEXT PRIMARY KEY NOT NULL, "order" TEXT NOT NULL /* JSON: OperationOrder */,
                    ordered_by TEXT NOT NULL, ordered_at REAL NOT NULL
                );
                CREATE TABLE documents (
                    kind TEXT NOT NULL, id TEXT NOT NULL, body BLOB NOT NULL /* JSON */, updated_at REAL NOT NULL,
                    PRIMARY KEY (kind, id)
                );
                """)
        }
        return m
    }()

    private static func json<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private static func unjson<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        try JSONDecoder().decode(type, from: Data(text.utf8))
    }

    public func load() throws -> Tracker.State {
        do {
            return try queue.read { db in
                var s = Tracker.State()
                for row in try Row.fetchAll(db, sql: "SELECT * FROM hosts") {
                    let name: String = row["name"]
                    var r = Tracker.HostRecord(host: name, site: row["site"], role: row["role"])
                    r.address = row["address"]
                    r.port = row["port"]
                    r.lastSeen = row["last_seen"]
                    r.progress = try Self.unjson([String: BundleProgress].self, row["progress"])
                    r.operation = try (row["operation"] as String?).map { try Self.unjson(OperationProgress.self, $0) }
                    s.hosts[name] = r
                }
                for row in try Row.fetchAll(db, sql: "SELECT * FROM bundles") {
                    let id: String = row["id"]
                    s.bundles[id] = Tracker.PublishedBundle(
                        bundleID: id, manifest: row["manifest"], chunkCount: row["chunk_count"], seedHost: row["seed_host"],
                        targets: try Self.unjson([String].self, row["targets"]), publishedAt: row["published_at"])
                }
                for row in try Row.fetchAll(db, sql: "SELECT bundle_id, host FROM banned ORDER BY bundle_id, position") {
                    s.banned[row["bundle_id"], default: []].append(row["host"])
                }
                s.badPeerReports = try String.fetchAll(db, sql: "SELECT line FROM bad_peer_reports ORDER BY seq")
                for row in try Row.fetchAll(db, sql: "SELECT * FROM epochs") {
                    s.epochs[row["bundle_id"]] = Tracker.Epoch(fingerprint: row["fingerprint"], number: row["number"])
                }
                let orders = try Row.fetchAll(db, sql: #"SELECT host, "order", ordered_by, ordered_at FROM orders"#)
                if !orders.isEmpty {
                    var o: [String: Tracker.OrderRecord] = [:]
                    for row in orders {
                        o[row["host"]] = Tracker.OrderRecord(
                            order: try Self.unjson(OperationOrder.self, row["order"]), orderedBy: row["ordered_by"], orderedAt: row["ordered_at"])
                    }
                    s.orders = o
                }
                for row in try Row.fetchAll(db, sql: "SELECT kind, id, body FROM documents") {
                    s.documents[row["kind"], default: [:]][row["id"]] = row["body"] as Data
                }
                return s
            }
        } catch let error as DatabaseError {
            throw CoordinatorStoreError("cannot read the coordinator database \(path): \(error.message ?? "\(error)")")
        } catch let error as DecodingError {
            throw CoordinatorStoreError("cannot read the coordinator database \(path): a JSON column does not decode: \(error)")
        }
    }

    public func save(_ changes: Tracker.Changes, of state: Tracker.State) throws {
        guard !changes.isEmpty else { return }
        let now = Date().timeIntervalSince1970
        do {
            try queue.write { db in
                if !changes.hosts.isEmpty {
                    let upsert = try db.cachedStatement(sql: """
                        INSERT OR REPLACE INTO hosts (name, site, role, address, port, last_seen, progress, operation)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """)
                    // Only lastSeen changed: one column, no JSON.
                    let touch = try db.cachedStatement(sql: "UPDATE hosts SET last_seen = ? WHERE name = ?")
                    for name in changes.hosts {
                        guard let r = state.hosts[name] else {
                            try db.execute(sql: "DELETE FROM hosts WHERE name = ?", arguments: [name])
                            continue
                        }
                        if !changes.hostsBeyondLastSeen.contains(name) {
                            try touch.execute(arguments: [r.lastSeen, name])
                            if db.changesCount == 1 { continue }  // else the row is missing: write it whole
                        }
                        try upsert.execute(arguments: [
                            name, r.site, r.role, r.address, r.port, r.lastSeen, try Self.json(r.progress), try r.operation.map { try Self.json($0) },
                        ])
                    }
                }
                for id in changes.bundles {
                    guard let b = state.bundles[id] else {
                        try db.execute(sql: "DELETE FROM bundles WHERE id = ?", arguments: [id])
                        continue
                    }
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO bundles (id, manifest, chunk_count, seed_host, targets, published_at) VALUES (?, ?, ?, ?, ?, ?)",
                        arguments: [id, b.manifest, b.chunkCount, b.seedHost, try Self.json(b.targets), b.publishedAt])
                }
                for id in changes.bans {
                    try db.execute(sql: "DELETE FROM banned WHERE bundle_id = ?", arguments: [id])
                    for (i, host) in (state.banned[id] ?? []).enumerated() {
                        try db.execute(sql: "INSERT INTO banned (bundle_id, host, position) VALUES (?, ?, ?)", arguments: [id, host, i])
                    }
                }
                if changes.badPeerReportsAppended > 0 {
                    for line in state.badPeerReports.suffix(changes.badPeerReportsAppended) {
                        try db.execute(sql: "INSERT INTO bad_peer_reports (line) VALUES (?)", arguments: [line])
                    }
                }
                for id in changes.epochs {
                    guard let e = state.epochs[id] else {
                        try db.execute(sql: "DELETE FROM epochs WHERE bundle_id = ?", arguments: [id])
                        continue
                    }
                    try db.execute(sql: "INSERT OR REPLACE INTO epochs (bundle_id, fingerprint, number) VALUES (?, ?, ?)",
                                   arguments: [id, e.fingerprint, e.number])
                }
                for host in changes.orders {
                    guard let o = state.orders?[host] else {
                        try db.execute(sql: "DELETE FROM orders WHERE host = ?", arguments: [host])
                        continue
                    }
                    try db.execute(sql: #"INSERT OR REPLACE INTO orders (host, "order", ordered_by, ordered_at) VALUES (?, ?, ?, ?)"#,
                                   arguments: [host, try Self.json(o.order), o.orderedBy, o.orderedAt])
                }
                for key in changes.documents {
                    guard let body = state.documents[key.kind]?[key.id] else {
                        try db.execute(sql: "DELETE FROM documents WHERE kind = ? AND id = ?", arguments: [key.kind, key.id])
                        continue
                    }
                    try db.execute(sql: "INSERT OR REPLACE INTO documents (kind, id, body, updated_at) VALUES (?, ?, ?, ?)",
                                   arguments: [key.kind, key.id, body, now])
                }
            }
        } catch let error as DatabaseError {
            throw CoordinatorStoreError("cannot write the coordinator database \(path): \(error.message ?? "\(error)")")
        }
    }
}

extension SQLiteCoordinatorStore {
    /// Opens the database at `path` for `shoal coordinator --state PATH`, importing the JSON state
    /// file an older coordinator kept at the same path.
    ///
    /// - A missing or empty file, or a SQLite database: opened (created and migrated if needed).
    /// - A JSON state file (its first non-space byte is `{`): decoded as `Tracker.State`, written
    ///   into a new database beside it (`PATH.importing`), the old file moved to
    ///   `PATH.imported.json`, and the database renamed to `PATH`; `log` is told in one line. A
    ///   crash between the two renames is finished on the next start.
    /// - Anything else: an error, and the file is left as it is.
    public static func open(path: String, log: (String) -> Void = { _ in }) throws -> SQLiteCoordinatorStore {
        let fm = FileManager.default
        let importing = path + ".importing"
        let imported = path + ".imported.json"
        if !fm.fileExists(atPath: path), fm.fileExists(atPath: importing), fm.fileExists(atPath: imported) {
            // Killed between moving the JSON away and putting the database in its place.
            guard rename(importing, path) == 0 else { throw CoordinatorStoreError("cannot rename \(importing) to \(path): errno \(errno)") }
            log("finished importing \(imported) into the SQLite database \(path)")
        }
        let handle = FileHandle(forReadingAtPath: path)
        let head = (try? handle?.read(upToCount: 4096)) ?? nil
        try? handle?.close()
        guard let head, head.first(where: { !(" \t\r\n" as String).utf8.contains($0) }) == UInt8(ascii: "{") else {
            return try SQLiteCoordinatorStore(path: path)
        }
        let state: Tracker.State
        do { state = try JSONDecoder().decode(Tracker.State.self, from: try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw CoordinatorStoreError("\(path) looks like an old JSON state file but does not decode (\(error)); not touching it")
        }
        if fm.fileExists(atPath: imported) {
            throw CoordinatorStoreError("\(path) is a JSON state file to import, but \(imported) already exists; move one of them away")
        }
        for leftover in [importing, importing + "-wal", importing + "-shm"] { try? fm.removeItem(atPath: leftover) }
        let fresh = try SQLiteCoordinatorStore(path: importing)
        try fresh.save(.everything(in: state), of: state)
        try fresh.close()  // checkpoints the WAL into the file and removes it
        guard rename(path, imported) == 0 else { throw CoordinatorStoreError("cannot rename \(path) to \(imported): errno \(errno)") }
        guard rename(importing, path) == 0 else { throw CoordinatorStoreError("cannot rename \(importing) to \(path): errno \(errno)") }
        log("imported the JSON state file \(path) (\(state.hosts.count) hosts, \(state.bundles.count) bundles, \((state.orders ?? [:]).count) orders) into a SQLite database at the same path; the old file is \(imported)")
        return try SQLiteCoordinatorStore(path: path)
    }
}
