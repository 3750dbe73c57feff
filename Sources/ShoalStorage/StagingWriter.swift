import Dispatch
import Foundation
import Glibc
import ShoalBundle
import ShoalCrypto

/// Writes a bundle's chunks to a staging target, in any order, from any number of threads.
///
/// This is the API the peer calls as chunks arrive from the swarm, and that `shoal bundle apply`
/// drives from a bundle file. For each chunk `write(chunk:stored:)`:
/// 1. checks the stored bytes against the manifest's SHA-256 (a bad chunk is never written),
/// 2. decrypts (if sealed) and zstd-decodes into a pooled, O_DIRECT-aligned buffer,
/// 3. splits it into data and zero runs and hands it to the I/O thread, which writes data runs
///    with io_uring (several in flight, O_DIRECT where the target allows) and punches or
///    discards zero runs.
///
/// The I/O thread syncs the target every `syncEveryBytes` / `syncInterval` and only then marks
/// the synced chunks done in the resume log. A hasher thread computes the whole-image SHA-256 in
/// image order, from memory for chunks that arrive near the hash frontier and by reading back
/// the target for the others. `finish()` waits for all of it, checks the image digest, and
/// marks the resume log complete. Memory is bounded by `buffers × regionSize` plus one
/// read-back buffer, whatever the image size.
public final class StagingWriter: @unchecked Sendable {
    // Invariant: every mutable field below is guarded by `cond` unless marked (io thread) or (hasher).

    public struct Options: Sendable {
        /// Decoded-region buffers in the pool (bounds memory).
        public var buffers = 10
        /// Chunks within this distance of the hash frontier keep their buffer until hashed.
        public var hashWindow = 6
        public var syncEveryBytes: UInt64 = 512 << 20
        public var syncInterval: Double = 2
        /// Granularity of zero detection.
        public var zeroBlock = 64 << 10
        /// Optional limit on decoded bytes per second (to leave disk bandwidth to production work).
        public var maxBytesPerSecond: UInt64? = nil
        /// io_uring submission queue depth.
        public var ringEntries: UInt32 = 64
        public init() {}
    }

    public struct Report: Sendable {
        public var chunks: Int
        public var chunksAlreadyDone: Int
        public var chunksWritten: Int
        public var imageSize: UInt64
        public var bytesWritten: UInt64
        public var bytesZeroed: UInt64
        public var bytesReadBack: UInt64
        public var directIO: Bool
        public var syncs: Int
        public var imageDigest: Digest
    }

    /// Reported after every chunk write completes (written, not necessarily synced yet).
    public struct Progress: Sendable {
        /// Chunks written so far, including those already done before this run.
        public var chunksDone: Int
        public var chunks: Int
        public var bytesDone: UInt64
        public var imageSize: UInt64
    }

    private enum ChunkState { case pending, accepted, written, synced }

    private struct Job {
        var index: Int
        var buffer: AlignedBuffer
        var length: Int
        var runs: [ZeroRuns.Run]
        var remaining = 0
        var failed = false
    }

    public let manifest: Manifest
    public let bundleID: Digest
    public let target: StagingTarget
    public let resumeLog: ResumeLog
    private let key: SymmetricKey?
    private let options: Options
    private let regionSize: Int
    private let cond = NSCondition()

    private var states: [ChunkState]
    private var freeBuffers: [AlignedBuffer] = []
    private var freeCodecs: [FrameCodec] = []
    private var holds: [Int: (buffer: AlignedBuffer, count: Int)] = [:]
    private var hashReady: [Int: Int] = [:]
    private var frontier = 0
    private var ioQueue: [Job] = []
    private var failure: (any Error)? = nil
    private var finishing = false
    private var interrupted = false
    private var ioFinished = false
    private var hashFinished = false
    private var digest: Digest? = nil
    private var directIO: Bool
    private var bytesWritten: UInt64 = 0
    private var bytesZeroed: UInt64 = 0
    private var bytesReadBack: UInt64 = 0
    private var chunksWritten = 0
    private var syncs = 0
    private var acceptedBytes: UInt64 = 0
    private let alreadyDone: Int
    private let started = DispatchTime.now()
    private var progressHandler: (@Sendable (Progress) -> Void)?

