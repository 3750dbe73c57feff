#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import ShoalHostProfile

/// Writes rendered profile files into a mounted file system, as docs/HOST-PROFILE.md's writer
/// contract says: every path is resolved component by component from the tree's root with
/// `O_NOFOLLOW` (a symbolic link in a parent — `/etc -> /host/etc`, absolute or not — is refused,
/// so nothing is ever written outside the tree, and never onto the running system); missing
/// parents are made 0755 root; the file is written to a temporary name, given its exact mode,
/// owner and group (`fchmod`/`fchown`, not the umask), fsynced, renamed over what was there (a
/// symbolic link at the final name is replaced, not followed), and the directory fsynced.
public struct LinuxTreeWriter: Sendable {
    /// The tree's root (a mount point).
    public let root: String

    public init(root: String) { self.root = root }

    /// Why a write into the tree failed.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    static func fail(_ what: String, _ path: String, _ code: Int32 = errno) -> Failure {
        Failure(description: "\(what) \(path): \(String(cString: strerror(code)))")
    }

    /// Writes one rendered file (file, directory or symbolic link).
    public func write(_ file: RenderedFile) throws {
        let (dir, name) = try openParent(of: file.path, create: true)
        defer { close(dir) }
        let uid = uid_t(file.uid ?? 0), gid = gid_t(file.gid ?? 0)
        let mode = mode_t(file.mode & 0o7777)
        switch file.kind {
        case .directory:
            if mkdirat(dir, name, 0o700) != 0 && errno != EEXIST { throw Self.fail("mkdir", file.path) }
            let fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard fd >= 0 else { throw Self.fail("open directory", file.path) }
            defer { close(fd) }
            guard fchown(fd, uid, gid) == 0, fchmod(fd, mode) == 0 else { throw Self.fail("chown/chmod", file.path) }
        case .symlink(let target):
            let tmp = ".\(name).shoal-tmp"
            unlinkat(dir, tmp, 0)
            guard symlinkat(target, dir, tmp) == 0 else { throw Self.fail("symlink", file.path) }
            guard fchownat(dir, tmp, uid, gid, AT_SYMLINK_NOFOLLOW) == 0 else { throw Self.fail("chown", file.path) }
            guard renameat(dir, tmp, dir, name) == 0 else { throw Self.fail("rename", file.path) }
            fsync(dir)
        case .file:
            try writeBytes(Array(file.contents), dir: dir, name: name, path: file.path, mode: mode, uid: uid, gid: gid)
        }
    }

    /// Writes `bytes` at `path` in the tree with the given mode and owner (atomically, as ``write(_:)``).
    public func writeFile(_ path: String, _ bytes: [UInt8], mode: UInt32, uid: UInt32 = 0, gid: UInt32 = 0) throws {
        let (dir, name) = try openParent(of: path, create: true)
        defer { close(dir) }
        try writeBytes(bytes, dir: dir, name: name, path: path, mode: mode_t(mode & 0o7777), uid: uid_t(uid), gid: gid_t(gid))
    }

    /// Removes the file or link at `path` (not a directory); nothing when it is not there.
    public func remove(_ path: String) throws {
        let (dir, name) = try openParent(of: path, create: false)
        defer { close(dir) }
        if unlinkat(dir, name, 0) != 0 && errno != ENOENT { throw Self.fail("unlink", path) }
        fsync(dir)
    }

    private func writeBytes(_ bytes: [UInt8], dir: Int32, name: String, path: String, mode: mode_t, uid: uid_t, gid: gid_t) throws {
        let tmp = ".\(name).shoal-tmp"
        unlinkat(dir, tmp, 0)
        let fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Self.fail("create", path) }
        var ok = false
        defer {
            close(fd)
            if !ok { unlinkat(dir, tmp, 0) }
        }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Self.fail("write", path) }
            done += n
        }
        guard fchown(fd, uid, gid) == 0 else { throw Self.fail("chown", path) }
        guard fchmod(fd, mode) == 0 else { throw Self.fail("chmod", path) }
        guard fsync(fd) == 0 else { throw Self.fail("fsync", path) }
        guard renameat(dir, tmp, dir, name) == 0 else { throw Self.fail("rename", path) }
        ok = true
        fsync(dir)
    }

    /// Opens the directory that holds `path` (absolute in the tree) without following any link,
    /// making missing directories 0755 root when `create`.
    func openParent(of path: String, create: Bool) throws -> (Int32, String) {
        let parts = path.split(separator: "/").map(String.init)
        guard path.hasPrefix("/"), let name = parts.last, !parts.contains(".."), !parts.contains(".") else {
            throw Failure(description: "bad path in tree: '\(path)'")
        }
        var dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw Self.fail("open", root) }
        var walked = ""
        for part in parts.dropLast() {
            walked += "/" + part
            var next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if next < 0 && errno == ENOENT && create {
                if mkdirat(dir, part, 0o755) != 0 && errno != EEXIST { let e = errno; close(dir); throw Self.fail("mkdir", walked, e) }
                next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if next >= 0 { _ = fchown(next, 0, 0); _ = fchmod(next, 0o755) }
            }
            let e = errno
            close(dir)
            guard next >= 0 else {
                if e == ELOOP || e == ENOTDIR {
                    throw Failure(description: "refusing to write \(path): \(walked) in the target is a symbolic link or not a directory")
                }
                throw Self.fail("open", walked, e)
            }
            dir = next
        }
        return (dir, name)
    }
}
