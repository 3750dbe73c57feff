#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// An ext4 file system in a byte region (a partition of a disk image, or a whole image file),
/// made and edited with e2fsprogs on the file itself: no mount, no loop device, no root.
///
/// Reads use `debugfs -R`, edits a `debugfs -w` command script. `debugfs` exits 0 even when a
/// command fails, so every call here treats any line on its stderr besides the version banner
/// as a failure. It also corrupts the file system when told to `mkdir` an existing directory
/// (e2fsprogs 1.47.0: the new inode is allocated but never linked), so directories are only
/// created after checking that they are missing.
///
/// ```swift
/// let fs = try Ext4Filesystem.make(in: partition.region, from: "tree/", label: "root")
/// try fs.writeFile("/etc/hostname", contents: Array("web-1\n".utf8), mode: 0o644)
/// let release = try fs.readText("/etc/os-release")
/// ```
public struct Ext4Filesystem: Sendable, Hashable, CustomStringConvertible {
    /// Where the file system lives.
    public var region: ByteRegion

    public init(region: ByteRegion) { self.region = region }

    public var description: String { "ext4 in \(region)" }

    /// What `ls` reports for one name in a directory.
    public struct Entry: Sendable, Hashable {
        public var name: String
        /// The full mode: type bits and permission bits (`0o100644`, `0o40755`, `0o120777`).
        public var mode: UInt32
        public var uid: UInt32
        public var gid: UInt32
        /// Size in bytes (0 for directories).
        public var size: UInt64
        /// The permission bits alone (`0o644`).
        public var permissions: UInt32 { mode & 0o7777 }
        public var isDirectory: Bool { mode & 0o170000 == 0o040000 }
        public var isRegularFile: Bool { mode & 0o170000 == 0o100000 }
        public var isSymbolicLink: Bool { mode & 0o170000 == 0o120000 }
    }

    // MARK: Making

    /// Makes an ext4 file system filling `region`, populated from the directory `tree` (owners,
    /// modes and symlinks as they are there), with `mke2fs -t ext4 -d`.
    ///
    /// - Parameters:
    ///   - region: where to make it; the file must already extend over it (a partition, or a
    ///     file created with the right size). Its size is used down to a 4 KiB multiple.
    ///   - tree: a directory whose contents become the root (`nil`: an empty file system).
    ///   - label: the volume label (up to 16 bytes).
    /// - Returns: the file system.
    /// - Throws: `HostLabError.doesNotFit` when the region ends past the file or is too small,
    ///   `.toolFailed` with mke2fs's message (for example when the tree does not fit).
    @discardableResult
    public static func make(in region: ByteRegion, from tree: String? = nil, label: String? = nil) throws(HostLabError) -> Ext4Filesystem {
        let fileSize = try FileIO.size(of: region.path)
        guard region.offset + region.length <= fileSize else {
            throw .doesNotFit("\(region) ends past the end of \(region.path) (\(fileSize) bytes)")
        }
        let kib = (region.length / 4096) * 4
        guard kib >= 1024 else { throw .doesNotFit("an ext4 file system in \(region): less than 1 MiB") }
        var argv = ["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-E", "offset=\(region.offset),nodiscard"]
        if let label {
            guard label.utf8.count <= 16, !label.contains(where: { $0.isWhitespace }) else { throw .badPath("volume label \(label)") }
            argv += ["-L", label]
        }
        if let tree { argv += ["-d", tree] }
        argv += [region.path, "\(kib)k"]
        try HostTool.run(argv)
        return Ext4Filesystem(region: region)
    }

    /// Makes an ext4 image file of `size` bytes from the directory `tree` — the form an OS image
    /// has before it is packed as a Shoal bundle.
    /// - Throws: as `make(in:from:label:)`.
    @discardableResult
    public static func makeImage(at path: String, size: UInt64, from tree: String?, label: String? = nil) throws(HostLabError) -> Ext4Filesystem {
        try FileIO.createSparse(path, size: size)
        return try make(in: ByteRegion(path: path, length: size), from: tree, label: label)
    }

    // MARK: Reading

