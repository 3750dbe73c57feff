import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// An ``OperationStore`` in a directory: `current.json` (the record), `history/` (finished records
/// moved aside when a new operation begins) and `lock` (an `flock` held while checking and
/// replacing, so two agents on one host cannot both begin).
///
/// Every write goes to a temporary file that is fsynced, renamed over `current.json`, and the
/// directory fsynced: after a power loss the file is the old record or the new one, never a mix.
/// A file that does not decode is reported as ``AgentError/corruptState(path:detail:)`` and left
/// in place; nothing resets it.
///
/// ```swift
/// let store = try FileOperationStore(directory: "/var/lib/shoal/agent")  // on the staging disk
/// ```
public struct FileOperationStore: OperationStore {
    public let directory: String
    public var currentPath: String { directory + "/current.json" }
    public var historyDirectory: String { directory + "/history" }

    /// Opens (creating if needed) the store in `directory`.
    public init(directory: String) throws(AgentError) {
        self.directory = directory
        try Self.makeDirectory(directory)
        try Self.makeDirectory(historyDirectory)
    }

    public func load() throws(AgentError) -> OperationRecord? {
        try Self.read(currentPath)
    }

    public func record(id: String) throws(AgentError) -> OperationRecord? {
        if let current = try load(), current.id == id { return current }
        return try history().last { $0.id == id }
    }

    public func save(_ record: OperationRecord) throws(AgentError) {
        try withLock { () throws(AgentError) in try Self.writeAtomically(record, to: currentPath) }
    }

    public func begin(_ record: OperationRecord) throws(AgentError) -> OperationRecord {
        try withLock { () throws(AgentError) -> OperationRecord in
            if let current = try Self.read(currentPath) {
                if current.id == record.id { return current }
                if let earlier = try history().last(where: { $0.id == record.id }) { return earlier }
                if !current.isFinished {
                    throw .operationInProgress(id: current.id, kind: current.kind, step: current.currentStepName)
                }
                // Copied to the history before being replaced: a power loss in between leaves
                // the finished record current, and the next begin copies it again.
                try Self.writeAtomically(current, to: historyDirectory + "/" + Self.historyName(current))
            } else if let earlier = try history().last(where: { $0.id == record.id }) {
                return earlier
            }
            try Self.writeAtomically(record, to: currentPath)
            return record
        }
    }

    /// The finished records moved aside, oldest first.
    public func history() throws(AgentError) -> [OperationRecord] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: historyDirectory) } catch {
            throw .stateIO("cannot list \(historyDirectory): \(error)")
        }
        var out: [OperationRecord] = []
        for name in names.sorted() where name.hasSuffix(".json") {
            if let r = try Self.read(historyDirectory + "/" + name) { out.append(r) }
        }
        return out
    }

    // MARK: Files

    static func historyName(_ record: OperationRecord) -> String {
        let stamp = Int64((record.outcome?.finishedAt ?? record.updatedAt).timeIntervalSince1970 * 1000)
        let safeID = String(record.id.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." ? $0 : "_" }.prefix(80))
        return String(format: "%015lld", stamp) + "-" + safeID + ".json"
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        }
        return e
    }()

    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            guard let date = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an ISO 8601 time: \(text)")
            }
            return date
        }
        return d
    }()

    static func read(_ path: String) throws(AgentError) -> OperationRecord? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw .stateIO("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .stateIO("cannot read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        let record: OperationRecord
        do { record = try decoder.decode(OperationRecord.self, from: Data(bytes)) } catch {
            throw .corruptState(path: path, detail: bytes.isEmpty ? "empty file" : "not an operation record: \(error)")
        }
        if let problem = record.inconsistency { throw .corruptState(path: path, detail: problem) }
        return record
    }

    static func writeAtomically(_ record: OperationRecord, to path: String) throws(AgentError) {
        let data: Data
        do { data = try encoder.encode(record) } catch { throw .stateIO("cannot encode the record: \(error)") }
        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .stateIO("cannot create \(temp): \(String(cString: strerror(errno)))") }
        var failure: String?
        data.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = "cannot write \(temp): \(String(cString: strerror(errno)))"
                    return
                }
                done += n
            }
        }
        if failure == nil {
            while fsync(fd) != 0 {
                if errno != EINTR {
                    failure = "cannot fsync \(temp): \(String(cString: strerror(errno)))"
                    break
                }
            }
        }
        close(fd)
        if let failure {
            unlink(temp)
            throw .stateIO(failure)
        }
        guard rename(temp, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(temp)
            throw .stateIO("cannot rename \(temp) to \(path): \(why)")
        }
        try fsyncDirectory(of: path)
    }

    static func fsyncDirectory(of path: String) throws(AgentError) {
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let fd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .stateIO("cannot open \(dir): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        while fsync(fd) != 0 {
            if errno != EINTR { throw .stateIO("cannot fsync \(dir): \(String(cString: strerror(errno)))") }
        }
    }

    static func makeDirectory(_ path: String) throws(AgentError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST {
            throw .stateIO("cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    func withLock<T>(_ body: () throws(AgentError) -> T) throws(AgentError) -> T {
        let path = directory + "/lock"
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .stateIO("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }  // closing releases the flock
        while flock(fd, LOCK_EX) != 0 {
            if errno != EINTR { throw .stateIO("cannot lock \(path): \(String(cString: strerror(errno)))") }
        }
        return try body()
    }
}
