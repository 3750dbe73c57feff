import Foundation

/// Read-only access to a root file system tree, so capture and detection work the same on the
/// running system (`/`), on a mounted disk (`/mnt/target`), and on an in-memory tree in tests.
///
/// Paths are absolute *inside* the tree (`/etc/hostname`), whatever the tree's mount point.
public protocol FileSource: Sendable {
    /// The file's bytes, or `nil` when there is no regular file at `path`.
    /// - Throws: ``HostProfileError/unreadable(path:reason:)`` when it exists but cannot be read.
    func read(_ path: String) throws(HostProfileError) -> Data?
    /// The names (not paths) in directory `path`, sorted; empty when it is not a directory.
    func list(_ path: String) throws(HostProfileError) -> [String]
    /// Status of `path`: kind, permission bits and owner; `nil` when nothing is there.
    /// Symbolic links are followed *within the tree* (see ``DirectoryFileSource``).
    func status(_ path: String) throws(HostProfileError) -> FileStatus?
}

/// What ``FileSource/status(_:)`` reports.
public struct FileStatus: Hashable, Sendable {
    public enum Kind: Hashable, Sendable { case file, directory, other }
    public var kind: Kind
    /// Permission bits (`0o600`).
    public var mode: UInt32
    public var uid: UInt32
    public var gid: UInt32

    public init(kind: Kind, mode: UInt32, uid: UInt32 = 0, gid: UInt32 = 0) {
        self.kind = kind
        self.mode = mode & 0o7777
        self.uid = uid
        self.gid = gid
    }
}

extension FileSource {
    public func exists(_ path: String) -> Bool { (try? status(path)) != nil }
    public func isDirectory(_ path: String) -> Bool { (try? status(path))??.kind == .directory }
    public func isFile(_ path: String) -> Bool { (try? status(path))??.kind == .file }

    /// Reads a text file; `nil` when absent.
    public func readText(_ path: String) throws(HostProfileError) -> String? {
        try read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Captures `path` with its mode and owner; `nil` when it is not a regular file.
    public func capture(_ path: String) throws(HostProfileError) -> CapturedFile? {
        guard let st = try status(path), st.kind == .file, let data = try read(path) else { return nil }
        return CapturedFile(path: path, contents: data, mode: st.mode, uid: st.uid, gid: st.gid)
    }

    /// Captures every regular file directly in `directory` whose name passes `filter`, sorted by name.
    public func captureDirectory(_ directory: String, where filter: (String) -> Bool = { _ in true })
        throws(HostProfileError) -> [CapturedFile]
    {
        var out: [CapturedFile] = []
        for name in try list(directory) where filter(name) {
            if let f = try capture(joinPath(directory, name)) { out.append(f) }
        }
        return out
    }
}

func joinPath(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}

/// A ``FileSource`` over a real directory tree mounted at `root`.
///
/// Absolute symbolic links inside the tree are resolved against `root`, not against the running
/// system (a mounted target's `/etc/resolv.conf -> /run/systemd/resolve/stub-resolv.conf` must not
/// read the *running* host's file). `..` never climbs above `root`.
public struct DirectoryFileSource: FileSource {
    public let root: String

    public init(root: String) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    public func read(_ path: String) throws(HostProfileError) -> Data? {
        guard let real = try resolve(path), let st = lstatHost(real), st.kind == .file else { return nil }
        guard let data = FileManager.default.contents(atPath: real) else {
            throw .unreadable(path: path, reason: "permission denied or I/O error at \(real)")
        }
        return data
    }

    public func list(_ path: String) throws(HostProfileError) -> [String] {
        guard let real = try resolve(path), lstatHost(real)?.kind == .directory else { return [] }
        do { return try FileManager.default.contentsOfDirectory(atPath: real).sorted() } catch {
            throw .unreadable(path: path, reason: "\(error.localizedDescription)")
        }
    }

    public func status(_ path: String) throws(HostProfileError) -> FileStatus? {
        guard let real = try resolve(path) else { return nil }
        return lstatHost(real)
    }

    /// Maps an in-tree path to a host path, following symbolic links inside the tree (at most 40,
    /// as the kernel does); `nil` when a component is missing.
    func resolve(_ path: String) throws(HostProfileError) -> String? {
        var pending = path.split(separator: "/").map(String.init)
        var resolved: [String] = []
        var hops = 0
        while !pending.isEmpty {
            let part = pending.removeFirst()
            if part == "." || part.isEmpty { continue }
            if part == ".." { _ = resolved.popLast(); continue }
            let host = hostPath(resolved + [part])
            var st = stat()
            guard lstat(host, &st) == 0 else { return nil }
            if st.st_mode & S_IFMT == S_IFLNK {
                hops += 1
                guard hops <= 40 else { throw .unreadable(path: path, reason: "too many levels of symbolic links") }
                guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: host) else { return nil }
                let targetParts = target.split(separator: "/").map(String.init)
                if target.hasPrefix("/") { resolved = [] }
                pending = targetParts + pending
            } else {
                resolved.append(part)
            }
        }
        return hostPath(resolved)
    }

    private func hostPath(_ parts: [String]) -> String {
        let inner = parts.joined(separator: "/")
        if root == "/" { return "/" + inner }
        return inner.isEmpty ? root : root + "/" + inner
    }

    private func lstatHost(_ path: String) -> FileStatus? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        let kind: FileStatus.Kind
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = .file
        case S_IFDIR: kind = .directory
        default: kind = .other
        }
        return FileStatus(kind: kind, mode: UInt32(st.st_mode) & 0o7777, uid: st.st_uid, gid: st.st_gid)
    }
}

/// A ``FileSource`` held in memory: for tests, and for feeding a profile's captured files back into
/// the capture logic.
public struct InMemoryFileSource: FileSource {
    public var files: [String: CapturedFile]
    /// Directories that exist even without files in them (for example `/Windows/System32`).
    public var directories: Set<String>

    public init(files: [CapturedFile] = [], directories: Set<String> = []) {
        self.files = Dictionary(files.map { ($0.path, $0) }, uniquingKeysWith: { _, last in last })
        self.directories = directories
    }

    /// Adds a text file (mode 0644 unless given).
    public mutating func add(_ path: String, _ text: String, mode: UInt32 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0) {
        files[path] = CapturedFile(path: path, text: text, mode: mode, uid: uid, gid: gid)
    }

    public func read(_ path: String) throws(HostProfileError) -> Data? { files[normalize(path)]?.contents }

    public func list(_ path: String) throws(HostProfileError) -> [String] {
        let dir = normalize(path)
        let prefix = dir == "/" ? "/" : dir + "/"
        var names = Set<String>()
        for p in Array(files.keys) + Array(directories) where p.hasPrefix(prefix) && p != dir {
            if let first = p.dropFirst(prefix.count).split(separator: "/").first { names.insert(String(first)) }
        }
        return names.sorted()
    }

    public func status(_ path: String) throws(HostProfileError) -> FileStatus? {
        let p = normalize(path)
        if let f = files[p] { return FileStatus(kind: .file, mode: f.mode, uid: f.uid ?? 0, gid: f.gid ?? 0) }
        let hasChildren = try !list(p).isEmpty
        if p == "/" || directories.contains(p) || hasChildren { return FileStatus(kind: .directory, mode: 0o755) }
        return nil
    }

    private func normalize(_ path: String) -> String {
        "/" + path.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }
}