    /// - Parameters:
    ///   - bundle: the (already trust-checked) signed manifest.
    ///   - key: the AES key when the bundle is encrypted; checked against the manifest's key id.
    public init(bundle: SignedManifest, target: StagingTarget, resumeLog: ResumeLog, key: SymmetricKey?, options: Options = Options(),
                progress: (@Sendable (Progress) -> Void)? = nil) throws {
        let manifest = bundle.manifest
        try manifest.checkDecryptionKey(key)
        self.manifest = manifest
        self.bundleID = bundle.bundleID
        self.target = target
        self.resumeLog = resumeLog
        self.key = key
        self.options = options
        self.regionSize = Int(manifest.regionSize)
        self.states = resumeLog.done.map { $0 ? .synced : .pending }
        self.alreadyDone = resumeLog.doneCount
        self.directIO = target.directFD != nil
        self.progressHandler = progress
        for _ in 0..<max(2, options.buffers) { freeBuffers.append(AlignedBuffer(capacity: regionSize)) }
        let io = Thread { [self] in ioLoop() }
        io.name = "shoal-io"
        io.start()
        let hasher = Thread { [self] in hashLoop() }
        hasher.name = "shoal-hash"
        hasher.start()
    }

    /// Indices of chunks not yet written and synced.
    public var missingChunks: [Int] {
        cond.withLock { states.indices.filter { states[$0] == .pending } }
    }

    /// Verifies, decodes and queues one chunk for writing. Safe to call from several threads.
    ///
    /// Returns after the chunk is queued (not yet on disk); `finish()` reports durability.
    /// - Returns: false when the chunk was already written or queued (duplicates are harmless).
    /// - Throws: `BundleError.chunkMismatch` (nothing written; the chunk can be fetched again),
    ///   or the error that stopped the writer.
    /// - Parameter checked: a proof from `verifyStoredChunk` for exactly these bytes, when the
    ///   caller already checked them; the bytes are hashed otherwise.
    @discardableResult
    public func write(chunk index: Int, stored: UnsafeRawBufferPointer, checked: CheckedChunk? = nil) throws -> Bool {
        if !(checked?.covers(stored, index: index) ?? false) {
            try verifyStoredChunk(stored, index: index, manifest: manifest)
        }
        cond.lock()
        if let failure { cond.unlock(); throw failure }
        if interrupted { cond.unlock(); throw StorageError.interrupted("the writer was interrupted") }
        guard states[index] == .pending else { cond.unlock(); return false }
        states[index] = .accepted
        while freeBuffers.isEmpty && failure == nil && !interrupted { cond.wait() }
        if let failure { states[index] = .pending; cond.unlock(); throw failure }
        if interrupted { states[index] = .pending; cond.unlock(); throw StorageError.interrupted("the writer was interrupted") }
        let buffer = freeBuffers.removeLast()
        let codec = freeCodecs.popLast() ?? FrameCodec(regionSize: regionSize)
        cond.unlock()

        let length = Int(manifest.frames[index].decodedLength)
        let runs: [ZeroRuns.Run]
        do {
            try codec.decode(stored: stored, frameIndex: index, key: key, encrypted: manifest.isEncrypted, into: buffer.bytes(count: length))
            runs = ZeroRuns.split(UnsafeRawBufferPointer(buffer.bytes(count: length)), blockSize: options.zeroBlock)
        } catch {
            cond.withLock {
                states[index] = .pending
                freeBuffers.append(buffer)
                freeCodecs.append(codec)
                cond.broadcast()
            }
            throw error
        }
        throttle(adding: UInt64(length))
        cond.withLock {
            freeCodecs.append(codec)
            let retained = index < frontier + options.hashWindow
            holds[index] = (buffer, retained ? 2 : 1)
            if retained { hashReady[index] = length }
            ioQueue.append(Job(index: index, buffer: buffer, length: length, runs: runs))
            cond.broadcast()
        }
        return true
    }

    /// Blocks until chunk `index` would be hashed from memory (it is within `hashWindow` of the
    /// hash frontier), or the writer failed. Callers that supply chunks in image order (apply from
    /// a file) call this first, so decoding never runs so far ahead that the image digest has to
    /// be computed by reading the target back.
    public func waitUntilNearHashFrontier(_ index: Int) {
        cond.withLock {
            while index >= frontier + options.hashWindow && failure == nil && !interrupted { cond.wait() }
        }
    }