    /// The contents of the regular file at `path`.
    /// - Throws: `HostLabError.fileNotFound`, `.badPath`, `.toolFailed` (for example when the
    ///   region holds no ext4 file system).
    public func readFile(_ path: String) throws(HostLabError) -> [UInt8] {
        try Ext4Filesystem.validate(path)
        guard let entry = try info(path) else { throw .fileNotFound(path: path, in: description) }
        guard entry.isRegularFile else { throw .invalid("\(path) in \(description) is not a regular file") }
        return try debugfs(["cat \(path)"]).stdout
    }

    /// The file at `path`, decoded as UTF-8.
    public func readText(_ path: String) throws(HostLabError) -> String {
        String(decoding: try readFile(path), as: UTF8.self)
    }

    /// The OS's os-release text, as os-release(5) says to find it: `/etc/os-release` when it is a
    /// regular file, else `/usr/lib/os-release` (which also covers the usual relative symlink
    /// `/etc/os-release -> ../usr/lib/os-release` of Debian and others).
    /// - Throws: `HostLabError.fileNotFound` naming `/etc/os-release` when neither exists.
    public func osReleaseText() throws(HostLabError) -> String {
        if let entry = try info("/etc/os-release"), entry.isRegularFile { return try readText("/etc/os-release") }
        if let entry = try info("/usr/lib/os-release"), entry.isRegularFile { return try readText("/usr/lib/os-release") }
        throw .fileNotFound(path: "/etc/os-release", in: description)
    }

    /// The entries of the directory at `path` (without `.` and `..`), sorted by name.
    /// - Throws: `HostLabError.fileNotFound` when it does not exist.
    public func list(_ path: String) throws(HostLabError) -> [Entry] {
        try Ext4Filesystem.validate(path)
        let output = try debugfs(["ls -p \(path)"], notFound: path)
        var entries: [Entry] = []
        // Lines are "/inode/mode/uid/gid/name/size/" (size empty for directories).
        for line in output.text.split(separator: "\n") where line.hasPrefix("/") {
            let fields = line.split(separator: "/", omittingEmptySubsequences: false)
            guard fields.count >= 7, let mode = UInt32(fields[2], radix: 8),
                  let uid = UInt32(fields[3]), let gid = UInt32(fields[4]) else { continue }
            let name = String(fields[5])
            guard name != ".", name != ".." else { continue }
            entries.append(Entry(name: name, mode: mode, uid: uid, gid: gid, size: UInt64(fields[6]) ?? 0))
        }
        return entries.sorted { $0.name < $1.name }
    }

    /// What `ls` says about `path`, or `nil` when it (or a directory above it) does not exist.
    public func info(_ path: String) throws(HostLabError) -> Entry? {
        try Ext4Filesystem.validate(path)
        let (parent, name) = Ext4Filesystem.split(path)
        guard let name else { return Entry(name: "/", mode: 0o40755, uid: 0, gid: 0, size: 0) }
        do {
            return try list(parent).first { $0.name == name }
        } catch .fileNotFound {
            return nil
        }
    }

    /// Whether `path` exists.
    public func exists(_ path: String) throws(HostLabError) -> Bool { try info(path) != nil }

    /// Checks the file system without changing it (`e2fsck -fn`).
    /// - Returns: `nil` when it is clean, else e2fsck's report.
    public func check() throws(HostLabError) -> String? {
        let output = try HostTool.run(["e2fsck", "-f", "-n", region.e2fsName], checked: false)
        if output.status == 0 { return nil }
        return output.text + output.stderr
    }

