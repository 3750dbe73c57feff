import Foundation
import Glibc
import ShoalBundle
import ShoalCrypto

/// A peer's packed chunk store for one bundle: the bundle file itself, filled in as chunks arrive.
///
/// The file `DIR/<bundle id>.shoal` is laid out exactly like the bundle (header, frames at their
/// offsets, manifest, seek table) from the start, with holes where chunks are still missing; its
/// have-bitmap is `DIR/<bundle id>.have` (a `ResumeLog`: A/B slots, checksummed). Once every chunk
/// is in, the store *is* the bundle: `BundleFile`, `bundle apply` and stock `zstd -d` read it, and
/// it stays for later reinstall and reversal.
///
/// Every chunk is checked against the signed manifest before it is written and again before it
/// is served. Thread-safe.
public final class ChunkStore: @unchecked Sendable {
    // Invariant: `have`, `unsynced` and the log are guarded by `lock`; the descriptor is only used
    // with pread/pwrite/fdatasync, which are thread-safe.
    public let manifest: SignedManifest
    public let bundleID: Digest
    public let path: String
    private let fd: Int32
    private let log: ResumeLog
    private let lock = NSLock()
    private var have: [Bool]
    private var unsynced: [Int] = []
    private var unsyncedBytes = 0
    /// Chunks are recorded as held after an fdatasync, at least every this many bytes.
    public var syncEveryBytes = 64 << 20

    /// Opens (or creates) the store for `manifest` under `directory`.
    public init(directory: String, manifest: SignedManifest) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.manifest = manifest
        self.bundleID = manifest.bundleID
        let path = directory + "/" + manifest.bundleID.hex + ".shoal"
        self.path = path
        let m = manifest.manifest
        let manifestFrame = manifest.encodedFrame()
        let table = BundleLayout.seekTable(for: m, manifestFrameLength: manifestFrame.count).encoded()
        let manifestOffset = UInt64(BundleLayout.headerFrameSize) + m.storedSize
        let total = manifestOffset + UInt64(manifestFrame.count) + UInt64(table.count)
        let fd = try Posix.open(path, O_RDWR | O_CREAT, 0o644)
        do {
            if !Posix.lockExclusive(fd) { throw StorageError.targetInUse("\(path) is used by another shoal process") }
            var st = try Posix.fstat(fd, path: path)
            if st.st_size != off_t(total) {
                guard ftruncate(fd, off_t(total)) == 0 else { throw StorageError.errno("ftruncate \(path)") }
            }
            // The frame skeleton is known from the manifest alone: write it now, so that a complete
            // store is a complete bundle file.
            for (bytes, offset) in [(BundleLayout.headerFrame(fileLength: total), UInt64(0)), (manifestFrame, manifestOffset), (table, manifestOffset + UInt64(manifestFrame.count))] {
                try bytes.withUnsafeBytes { try Posix.pwriteFully(fd, $0.baseAddress!, count: $0.count, offset: offset, path: path) }
            }
            try Posix.fdatasync(fd, path: path)
            st = try Posix.fstat(fd, path: path)
            self.log = try ResumeLog(path: directory + "/" + manifest.bundleID.hex + ".have", bundleID: manifest.bundleID,
                                     frameCount: m.frames.count, targetIdentity: (UInt64(st.st_dev), UInt64(st.st_ino)))
        } catch {
            Posix.close(fd)
            throw error
        }
        self.fd = fd
        self.have = log.done
    }

    deinit {
        try? sync()
        Posix.close(fd)
    }

    public var chunkCount: Int { manifest.manifest.frames.count }

    public func has(_ index: Int) -> Bool { lock.withLock { index >= 0 && index < have.count && have[index] } }

    /// Indices held (written; durable after the next sync).
    public var held: [Int] { lock.withLock { have.indices.filter { have[$0] } } }

    public var heldCount: Int { lock.withLock { have.reduce(0) { $0 + ($1 ? 1 : 0) } } }

    public var isComplete: Bool { heldCount == chunkCount }

    /// Checks and stores chunk `index`.
    /// - Returns: false if it was already held.
    /// - Throws: `BundleError.chunkMismatch` (nothing written) or a storage error.
    /// - Parameter checked: a proof from `verifyStoredChunk` for exactly these bytes, when the
    ///   caller already checked them; the bytes are hashed otherwise.
    @discardableResult
    public func put(_ index: Int, _ bytes: UnsafeRawBufferPointer, checked: CheckedChunk? = nil) throws -> Bool {
        let m = manifest.manifest
        if !(checked?.covers(bytes, index: index) ?? false) {
            try verifyStoredChunk(bytes, index: index, manifest: m)
        }
        if has(index) { return false }
        try Posix.pwriteFully(fd, bytes.baseAddress!, count: bytes.count, offset: m.frames[index].offset, path: path)
        let shouldSync: Bool = lock.withLock {
            guard !have[index] else { return false }
            have[index] = true
            unsynced.append(index)
            unsyncedBytes += bytes.count
            return unsyncedBytes >= syncEveryBytes
        }
        if shouldSync { try sync() }
        return true
    }

    public func put(_ index: Int, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { _ = try put(index, $0) }
    }

    /// Makes held chunks durable and records them in the have-bitmap.
    public func sync() throws {
        let pending: [Int] = lock.withLock {
            let p = unsynced
            unsynced.removeAll()
            unsyncedBytes = 0
            return p
        }
        guard !pending.isEmpty else { return }
        try Posix.fdatasync(fd, path: path)
        try lock.withLock { try log.markDone(pending) }
    }

    /// Reads chunk `index` and checks it against the manifest before returning it, so a chunk
    /// damaged on disk is never served. A damaged chunk is dropped from the store.
    public func get(_ index: Int) throws -> [UInt8] {
        guard has(index) else { throw StorageError.badTarget("chunk \(index) is not in the store") }
        let frame = manifest.manifest.frames[index]
        var out = [UInt8](repeating: 0, count: Int(frame.storedLength))
        let n = try out.withUnsafeMutableBytes { try Posix.preadFully(fd, $0.baseAddress!, count: $0.count, offset: frame.offset, path: path) }
        do {
            guard n == out.count else { throw BundleError.chunkMismatch(index: index, "short read from the store") }
            _ = try out.withUnsafeBytes { try verifyStoredChunk($0, index: index, manifest: manifest.manifest) }
        } catch {
            lock.withLock { have[index] = false }
            throw error
        }
        return out
    }

    /// Reads a byte range of chunk `index` (for serving a block request); the whole chunk is
    /// verified first.
    public func get(_ index: Int, offset: Int, length: Int) throws -> ArraySlice<UInt8> {
        let chunk = try get(index)
        guard offset >= 0, length >= 0, offset + length <= chunk.count else {
            throw StorageError.badTarget("range \(offset)+\(length) is outside chunk \(index) (\(chunk.count) bytes)")
        }
        return chunk[offset..<offset + length]
    }
}
