import Dispatch
import Foundation
import Glibc
import ShoalBundle
import ShoalCrypto

/// `shoal bundle apply`: writes a bundle file onto a target through the staging writer,
/// resuming from the target's resume log.
public struct BundleApplier {
    public struct Options: Sendable {
        public var trustedKeys: [Ed25519PublicKey] = []
        public var key: SymmetricKey?
        /// Resume log path; nil picks `StagingTarget.defaultResumePath`.
        public var resumePath: String?
        public var useDirectIO = true
        public var workers = ProcessInfo.processInfo.activeProcessorCount
        public var writer = StagingWriter.Options()
        /// Set to stop an apply from another thread (a signal handler); see `ApplyCancellation`.
        public var cancellation: ApplyCancellation?
        public init() {}
    }

    public struct Result: Sendable {
        public var bundleID: Digest
        public var target: String
        public var targetKind: StagingTarget.Kind
        public var resumePath: String
        /// True when the resume log already said complete and the target still matched.
        public var alreadyComplete: Bool
        public var report: StagingWriter.Report?
        public var seconds: Double
        /// Why an old resume log was ignored, if one was.
        public var discardedResume: String?
    }

    public let options: Options
    public init(options: Options) { self.options = options }

    public func apply(bundle: BundleFile, to targetPath: String, progress: (@Sendable (StagingWriter.Progress) -> Void)? = nil) throws -> Result {
        let start = DispatchTime.now()
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }
        try bundle.signedManifest.checkTrust(options.trustedKeys)
        let manifest = bundle.manifest
        try manifest.checkDecryptionKey(options.key)
        var bundleStat = stat(), targetStat = stat()
        if stat(bundle.path, &bundleStat) == 0, stat(targetPath, &targetStat) == 0,
            bundleStat.st_dev == targetStat.st_dev, bundleStat.st_ino == targetStat.st_ino {
            throw StorageError.badTarget("\(targetPath) is the bundle itself")
        }
        let isDevice = StagingTarget.isBlockDevice(targetPath)
        let resumePath = options.resumePath ?? StagingTarget.defaultResumePath(forTarget: targetPath, isBlockDevice: isDevice)
        if isDevice { try? FileManager.default.createDirectory(atPath: (resumePath as NSString).deletingLastPathComponent, withIntermediateDirectories: true) }
        let target = try StagingTarget(path: targetPath, imageSize: manifest.imageSize, useDirectIO: options.useDirectIO)
        defer { target.close() }
        let log = try ResumeLog(path: resumePath, bundleID: bundle.bundleID, frameCount: manifest.frames.count, targetIdentity: target.identity)
        // Every path below that starts a writer waits in `finish()` for its threads, so the
        // target and the log can be released as soon as `apply` returns: a second apply to the
        // same target right after never finds it still claimed.
        defer { log.close() }

        if log.isComplete {
            // Already applied: prove the target still holds the image, else start over.
            if try Self.hashTarget(target, manifest: manifest) == manifest.imageDigest {
                return Result(bundleID: bundle.bundleID, target: targetPath, targetKind: target.kind, resumePath: resumePath,
                              alreadyComplete: true, report: nil, seconds: elapsed(), discardedResume: nil)
            }
            try log.reset()
        }

        let writer = try StagingWriter(bundle: bundle.signedManifest, target: target, resumeLog: log, key: options.key, options: options.writer, progress: progress)
        options.cancellation?.attach(writer)
        defer { options.cancellation?.detach() }
        let missing = writer.missingChunks
        let next = ResultBox<Int>(count: 1)
        next.set(0, 0)
        let stop = ResultBox<any Error>(count: 1)
        let maxStored = bundle.maximumStoredLength
        let cancellation = options.cancellation
        DispatchQueue.concurrentPerform(iterations: max(1, options.workers)) { _ in
            var stored = [UInt8](repeating: 0, count: maxStored)
            while stop.get(0) == nil && !(cancellation?.isCancelled ?? false) {
                guard let k = next.update(0, { ($0 ?? 0) + 1 }), k - 1 < missing.count else { return }
                let index = missing[k - 1]
                writer.waitUntilNearHashFrontier(index)
                do {
                    try stored.withUnsafeMutableBytes { b in
                        let n = try bundle.readFrame(index, into: b)
                        try writer.write(chunk: index, stored: UnsafeRawBufferPointer(rebasing: b[0..<n]))
                    }
                } catch {
                    stop.set(0, error)
                    writer.abort(error)
                }
            }
        }
        if let error = stop.get(0) {
            _ = try? writer.finish()
            throw error
        }
        let report = try writer.finish()
        return Result(bundleID: bundle.bundleID, target: targetPath, targetKind: target.kind, resumePath: resumePath,
                      alreadyComplete: false, report: report, seconds: elapsed(), discardedResume: log.discardedReason)
    }

    /// SHA-256 of the first `imageSize` bytes of the target.
    static func hashTarget(_ target: StagingTarget, manifest: Manifest) throws -> Digest {
        let hasher = SHA256Hasher()
        let buffer = AlignedBuffer(capacity: 4 << 20)
        var offset: UInt64 = 0
        while offset < manifest.imageSize {
            let n = Int(min(UInt64(buffer.capacity), manifest.imageSize - offset))
            let got = try Posix.preadFully(target.bufferedFD, buffer.pointer, count: n, offset: offset, path: target.path)
            guard got == n else { throw StorageError.badTarget("\(target.path) ends before the image does") }
            hasher.update(UnsafeRawBufferPointer(buffer.bytes(count: n)))
            offset += UInt64(n)
        }
        return hasher.finalize()
    }
}

extension ResultBox {
    /// Atomically replaces value `i` with `transform(old)` and returns the new value.
    func update(_ i: Int, _ transform: (T?) -> T) -> T? {
        lockedUpdate(i, transform)
    }
}

/// Lets a signal handler stop a running apply cleanly: queued chunks are written, synced and
/// recorded, then `apply` throws `StorageError.interrupted`.
public final class ApplyCancellation: @unchecked Sendable {
    // Invariant: all state guarded by `lock`.
    private let lock = NSLock()
    private var cancelled = false
    private var writer: StagingWriter?

    public init() {}

    public var isCancelled: Bool { lock.withLock { cancelled } }

    public func cancel() {
        let w: StagingWriter? = lock.withLock {
            cancelled = true
            return writer
        }
        w?.interrupt()
    }

    func attach(_ writer: StagingWriter) {
        let already: Bool = lock.withLock {
            self.writer = writer
            return cancelled
        }
        if already { writer.interrupt() }
    }

    func detach() { lock.withLock { writer = nil } }
}
