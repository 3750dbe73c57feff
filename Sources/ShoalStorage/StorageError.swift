import Foundation
import Glibc
import ShoalBundle

/// A failure of the staging path that is not about the bundle's contents.
public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed. `operation` names it (with the path), `errno` says why.
    case system(operation: String, errno: Int32)
    /// The target is mounted, opened exclusively by someone else, or backs a loop device.
    case targetInUse(String)
    /// The target cannot hold the image.
    case targetTooSmall(String)
    /// The target is not a regular file or a block device, or cannot be used.
    case badTarget(String)
    /// The file system or device ran out of space; progress so far is kept.
    case noSpace(String)
    /// The resume file is unusable (for example it belongs to another bundle).
    case resumeConflict(String)
    /// Stopped on request (SIGINT/SIGTERM); what was synced is kept for the next run.
    case interrupted(String)

    public var description: String {
        switch self {
        case .system(let op, let e):
            return "\(op): \(String(cString: strerror(e))) (errno \(e))"
        case .targetInUse(let s): return "target in use: \(s)"
        case .targetTooSmall(let s): return "target too small: \(s)"
        case .badTarget(let s): return "unusable target: \(s)"
        case .noSpace(let s): return "no space left: \(s)"
        case .resumeConflict(let s): return "resume file conflict: \(s)"
        case .interrupted(let s): return "interrupted: \(s)"
        }
    }

    /// Process exit code used by the `shoal` tool.
    public var exitCode: Int32 {
        switch self {
        case .system(_, let e) where e == ENOSPC: return 24
        case .system: return 20
        case .targetInUse: return 21
        case .targetTooSmall: return 22
        case .badTarget: return 23
        case .noSpace: return 24
        case .resumeConflict: return 25
        case .interrupted: return 130
        }
    }

    static func errno(_ operation: String, _ code: Int32 = Glibc.errno) -> StorageError {
        code == ENOSPC ? .noSpace(operation) : .system(operation: operation, errno: code)
    }
}

/// Thin, EINTR-safe wrappers over the few POSIX calls the staging path uses.
enum Posix {
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0o644) throws(StorageError) -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw .errno("open \(path)") }
        }
    }

    /// Takes an exclusive `flock` on `fd`, retrying for up to `patience` seconds. A lock that
    /// is still held then belongs to another process using the file. The retries cover a
    /// process spawned elsewhere in this program at the moment our previous descriptor of the
    /// same file was closed: between its fork and exec the child still shares that open file
    /// description, and with it the lock.
    static func lockExclusive(_ fd: Int32, patience: Double = 1) -> Bool {
        let deadline = Date().addingTimeInterval(patience)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, Date() < deadline else { return false }
            usleep(5_000)
        }
        return true
    }

    static func fstat(_ fd: Int32, path: String) throws(StorageError) -> stat {
        var st = stat()
        guard Glibc.fstat(fd, &st) == 0 else { throw .errno("fstat \(path)") }
        return st
    }

    /// Reads exactly `count` bytes at `offset`; a short read (end of file) is an error of its own.
    static func preadFully(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, count: Int, offset: UInt64, path: String) throws(StorageError) -> Int {
        var done = 0
        while done < count {
            let n = Glibc.pread(fd, buffer + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .errno("read \(path) at \(offset + UInt64(done))")
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    static func pwriteFully(_ fd: Int32, _ buffer: UnsafeRawPointer, count: Int, offset: UInt64, path: String) throws(StorageError) {
        var done = 0
        while done < count {
            let n = Glibc.pwrite(fd, buffer + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .errno("write \(path) at \(offset + UInt64(done))")
            }
            done += n
        }
    }

    static func fdatasync(_ fd: Int32, path: String) throws(StorageError) {
        while Glibc.fdatasync(fd) != 0 {
            if errno != EINTR { throw .errno("fdatasync \(path)") }
        }
    }

    static func fsync(_ fd: Int32, path: String) throws(StorageError) {
        while Glibc.fsync(fd) != 0 {
            if errno != EINTR { throw .errno("fsync \(path)") }
        }
    }

    /// fsync of the directory that holds `path`, so a rename or create in it is durable.
    static func fsyncDirectory(of path: String) {
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let fd = Glibc.open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = Glibc.fsync(fd)
            Glibc.close(fd)
        }
    }

    static func close(_ fd: Int32) {
        // Linux closes the descriptor even when close() reports EINTR; never retry.
        _ = Glibc.close(fd)
    }
}

/// A page-aligned buffer for O_DIRECT, mapped with mmap and unmapped on deinit.
///
/// mmap rather than malloc: region buffers are megabytes, and glibc's allocator raises its mmap
/// threshold after the first free of such a block, after which freed buffers stay in the heap
/// and per-thread arenas. Mapping them directly keeps resident memory equal to what is in use.
public final class AlignedBuffer: @unchecked Sendable {
    // Invariant: one owner at a time (the staging pipeline hands buffers between threads
    // through locked queues), so unsynchronised access to the bytes is safe.
    public let pointer: UnsafeMutableRawPointer
    public let capacity: Int
    public static let alignment = 4096

    public init(capacity: Int) {
        let rounded = max(AlignedBuffer.alignment, (capacity + AlignedBuffer.alignment - 1) / AlignedBuffer.alignment * AlignedBuffer.alignment)
        let p = mmap(nil, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        precondition(p != MAP_FAILED && p != nil, "mmap(\(rounded)) failed: out of memory")
        self.pointer = p!
        self.capacity = rounded
    }

    deinit { munmap(pointer, capacity) }

    public func bytes(count: Int) -> UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: pointer, count: count) }
}
