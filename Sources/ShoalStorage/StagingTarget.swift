import Foundation
import Glibc

/// Where an image is written: a regular file or a block device, opened for exclusive use.
///
/// Two descriptors: `directFD` (O_DIRECT, for aligned writes that bypass the page cache, nil
/// where the file system refuses O_DIRECT, e.g. tmpfs) and `bufferedFD` (for unaligned tails
/// and fallbacks). Both refer to the same file, so one `fdatasync` covers all writes.
public final class StagingTarget: @unchecked Sendable {
    // Invariant: descriptors are fixed after init; pwrite/pread/fallocate on them are thread-safe.
    public enum Kind: String, Sendable { case regularFile = "file", blockDevice = "block device" }

    public let path: String
    public let kind: Kind
    public let directFD: Int32?
    public let bufferedFD: Int32
    /// Alignment required for O_DIRECT offsets and lengths.
    public let alignment: Int
    /// Identity recorded in the resume log: (st_dev, st_ino) for files, (st_rdev, 0) for devices.
    public let identity: (UInt64, UInt64)
    /// Whether the target existed before this run (a new file is known to be all holes).
    public let existed: Bool

    /// Opens (creating a file if needed) and sizes a target for an image of `imageSize` bytes.
    /// - Throws: `StorageError.targetInUse` when mounted, exclusively opened elsewhere, locked by
    ///   another shoal, or backing a loop device; `.targetTooSmall`; `.badTarget` for other file types.
    public init(path: String, imageSize: UInt64, useDirectIO: Bool = true) throws {
        var st = stat()
        let exists = stat(path, &st) == 0
        let opened: Opened
        if exists && (st.st_mode & S_IFMT) == S_IFBLK {
            opened = try StagingTarget.openBlockDevice(path, st: st, imageSize: imageSize, useDirectIO: useDirectIO)
        } else if !exists || (st.st_mode & S_IFMT) == S_IFREG {
            opened = try StagingTarget.openFile(path, st: exists ? st : nil, imageSize: imageSize, useDirectIO: useDirectIO)
        } else {
            throw StorageError.badTarget("\(path) is neither a regular file nor a block device")
        }
        self.path = path
        self.existed = exists
        self.kind = opened.kind
        self.directFD = opened.direct
        self.bufferedFD = opened.buffered
        self.alignment = opened.alignment
        self.identity = opened.identity
    }

    private struct Opened {
        var kind: Kind
        var direct: Int32?
        var buffered: Int32
        var alignment: Int
        var identity: (UInt64, UInt64)
    }

    private static func openBlockDevice(_ path: String, st: stat, imageSize: UInt64, useDirectIO: Bool) throws -> Opened {
        if let mount = mountPoint(ofDevice: st.st_rdev) {
            throw StorageError.targetInUse("\(path) is mounted at \(mount)")
        }
        let busy = StorageError.targetInUse("\(path) is busy: mounted, or in use by another program")
        // O_EXCL on a block device claims it: the open fails with EBUSY when it (or one of
        // its partitions) is mounted or claimed by another program (device mapper, RAID, ...).
        var direct: Int32? = nil
        if useDirectIO {
            let fd = Glibc.open(path, O_RDWR | O_EXCL | CShoalNativeBridge.oDirect | O_CLOEXEC)
            if fd < 0 && errno == EBUSY { throw busy }
            direct = fd >= 0 ? fd : nil
        }
        let fd = Glibc.open(path, (direct == nil ? O_RDWR | O_EXCL : O_RDWR) | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            if let direct { Posix.close(direct) }
            throw code == EBUSY ? busy : StorageError.errno("open \(path)", code)
        }
        var size: UInt64 = 0
        var failure: StorageError? = nil
        if CShoalNativeBridge.blockDeviceSize(fd, &size) != 0 {
            failure = StorageError.errno("BLKGETSIZE64 \(path)")
        } else if size < imageSize {
            failure = StorageError.targetTooSmall("\(path) holds \(size) bytes, the image needs \(imageSize)")
        }
        if let failure {
            Posix.close(fd)
            if let direct { Posix.close(direct) }
            throw failure
        }
        let alignment = max(512, CShoalNativeBridge.logicalSectorSize(fd) ?? 512)
        return Opened(kind: .blockDevice, direct: direct, buffered: fd, alignment: alignment, identity: (UInt64(st.st_rdev), 0))
    }