    public func write(chunk index: Int, stored: [UInt8]) throws {
        try stored.withUnsafeBytes { _ = try write(chunk: index, stored: $0) }
    }

    /// Waits for all writes, syncs, checks the whole-image SHA-256 and marks the resume log complete.
    /// - Throws: when chunks are missing, a write failed, or the image digest does not match.
    public func finish() throws -> Report {
        cond.lock()
        let missing = states.filter { $0 == .pending }.count
        if missing > 0 && failure == nil && !interrupted {
            failure = StorageError.badTarget("\(missing) chunks were never supplied")
        }
        finishing = true
        cond.broadcast()
        while !(ioFinished && hashFinished) { cond.wait() }
        let failure = self.failure
        let digest = self.digest
        let kept = states.filter { $0 == .synced }.count
        let wasInterrupted = interrupted
        cond.unlock()
        if let failure { throw failure }
        if wasInterrupted {
            throw StorageError.interrupted("\(kept) of \(states.count) chunks are written, synced and kept in \(resumeLog.path); run the same command again to resume")
        }
        guard let digest, digest == manifest.imageDigest else {
            try resumeLog.reset()
            throw BundleError.imageMismatch("the staged image hashes to \(digest?.shortHex ?? "?")…, the manifest says \(manifest.imageDigest.shortHex)…; progress was reset")
        }
        try resumeLog.markComplete()
        return cond.withLock {
            Report(
                chunks: manifest.frames.count, chunksAlreadyDone: alreadyDone, chunksWritten: chunksWritten,
                imageSize: manifest.imageSize, bytesWritten: bytesWritten, bytesZeroed: bytesZeroed,
                bytesReadBack: bytesReadBack, directIO: directIO, syncs: syncs, imageDigest: digest)
        }
    }

    /// Stops taking chunks (Ctrl-C, SIGTERM): chunks already queued are written and synced and
    /// recorded in the resume log, then `finish()` throws `StorageError.interrupted`.
    public func interrupt() {
        cond.withLock {
            interrupted = true
            finishing = true
            cond.broadcast()
        }
    }

    /// Stops the writer after a failure; synced progress stays in the resume log, and chunks
    /// written since the last sync are not recorded (they are rewritten on the next run).
    public func abort(_ error: any Error) {
        cond.withLock {
            if failure == nil { failure = error }
            finishing = true
            cond.broadcast()
        }
    }