    /// The file system's size in bytes (block count × block size), from its superblock.
    public func size() throws(HostLabError) -> UInt64 {
        let stats = try debugfs(["stats"]).text
        func field(_ name: String) -> UInt64? {
            for line in stats.split(separator: "\n") where line.hasPrefix(name + ":") {
                return UInt64(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces))
            }
            return nil
        }
        guard let blocks = field("Block count"), let blockSize = field("Block size") else {
            throw .invalid("debugfs stats of \(description) shows no block count")
        }
        return blocks * blockSize
    }

    // MARK: Writing

    /// Writes (creates or replaces) a regular file, creating missing parent directories (0755,
    /// owned by `uid`/`gid`).
    /// - Parameters:
    ///   - path: an absolute path inside the file system.
    ///   - contents: the bytes.
    ///   - mode: the permission bits (`0o600`).
    ///   - uid: the owner, `gid`: the group (root by default).
    /// - Throws: `HostLabError.invalid` when `path` is a directory, `.badPath`, `.toolFailed`.
    public func writeFile(_ path: String, contents: [UInt8], mode: UInt32 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0) throws(HostLabError) {
        try Ext4Filesystem.validate(path)
        let (parent, name) = Ext4Filesystem.split(path)
        guard name != nil else { throw .invalid("cannot write a file over / in \(description)") }
        var commands = try directoryCommands(parent, mode: 0o755, uid: uid, gid: gid)
        if let existing = try info(path) {
            guard !existing.isDirectory else { throw .invalid("\(path) in \(description) is a directory") }
            commands.append("rm \(path)")
        }
        let staging = try StagingFile(contents: contents)
        defer { staging.remove() }
        commands += [
            "write \(staging.path) \(path)",
            "sif \(path) mode 0\(String(0o100000 | (mode & 0o7777), radix: 8))",
            "sif \(path) uid \(uid)",
            "sif \(path) gid \(gid)",
        ]
        try debugfs(commands, write: true)
    }

    /// Writes a UTF-8 text file (see `writeFile(_:contents:mode:uid:gid:)`).
    public func writeText(_ path: String, _ text: String, mode: UInt32 = 0o644, uid: UInt32 = 0, gid: UInt32 = 0) throws(HostLabError) {
        try writeFile(path, contents: Array(text.utf8), mode: mode, uid: uid, gid: gid)
    }

    /// Creates a directory and its missing parents (like `mkdir -p`); existing ones are left as
    /// they are.
    public func makeDirectory(_ path: String, mode: UInt32 = 0o755, uid: UInt32 = 0, gid: UInt32 = 0) throws(HostLabError) {
        try Ext4Filesystem.validate(path)
        let commands = try directoryCommands(path, mode: mode, uid: uid, gid: gid)
        if !commands.isEmpty { try debugfs(commands, write: true) }
    }

    /// Removes a file or symlink (or an empty directory).
    /// - Throws: `HostLabError.fileNotFound` when it does not exist.
    public func remove(_ path: String) throws(HostLabError) {
        guard let entry = try info(path) else { throw .fileNotFound(path: path, in: description) }
        try debugfs([entry.isDirectory ? "rmdir \(path)" : "rm \(path)"], write: true)
    }

    /// Changes the permission bits of an existing file or directory.
    public func setPermissions(_ path: String, _ mode: UInt32) throws(HostLabError) {
        guard let entry = try info(path) else { throw .fileNotFound(path: path, in: description) }
        let full = (entry.mode & 0o170000) | (mode & 0o7777)
        try debugfs(["sif \(path) mode 0\(String(full, radix: 8))"], write: true)
    }

    /// Creates (or replaces) a symbolic link at `path` pointing to `target`.
    public func writeSymlink(_ path: String, to target: String) throws(HostLabError) {
        try Ext4Filesystem.validate(path)
        guard !target.isEmpty, !target.unicodeScalars.contains(where: { $0.value < 0x21 || $0 == "\"" || $0 == "'" || $0 == "\\" }) else {
            throw .badPath(target)
        }
        var commands = try directoryCommands(Ext4Filesystem.split(path).parent, mode: 0o755, uid: 0, gid: 0)
        if let existing = try info(path) {
            guard !existing.isDirectory else { throw .invalid("\(path) in \(description) is a directory") }
            commands.append("rm \(path)")
        }
        commands.append("symlink \(path) \(target)")
        try debugfs(commands, write: true)
    }

    /// Copies a directory tree of this machine into the file system under `destination`, in one
    /// `debugfs -w` run: directories are created where missing, files and symlinks replaced,
    /// modes and owners taken from the source (as `cp -a` would). Other file types are refused.
    ///
    /// This is how a rendered host profile (a directory of `/etc` files) goes into an OS.
    /// - Returns: the number of files and symlinks written.
    /// - Throws: `HostLabError.invalid` when a source entry is neither a file, a directory nor a
    ///   symlink, or would replace a directory by a file; `.badPath`; `.toolFailed`.
    @discardableResult
    public func writeTree(from source: String, to destination: String = "/") throws(HostLabError) -> Int {
        try Ext4Filesystem.validate(destination)
        var commands = try directoryCommands(destination, mode: 0o755, uid: 0, gid: 0)
        // Listings of destination directories that existed before (nil: created by this run).
        var listings: [String: [String: Entry]?] = [:]
        func existing(_ path: String) throws(HostLabError) -> Entry? {
            let (parent, name) = Ext4Filesystem.split(path)
            guard let name else { return nil }
            if listings[parent] == nil {
                do {
                    listings[parent] = .some(Dictionary(uniqueKeysWithValues: try list(parent).map { ($0.name, $0) }))
                } catch .fileNotFound {
                    listings[parent] = .some(nil)
                }
            }
            return listings[parent]!.flatMap { $0[name] }
        }
        var staged: [StagingFile] = []
        defer { for file in staged { file.remove() } }
        var written = 0
        let base = destination == "/" ? "" : destination
        guard directoryExists(source) else { throw .fileNotFound(path: source, in: "this machine") }
        // Sorted, so every directory comes before what is in it.
        let relatives = ((try? FileManager.default.subpathsOfDirectory(atPath: source)) ?? []).sorted()
        for relative in relatives {
            let from = source + "/" + relative
            let to = base + "/" + relative
            try Ext4Filesystem.validate(to)
            var info = stat()
            guard lstat(from, &info) == 0 else { throw .errno("lstat \(from)") }
            let mode = UInt32(info.st_mode) & 0o7777
            let old = try existing(to)
            switch info.st_mode & S_IFMT {
            case S_IFDIR:
                if let old {
                    guard old.isDirectory else { throw .invalid("\(to) in \(description) is not a directory") }
                    commands.append("sif \(to) mode 0\(String(0o040000 | mode, radix: 8))")
                } else {
                    commands.append("mkdir \(to)")
                    commands.append("sif \(to) mode 0\(String(0o040000 | mode, radix: 8))")
                    listings[to] = .some([:])  // new and empty: no need to list it
                }
            case S_IFREG, S_IFLNK:
                if let old {
                    guard !old.isDirectory else { throw .invalid("\(to) in \(description) is a directory") }
                    commands.append("rm \(to)")
                }
                if info.st_mode & S_IFMT == S_IFLNK {
                    guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: from),
                          !target.isEmpty, !target.unicodeScalars.contains(where: { $0.value < 0x21 || $0 == "\"" || $0 == "'" || $0 == "\\" })
                    else { throw .badPath("symlink \(from)") }
                    commands.append("symlink \(to) \(target)")
                } else {
                    guard let data = FileManager.default.contents(atPath: from) else { throw .errno("read \(from)") }
                    let file = try StagingFile(contents: Array(data))
                    staged.append(file)
                    commands.append("write \(file.path) \(to)")
                    commands.append("sif \(to) mode 0\(String(0o100000 | mode, radix: 8))")
                }
                written += 1
            default:
                throw .invalid("\(from) is neither a file, a directory nor a symlink")
            }
            if info.st_mode & S_IFMT != S_IFLNK {
                commands.append("sif \(to) uid \(info.st_uid)")
                commands.append("sif \(to) gid \(info.st_gid)")
            }
        }
        if !commands.isEmpty { try debugfs(commands, write: true) }
        return written
    }

    private func directoryExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Grows the file system to fill `target` (normally the same partition after
    /// `DiskImage.growPartition`), as `resize2fs` does after `growpart`.
    ///
    /// resize2fs cannot be pointed at `FILE?offset=N`: on a regular file it sets the file's size
    /// to the new file system size, ignoring the offset, which would cut the disk image. So the
    /// file system is checked and resized in a sparse temporary copy, which is copied back.
    /// - Returns: the file system in `target`.
    /// - Throws: `HostLabError.doesNotFit` when `target` is smaller, `.toolFailed`.
    @discardableResult
    public func grow(into target: ByteRegion) throws(HostLabError) -> Ext4Filesystem {
        guard target.length >= region.length else { throw .doesNotFit("\(description) into the smaller \(target)") }
        let scratch = try StagingFile(contents: [])
        defer { scratch.remove() }
        try FileIO.createSparse(scratch.path, size: target.length)
        let copy = ByteRegion(path: scratch.path, length: target.length)
        try region.copy(to: copy)
        // resize2fs insists on a freshly checked file system; -p repairs only what is safe.
        let fsck = try HostTool.run(["e2fsck", "-f", "-p", scratch.path], checked: false)
        guard fsck.status <= 1 else {
            throw .toolFailed(command: "e2fsck -f -p (before resize of \(description))", status: fsck.status, stderr: fsck.text + fsck.stderr)
        }
        try HostTool.run(["resize2fs", scratch.path, "\((target.length / 4096) * 4)k"])
        try copy.copy(to: target)
        return Ext4Filesystem(region: target)
    }

    // MARK: debugfs

    /// Runs debugfs requests against the region; `write` opens it read-write.
    @discardableResult
    private func debugfs(_ requests: [String], write: Bool = false, notFound: String? = nil) throws(HostLabError) -> HostTool.Output {
        var argv = ["debugfs"]
        if write { argv.append("-w") }
        let output: HostTool.Output
        if requests.count == 1 && !write {
            argv += ["-R", requests[0], region.e2fsName]
            output = try HostTool.run(argv, checked: false)
        } else {
            argv += ["-f", "-", region.e2fsName]
            output = try HostTool.run(argv, input: Array((requests.joined(separator: "\n") + "\n").utf8), checked: false)
        }
        let problems = output.stderr.split(separator: "\n").filter { !$0.hasPrefix("debugfs ") && !$0.isEmpty }
        guard output.status != 0 || !problems.isEmpty else { return output }
        if let notFound, problems.contains(where: { $0.contains("File not found by ext2_lookup") }) {
            throw .fileNotFound(path: notFound, in: description)
        }
        let shown = requests.count == 1 ? requests[0] : "\(requests.count) requests"
        throw .toolFailed(command: "debugfs \(write ? "-w " : "")(\(shown)) on \(region.e2fsName)", status: output.status, stderr: problems.joined(separator: "\n"))
    }

    /// The debugfs commands creating the missing directories of `path` (parents first).
    private func directoryCommands(_ path: String, mode: UInt32, uid: UInt32, gid: UInt32) throws(HostLabError) -> [String] {
        let components = path.split(separator: "/").map(String.init)
        var commands: [String] = []
        var current = ""
        var missing = false
        for component in components {
            current += "/" + component
            if !missing {
                if let entry = try info(current) {
                    guard entry.isDirectory else { throw .invalid("\(current) in \(description) is not a directory") }
                    continue
                }
                missing = true
            }
            commands += [
                "mkdir \(current)",
                "sif \(current) mode 0\(String(0o040000 | (mode & 0o7777), radix: 8))",
                "sif \(current) uid \(uid)",
                "sif \(current) gid \(gid)",
            ]
        }
        return commands
    }

    /// Paths debugfs can take as one argument: absolute, no whitespace, quotes, backslashes or
    /// control characters, no `.`/`..` components.
    static func validate(_ path: String) throws(HostLabError) {
        guard path.hasPrefix("/"), path.utf8.count < 4096,
              !path.unicodeScalars.contains(where: { $0.value < 0x21 || $0 == "\"" || $0 == "'" || $0 == "\\" || $0.value == 0x7f }),
              !path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." })
        else { throw .badPath(path) }
    }

    /// `/etc/ssh/key` → (`/etc/ssh`, `key`); `/` → (`/`, nil).
    static func split(_ path: String) -> (parent: String, name: String?) {
        let components = path.split(separator: "/")
        guard let last = components.last else { return ("/", nil) }
        return ("/" + components.dropLast().joined(separator: "/"), String(last))
    }
}

/// A file in a private temporary directory (for debugfs `write` and resize copies).
struct StagingFile {
    let directory: String
    let path: String

    init(contents: [UInt8]) throws(HostLabError) {
        var template = Array("/tmp/shoal-hostlab-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw .errno("mkdtemp /tmp")
        }
        directory = String(cString: made)
        path = directory + "/data"
        let fd = try FileIO.open(path, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
        defer { close(fd) }
        try FileIO.pwriteFully(fd, contents[...], offset: 0, path: path)
    }

    func remove() {
        unlink(path)
        rmdir(directory)
    }
}