    private static func openFile(_ path: String, st: stat?, imageSize: UInt64, useDirectIO: Bool) throws -> Opened {
        if let st, let loop = loopDevice(backedBy: st) {
            throw StorageError.targetInUse("\(path) backs the loop device \(loop); detach it first (losetup -d \(loop))")
        }
        let fd = try Posix.open(path, O_RDWR | O_CREAT, 0o644)
        if !Posix.lockExclusive(fd) {
            Posix.close(fd)
            throw StorageError.targetInUse("\(path) is locked by another shoal process")
        }
        var fst = stat()
        _ = fstat(fd, &fst)
        if fst.st_size != off_t(imageSize), ftruncate(fd, off_t(imageSize)) != 0 {
            let code = errno
            Posix.close(fd)
            if code == EFBIG || code == ENOSPC {
                throw StorageError.targetTooSmall("the file system of \(path) cannot hold a file of \(imageSize) bytes")
            }
            throw StorageError.errno("ftruncate \(path) to \(imageSize) bytes", code)
        }
        var direct: Int32? = nil
        if useDirectIO {
            let dfd = Glibc.open(path, O_WRONLY | CShoalNativeBridge.oDirect | O_CLOEXEC)
            direct = dfd >= 0 ? dfd : nil
        }
        return Opened(kind: .regularFile, direct: direct, buffered: fd, alignment: 4096, identity: (UInt64(fst.st_dev), UInt64(fst.st_ino)))
    }

    private let closeLock = NSLock()
    private var closed = false

    /// Closes the descriptors now, releasing the exclusive claim (flock / O_EXCL), instead of
    /// whenever the last reference goes (the staging writer's threads may hold one for a moment
    /// after `finish()` returned). Idempotent; the target must not be used afterwards.
    public func close() {
        let first = closeLock.withLock { () -> Bool in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        if let directFD { Posix.close(directFD) }
        Posix.close(bufferedFD)
    }

    deinit { close() }

    /// Where the resume log lives by default: next to a file target; under
    /// `/var/lib/shoal/apply/` for a block device (whose directory, /dev, is not persistent).
    public static func defaultResumePath(forTarget path: String, isBlockDevice: Bool) -> String {
        if isBlockDevice {
            let name = path.split(separator: "/").joined(separator: "_")
            return "/var/lib/shoal/apply/\(name).shoal-resume"
        }
        return path + ".shoal-resume"
    }

    public static func isBlockDevice(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFBLK
    }

    /// Flushes all written data of the target to stable storage.
    public func sync() throws {
        try Posix.fdatasync(bufferedFD, path: path)
    }

    /// The mount point of the device `rdev`, from /proc/self/mountinfo.
    static func mountPoint(ofDevice rdev: dev_t) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        let want = "\(CShoalNativeBridge.major(rdev)):\(CShoalNativeBridge.minor(rdev))"
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count > 4, fields[2] == want { return String(fields[4]) }
        }
        return nil
    }

    /// The loop device whose backing file is the file described by `st`, if any.
    static func loopDevice(backedBy st: stat) -> String? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/sys/block") else { return nil }
        for name in entries where name.hasPrefix("loop") {
            guard let backing = try? String(contentsOfFile: "/sys/block/\(name)/loop/backing_file", encoding: .utf8) else { continue }
            var bst = stat()
            let file = backing.trimmingCharacters(in: .whitespacesAndNewlines)
            if stat(file, &bst) == 0, bst.st_dev == st.st_dev, bst.st_ino == st.st_ino { return "/dev/\(name)" }
        }
        return nil
    }
}
