#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// A byte range of a file: a whole image file, or one partition inside a disk image.
///
/// Everything in this module works on regions of plain files at byte offsets, so no root, loop
/// device or mount is needed: e2fsprogs take `FILE?offset=N`, and copies use `pread`/`pwrite`.
public struct ByteRegion: Sendable, Hashable, CustomStringConvertible {
    /// The file that holds the region.
    public var path: String
    /// Where the region starts in the file, in bytes.
    public var offset: UInt64
    /// How long it is, in bytes.
    public var length: UInt64

    public init(path: String, offset: UInt64 = 0, length: UInt64) {
        self.path = path
        self.offset = offset
        self.length = length
    }

    /// The whole file at `path` (its current size).
    /// - Throws: `HostLabError.system` when the file cannot be examined.
    public static func wholeFile(_ path: String) throws(HostLabError) -> ByteRegion {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .errno("stat \(path)") }
        return ByteRegion(path: path, offset: 0, length: UInt64(info.st_size))
    }

    /// The name e2fsprogs open the region by: the path, plus `?offset=N` when it does not start at 0.
    public var e2fsName: String { offset == 0 ? path : "\(path)?offset=\(offset)" }

    public var description: String { offset == 0 ? "\(path) (\(length) bytes)" : "\(path) @\(offset)+\(length)" }

    /// Makes the whole region read as zeros, keeping the file sparse where the file system can
    /// punch holes (falls back to writing zeros).
    /// - Throws: `HostLabError.system`.
    public func zero() throws(HostLabError) {
        let fd = try FileIO.open(path, O_RDWR)
        defer { close(fd) }
        try FileIO.zero(fd, offset: offset, length: length, path: path)
    }

    /// Copies the region's bytes to `destination` (which must be at least as long), sparsely:
    /// holes and all-zero blocks of the source become holes in the destination.
    /// - Parameters:
    ///   - destination: where to copy to; bytes of it past this region's length are zeroed.
    /// - Returns: the number of non-zero bytes written.
    /// - Throws: `HostLabError.doesNotFit` when the destination is shorter; `.system`.
    @discardableResult
    public func copy(to destination: ByteRegion) throws(HostLabError) -> UInt64 {
        guard destination.length >= length else {
            throw .doesNotFit("\(self) into \(destination)")
        }
        let input = try FileIO.open(path, O_RDONLY)
        defer { close(input) }
        let output = try FileIO.open(destination.path, O_RDWR)
        defer { close(output) }
        try FileIO.zero(output, offset: destination.offset, length: destination.length, path: destination.path)
        let written = try FileIO.copyData(
            from: input, offset: offset, length: length, to: output, at: destination.offset, path: path)
        guard fsync(output) == 0 else { throw .errno("fsync \(destination.path)") }
        return written
    }

    /// The region's bytes (for small regions only: tests and checks).
    /// - Throws: `HostLabError.system`.
    public func read() throws(HostLabError) -> [UInt8] {
        let fd = try FileIO.open(path, O_RDONLY)
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        try FileIO.preadFully(fd, &bytes, offset: offset, path: path)
        return bytes
    }
}

/// The few file calls the regions need, EINTR-safe, with errors that name the file.
enum FileIO {
    static func open(_ path: String, _ flags: Int32, mode: mode_t = 0o644) throws(HostLabError) -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 { return fd }
            if errno != EINTR { throw .errno("open \(path)") }
        }
    }

    /// Creates (or truncates) a sparse file of `size` bytes.
    static func createSparse(_ path: String, size: UInt64) throws(HostLabError) {
        let fd = try open(path, O_RDWR | O_CREAT | O_TRUNC)
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else { throw .errno("truncate \(path) to \(size)") }
    }

    static func size(of path: String) throws(HostLabError) -> UInt64 {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .errno("stat \(path)") }
        return UInt64(info.st_size)
    }

    static func preadFully(_ fd: Int32, _ bytes: inout [UInt8], offset: UInt64, path: String) throws(HostLabError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .errno("read \(path)") }
            // Past the end of the file (a sparse tail not yet materialised) reads as zeros.
            if n == 0 { for i in done..<bytes.count { bytes[i] = 0 }; return }
            done += n
        }
    }

    static func pwriteFully(_ fd: Int32, _ bytes: ArraySlice<UInt8>, offset: UInt64, path: String) throws(HostLabError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, $0.count - done, off_t(offset) + off_t(done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .errno("write \(path)") }
            done += n
        }
    }

    // FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE (linux/falloc.h; not exported by the Glibc module).
    private static let punchHole: Int32 = 0x01 | 0x02
    // lseek whences from <unistd.h> under _GNU_SOURCE, which Swift's Glibc module lacks (Linux values).
    static let seekData: Int32 = 3
    static let seekHole: Int32 = 4

    typealias Fallocate = @convention(c) (Int32, Int32, off_t, off_t) -> Int32
    /// glibc's `fallocate`, declared only under _GNU_SOURCE, so looked up at run time (this
    /// module has no C target of its own; `nil` falls back to writing zeros).
    private static let fallocate: Fallocate? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "fallocate") else { return nil }
        return unsafeBitCast(symbol, to: Fallocate.self)
    }()

    /// Zeroes `length` bytes at `offset`: punches a hole, or writes zeros where that is not supported.
    static func zero(_ fd: Int32, offset: UInt64, length: UInt64, path: String) throws(HostLabError) {
        guard length > 0 else { return }
        if let fallocate {
            if fallocate(fd, punchHole, off_t(offset), off_t(length)) == 0 { return }
            guard errno == EOPNOTSUPP || errno == ENOSYS else { throw .errno("punch hole in \(path)") }
        }
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var position = offset
        while position < offset + length {
            let n = Int(min(UInt64(zeros.count), offset + length - position))
            try pwriteFully(fd, zeros[0..<n], offset: position, path: path)
            position += UInt64(n)
        }
    }

    /// Copies the data of `input[offset..<offset+length]` to `output` at `at`, skipping holes
    /// (found with SEEK_DATA/SEEK_HOLE) and all-zero 64 KiB blocks. The destination range must
    /// already read as zeros. Returns the bytes written.
    static func copyData(
        from input: Int32, offset: UInt64, length: UInt64, to output: Int32, at destination: UInt64, path: String
    ) throws(HostLabError) -> UInt64 {
        let end = offset + length
        let block = 1 << 16
        var buffer = [UInt8](repeating: 0, count: block)
        var written: UInt64 = 0
        var position = offset
        while position < end {
            // Next data extent; files without SEEK_DATA support are copied as one extent.
            var dataStart = lseek(input, off_t(position), seekData)
            if dataStart < 0 {
                if errno == ENXIO { break }
                dataStart = off_t(position)
            }
            if UInt64(dataStart) >= end { break }
            var dataEnd = lseek(input, dataStart, seekHole)
            if dataEnd < 0 { dataEnd = off_t(end) }
            let stop = min(UInt64(dataEnd), end)
            var cursor = UInt64(dataStart)
            while cursor < stop {
                let n = Int(min(UInt64(block), stop - cursor))
                if buffer.count != n { buffer = [UInt8](repeating: 0, count: n) }
                try preadFully(input, &buffer, offset: cursor, path: path)
                if buffer.contains(where: { $0 != 0 }) {
                    try pwriteFully(output, buffer[...], offset: destination + (cursor - offset), path: path)
                    written += UInt64(n)
                }
                cursor += UInt64(n)
            }
            position = stop
        }
        return written
    }
}
