import Glibc
import ShoalBundle
import ShoalCrypto

/// The persistent done-bitmap of one apply: which chunks are written *and synced* on the target.
///
/// Two slots (A/B) alternate, each with a sequence number and its own SHA-256, so a write torn by a
/// crash leaves the other slot intact. A slot names the bundle and the target's identity (device
/// and inode), so progress is never applied to another bundle or a replaced target.
public final class ResumeLog {
    public let path: String
    public let bundleID: Digest
    public let frameCount: Int
    let targetIdentity: (UInt64, UInt64)
    private(set) public var done: [Bool]
    private(set) public var isComplete = false
    private var sequence: UInt64 = 0
    private let fd: Int32
    private let slotSize: Int
    /// Why an existing log was not used, if one was found and discarded.
    public private(set) var discardedReason: String?

    static let magic = Array("SHOALRSM".utf8)

    public init(path: String, bundleID: Digest, frameCount: Int, targetIdentity: (UInt64, UInt64)) throws {
        self.path = path
        self.bundleID = bundleID
        self.frameCount = frameCount
        self.targetIdentity = targetIdentity
        self.done = Array(repeating: false, count: frameCount)
        let bitmapBytes = (frameCount + 7) / 8
        self.slotSize = (8 + 4 + 4 + 8 + 32 + 16 + 4 + bitmapBytes + 32 + 511) / 512 * 512
        self.fd = try Posix.open(path, O_RDWR | O_CREAT, 0o600)
        if !Posix.lockExclusive(fd) {
            Posix.close(fd)
            throw StorageError.targetInUse("\(path) is locked by another shoal process applying to the same target")
        }
        load()
    }

    private var closed = false

    /// Closes the log now, releasing its lock (see `StagingTarget.close()`). Idempotent; the log
    /// must not be used afterwards.
    public func close() {
        guard !closed else { return }
        closed = true
        Posix.close(fd)
    }

    deinit { close() }

    public var doneCount: Int { done.reduce(0) { $0 + ($1 ? 1 : 0) } }

    private func load() {
        var best: (seq: UInt64, done: [Bool], complete: Bool)? = nil
        var foundOther: String? = nil
        for slot in 0..<2 {
            var bytes = [UInt8](repeating: 0, count: slotSize)
            let n = (try? bytes.withUnsafeMutableBytes { b in
                try Posix.preadFully(fd, b.baseAddress!, count: slotSize, offset: UInt64(slot * slotSize), path: path)
            }) ?? 0
            guard n == slotSize else { continue }
            switch parse(bytes) {
            case .valid(let seq, let d, let c):
                if best == nil || seq > best!.seq { best = (seq, d, c) }
            case .otherRun(let why):
                foundOther = why
            case .invalid:
                continue
            }
        }
        if let best {
            sequence = best.seq
            done = best.done
            isComplete = best.complete
        } else {
            discardedReason = foundOther
        }
    }

    private enum Parsed { case valid(UInt64, [Bool], Bool), otherRun(String), invalid }

    private func parse(_ bytes: [UInt8]) -> Parsed {
        let bitmapBytes = (frameCount + 7) / 8
        let bodyLength = 8 + 4 + 4 + 8 + 32 + 16 + 4 + bitmapBytes
        var r = ByteReader(bytes)
        guard let m = try? r.raw(8), Array(m) == ResumeLog.magic else { return .invalid }
        guard let _ = try? r.u32(), let flags = try? r.u32(), let seq = try? r.u64(), let id = try? r.raw(32),
            let dev = try? r.u64(), let ino = try? r.u64(), let count = try? r.u32()
        else { return .invalid }
        guard bytes.count >= bodyLength + 32,
            SHA256.hash(Array(bytes[0..<bodyLength])).bytes == Array(bytes[bodyLength..<bodyLength + 32])
        else { return .invalid }
        guard Array(id) == bundleID.bytes, Int(count) == frameCount else {
            return .otherRun("it recorded progress of bundle \(Digest(bytes: id)!.shortHex)…, not this one")
        }
        guard dev == targetIdentity.0, ino == targetIdentity.1 else {
            return .otherRun("the target was replaced since the last run")
        }
        var d = [Bool](repeating: false, count: frameCount)
        let bitmap = Array(bytes[(bodyLength - bitmapBytes)..<bodyLength])
        for i in 0..<frameCount { d[i] = bitmap[i / 8] & (1 << (i % 8)) != 0 }
        return .valid(seq, d, flags & 1 != 0)
    }

    /// Marks `indices` done and persists (write + fdatasync). Call only after the target's data
    /// for these chunks is synced.
    public func markDone(_ indices: some Sequence<Int>) throws {
        for i in indices { done[i] = true }
        try persist()
    }

    public func markComplete() throws {
        isComplete = true
        try persist()
    }

    /// Forgets all progress (used when the final image check fails).
    public func reset() throws {
        done = Array(repeating: false, count: frameCount)
        isComplete = false
        try persist()
    }

    private func persist() throws {
        sequence += 1
        var w = ByteWriter(capacity: slotSize)
        w.raw(ResumeLog.magic)
        w.u32(1)
        w.u32(isComplete ? 1 : 0)
        w.u64(sequence)
        w.raw(bundleID.bytes)
        w.u64(targetIdentity.0)
        w.u64(targetIdentity.1)
        w.u32(UInt32(frameCount))
        var bitmap = [UInt8](repeating: 0, count: (frameCount + 7) / 8)
        for i in 0..<frameCount where done[i] { bitmap[i / 8] |= 1 << (i % 8) }
        w.raw(bitmap)
        w.raw(SHA256.hash(w.bytes).bytes)
        var bytes = w.bytes
        bytes.append(contentsOf: [UInt8](repeating: 0, count: slotSize - bytes.count))
        let slot = Int(sequence % 2)
        try bytes.withUnsafeBytes { b in
            try Posix.pwriteFully(fd, b.baseAddress!, count: slotSize, offset: UInt64(slot * slotSize), path: path)
        }
        try Posix.fdatasync(fd, path: path)
    }

    /// Removes the log file.
    public func remove() { unlink(path) }
}