    private func throttle(adding bytes: UInt64) {
        guard let rate = options.maxBytesPerSecond, rate > 0 else { return }
        let total = cond.withLock { acceptedBytes += bytes; return acceptedBytes }
        let due = Double(total) / Double(rate)
        while true {
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - started.uptimeNanoseconds) / 1e9
            if due <= elapsed || cond.withLock({ interrupted || failure != nil }) { return }
            usleep(useconds_t(min(0.2, due - elapsed) * 1e6))
        }
    }

    private func fail(_ error: any Error) {
        cond.withLock {
            if failure == nil { failure = error }
            cond.broadcast()
        }
    }

    /// Drops one hold on chunk `index`'s buffer; the last hold returns it to the pool. Caller holds `cond`.
    private func releaseHold(_ index: Int) {
        guard let h = holds[index] else { return }
        if h.count <= 1 {
            holds[index] = nil
            freeBuffers.append(h.buffer)
        } else {
            holds[index] = (h.buffer, h.count - 1)
        }
        cond.broadcast()
    }

    // MARK: I/O thread

    private func ioLoop() {
        do {
            try runIO()
        } catch {
            fail(error)
        }
        cond.withLock {
            ioFinished = true
            cond.broadcast()
        }
    }

    private func runIO() throws {
        let ring = try IORing(entries: options.ringEntries)
        var jobs: [UInt64: Job] = [:]
        var nextID: UInt64 = 1
        var unsynced: [Int] = []
        var unsyncedBytes: UInt64 = 0
        var lastSync = DispatchTime.now()
        let punchMode = CShoalNativeBridge.punchHole | CShoalNativeBridge.keepSize

        func commit() throws {
            guard !unsynced.isEmpty else { return }
            try target.sync()
            try resumeLog.markDone(unsynced)
            let committed = unsynced
            unsynced.removeAll()
            unsyncedBytes = 0
            lastSync = DispatchTime.now()
            cond.withLock {
                for i in committed { states[i] = .synced }
                syncs += 1
            }
        }

        while true {
            cond.lock()
            while ioQueue.isEmpty && ring.inFlight == 0 && !finishing && failure == nil {
                _ = cond.wait(until: Date(timeIntervalSinceNow: options.syncInterval))
                if !unsynced.isEmpty { break }
            }
            let newJobs = ioQueue
            ioQueue.removeAll()
            let stop = failure != nil || (finishing && newJobs.isEmpty && ring.inFlight == 0 && !states.contains(.accepted))
            cond.unlock()
            if stop { break }

            for var job in newJobs {
                let id = nextID
                nextID += 1
                let base = manifest.imageOffset(ofFrame: job.index)
                for (k, run) in job.runs.enumerated() {
                    let userData = id << 16 | UInt64(k)
                    let offset = base + UInt64(run.offset)
                    if run.isZero {
                        if !target.zeroRunsNeedClearing {
                            // A file this run created is all holes already: nothing to do.
                            continue
                        }
                        try ring.queueFallocate(fd: target.bufferedFD, mode: punchMode, offset: offset, length: UInt64(run.length), userData: userData)
                    } else {
                        let aligned = run.length / target.alignment * target.alignment
                        if let direct = target.directFD, directIO, aligned > 0 {
                            try ring.queueWrite(fd: direct, buffer: job.buffer.pointer + run.offset, count: aligned, offset: offset, userData: userData)
                            if aligned < run.length {
                                // Unaligned tail of the image: through the page cache.
                                try Posix.pwriteFully(target.bufferedFD, job.buffer.pointer + run.offset + aligned, count: run.length - aligned, offset: offset + UInt64(aligned), path: target.path)
                            }
                        } else {
                            try ring.queueWrite(fd: target.bufferedFD, buffer: job.buffer.pointer + run.offset, count: run.length, offset: offset, userData: userData)
                        }
                    }
                    job.remaining += 1
                }
                jobs[id] = job
                if job.remaining == 0 { try completeJob(id, &jobs, &unsynced, &unsyncedBytes) }
            }

            if ring.inFlight > 0 {
                try ring.submit(wait: newJobs.isEmpty)
                for completion in ring.reap() {
                    let id = completion.userData >> 16
                    let k = Int(completion.userData & 0xFFFF)
                    guard var job = jobs[id] else { continue }
                    let run = job.runs[k]
                    try handleCompletion(completion.result, run: run, job: job)
                    job.remaining -= 1
                    jobs[id] = job
                    if job.remaining == 0 { try completeJob(id, &jobs, &unsynced, &unsyncedBytes) }
                }
            }

            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - lastSync.uptimeNanoseconds) / 1e9
            if unsyncedBytes >= options.syncEveryBytes || (!unsynced.isEmpty && elapsed >= options.syncInterval) {
                try commit()
            }
        }
        // Drain whatever is still in flight before the final sync (only after a failure).
        while ring.inFlight > 0 {
            try ring.submit(wait: true)
            _ = ring.reap()
        }
        if cond.withLock({ failure == nil }) { try commit() }
    }

    private func completeJob(_ id: UInt64, _ jobs: inout [UInt64: Job], _ unsynced: inout [Int], _ unsyncedBytes: inout UInt64) throws {
        guard let job = jobs.removeValue(forKey: id) else { return }
        unsynced.append(job.index)
        unsyncedBytes += UInt64(job.length)
        let progress: Progress = cond.withLock {
            states[job.index] = .written
            chunksWritten += 1
            for run in job.runs {
                if run.isZero { bytesZeroed += UInt64(run.length) } else { bytesWritten += UInt64(run.length) }
            }
            releaseHold(job.index)
            let done = alreadyDone + chunksWritten
            return Progress(chunksDone: done, chunks: states.count, bytesDone: min(manifest.imageSize, UInt64(done) * UInt64(regionSize)), imageSize: manifest.imageSize)
        }
        progressHandler?(progress)
    }

    /// Checks one completion; falls back synchronously where the kernel refuses an operation.
    private func handleCompletion(_ result: Int32, run: ZeroRuns.Run, job: Job) throws {
        let offset = manifest.imageOffset(ofFrame: job.index) + UInt64(run.offset)
        if run.isZero {
            guard result < 0 else { return }
            let code = -result
            if code == ENOSPC { throw StorageError.noSpace("zeroing chunk \(job.index) of \(target.path)") }
            guard code == EOPNOTSUPP || code == EINVAL || code == ENOTSUP else {
                throw StorageError.errno("fallocate \(target.path) at \(offset)", code)
            }
            // No hole punching here: ask for zeroes (devices may then write them), else write zeroes.
            if target.kind == .blockDevice,
                CShoalNativeBridge.fallocate(target.bufferedFD, CShoalNativeBridge.zeroRange | CShoalNativeBridge.keepSize, off_t(offset), off_t(run.length)) == 0 {
                return
            }
            let zeros = [UInt8](repeating: 0, count: run.length)
            try zeros.withUnsafeBytes { z in
                try Posix.pwriteFully(target.bufferedFD, z.baseAddress!, count: run.length, offset: offset, path: target.path)
            }
            return
        }
        let expected = target.directFD != nil && directIO ? run.length / target.alignment * target.alignment : run.length
        if result >= 0 && Int(result) == expected { return }
        if result < 0 {
            let code = -result
            if code == ENOSPC { throw StorageError.noSpace("writing chunk \(job.index) to \(target.path)") }
            guard code == EINVAL else { throw StorageError.errno("write \(target.path) at \(offset)", code) }
            // The file system accepted O_DIRECT at open but refuses this write: stop using it.
            cond.withLock { directIO = false }
        }
        // Short write or fallback: write the rest (or all) through the page cache.
        let done = max(0, Int(result))
        try Posix.pwriteFully(target.bufferedFD, job.buffer.pointer + run.offset + done, count: expected - done, offset: offset + UInt64(done), path: target.path)
    }

    // MARK: hasher thread

    private func hashLoop() {
        let hasher = SHA256Hasher()
        let readBuffer = AlignedBuffer(capacity: regionSize)
        let count = manifest.frames.count
        var index = 0
        while index < count {
            cond.lock()
            var source: (AlignedBuffer, Int)? = nil
            var readBack = false
            while true {
                if failure != nil || interrupted { break }
                if let length = hashReady[index], let hold = holds[index] {
                    source = (hold.buffer, length)
                    break
                }
                if states[index] == .written || states[index] == .synced {
                    readBack = true
                    break
                }
                cond.wait()
            }
            if (failure != nil || interrupted) && source == nil && !readBack {
                hashFinished = true
                cond.broadcast()
                cond.unlock()
                return
            }
            cond.unlock()
            let length = Int(manifest.frames[index].decodedLength)
            if let (buffer, length) = source {
                hasher.update(UnsafeRawBufferPointer(buffer.bytes(count: length)))
                cond.withLock {
                    hashReady[index] = nil
                    releaseHold(index)
                }
            } else {
                do {
                    let n = try Posix.preadFully(target.bufferedFD, readBuffer.pointer, count: length, offset: manifest.imageOffset(ofFrame: index), path: target.path)
                    guard n == length else { throw StorageError.badTarget("\(target.path) ends before the image does") }
                } catch {
                    fail(error)
                    continue
                }
                hasher.update(UnsafeRawBufferPointer(readBuffer.bytes(count: length)))
                cond.withLock { bytesReadBack += UInt64(length) }
            }
            index += 1
            cond.withLock {
                frontier = index
                cond.broadcast()
            }
        }
        let result = hasher.finalize()
        cond.withLock {
            digest = result
            hashFinished = true
            cond.broadcast()
        }
    }
}

extension StagingTarget {
    /// Whether zero runs must be actively zeroed: always, unless this run created the file
    /// (then every byte not written is a hole that reads as zero; a later run that resumes
    /// finds the file existing and clears them).
    var zeroRunsNeedClearing: Bool { existed || kind == .blockDevice }
}
