import Dispatch
import Foundation
import Glibc
import ShoalBundle
import ShoalCrypto

/// Builds a bundle file from an image, compressing regions on all cores.
///
/// The output is written to `OUTPUT.partial` and renamed into place only after the manifest,
/// the seek table and an fsync: a bundle that exists under its final name is complete.
public struct BundleCreator {
    public struct Options: Sendable {
        public var regionSize: Int = 4 << 20
        public var level: Int32 = 3
        public var name: String
        public var signingKey: Ed25519PrivateKey?
        public var encryptionKey: SymmetricKey?
        public var workers: Int = ProcessInfo.processInfo.activeProcessorCount
        public var createdAt: Int64 = Int64(Date().timeIntervalSince1970)
        /// Read a block device even when it is mounted (only safe for a read-only mount).
        public var allowMountedImage = false

        public init(name: String) { self.name = name }
    }

    public struct Result: Sendable {
        public var path: String
        public var bundleID: Digest
        public var manifest: Manifest
        public var fileLength: UInt64
        public var seconds: Double
    }

    public let options: Options

    public init(options: Options) { self.options = options }

    /// - Parameter progress: called with (bytes of the image done, image size) after each batch.
    public func create(image: String, output: String, progress: (UInt64, UInt64) -> Void = { _, _ in }) throws -> Result {
        let start = DispatchTime.now()
        let regionSize = options.regionSize
        guard regionSize >= 4096, regionSize % 4096 == 0, regionSize <= 1 << 30 else {
            throw StorageError.badTarget("chunk size \(regionSize) must be a multiple of 4096 between 4 KiB and 1 GiB")
        }
        guard ZstdCompressor.levelRange.contains(options.level) else {
            throw StorageError.badTarget("compression level \(options.level) is outside \(ZstdCompressor.levelRange)")
        }
        let input = try Posix.open(image, O_RDONLY)
        defer { Posix.close(input) }
        let st = try Posix.fstat(input, path: image)
        let imageSize: UInt64
        if (st.st_mode & S_IFMT) == S_IFBLK {
            if !options.allowMountedImage, let mount = StagingTarget.mountPoint(ofDevice: st.st_rdev) {
                throw StorageError.targetInUse("\(image) is mounted at \(mount): its contents may change while being read (unmount it, or pass --allow-mounted for a read-only mount)")
            }
            var size: UInt64 = 0
            guard CShoalNativeBridge.blockDeviceSize(input, &size) == 0 else { throw StorageError.errno("BLKGETSIZE64 \(image)") }
            imageSize = size
        } else {
            imageSize = UInt64(st.st_size)
        }
        let frameCount = Manifest.frameCount(imageSize: imageSize, regionSize: UInt32(regionSize))

        let partial = output + ".partial"
        let out = try Posix.open(partial, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var closed = false
        defer { if !closed { Posix.close(out); unlink(partial) } }

        var offset = UInt64(BundleLayout.headerFrameSize)
        // Header first with a zero length; patched once the total is known.
        try BundleLayout.headerFrame(fileLength: 0).withUnsafeBytes { b in
            try Posix.pwriteFully(out, b.baseAddress!, count: b.count, offset: 0, path: partial)
        }

        let workers = max(1, options.workers)
        let batch = workers * 2
        let imageHasher = SHA256Hasher()
        var frames: [Manifest.Frame] = []
        frames.reserveCapacity(frameCount)
        let inputs = (0..<batch).map { _ in AlignedBuffer(capacity: regionSize) }
        let codecs = (0..<workers).map { _ in FrameCodec(regionSize: regionSize, compressionLevel: options.level) }
        let key = options.encryptionKey

        var index = 0
        while index < frameCount {
            let count = min(batch, frameCount - index)
            var lengths = [Int](repeating: 0, count: count)
            for j in 0..<count {
                let regionOffset = UInt64(index + j) * UInt64(regionSize)
                let length = Int(min(UInt64(regionSize), imageSize - regionOffset))
                let n = try Posix.preadFully(input, inputs[j].pointer, count: length, offset: regionOffset, path: image)
                guard n == length else { throw StorageError.badTarget("\(image) shrank while being read") }
                lengths[j] = length
            }
            let lengthsNow = lengths
            let base = index
            let results = ResultBox<(stored: [UInt8], decoded: Digest)>(count: count)
            let errors = ResultBox<any Error>(count: 1)
            // One extra task hashes the batch in image order while the others compress.
            DispatchQueue.concurrentPerform(iterations: workers + 1) { worker in
                if worker == workers {
                    for j in 0..<count { imageHasher.update(UnsafeRawBufferPointer(inputs[j].bytes(count: lengthsNow[j]))) }
                    return
                }
                var j = worker
                while j < count {
                    let region = UnsafeRawBufferPointer(inputs[j].bytes(count: lengthsNow[j]))
                    do {
                        let stored = try codecs[worker].encode(region: region, frameIndex: base + j, key: key)
                        results.set(j, (stored, SHA256.hash(region)))
                    } catch {
                        errors.set(0, error)
                    }
                    j += workers
                }
            }
            if let error = errors.get(0) { throw error }
            for j in 0..<count {
                let (stored, decodedDigest) = results.get(j)!
                try stored.withUnsafeBytes { b in
                    try Posix.pwriteFully(out, b.baseAddress!, count: b.count, offset: offset, path: partial)
                }
                frames.append(Manifest.Frame(
                    offset: offset, storedLength: UInt32(stored.count), decodedLength: UInt32(lengths[j]),
                    storedDigest: SHA256.hash(stored), decodedDigest: decodedDigest))
                offset += UInt64(stored.count)
            }
            index += count
            progress(min(UInt64(index) * UInt64(regionSize), imageSize), imageSize)
        }

        var flags: Manifest.Flags = [.frameChecksums]
        if key != nil { flags.insert(.encrypted) }
        let manifest = Manifest(
            flags: flags, name: options.name, createdAt: options.createdAt, imageSize: imageSize,
            regionSize: UInt32(regionSize), compressionLevel: options.level, imageDigest: imageHasher.finalize(),
            keyID: key?.keyID ?? [UInt8](repeating: 0, count: 16), frames: frames)
        let signed = try SignedManifest(manifest: manifest, signingKey: options.signingKey)
        let manifestFrame = signed.encodedFrame()
        let table = BundleLayout.seekTable(for: manifest, manifestFrameLength: manifestFrame.count).encoded()
        let total = offset + UInt64(manifestFrame.count) + UInt64(table.count)
        for (bytes, at) in [(manifestFrame, offset), (table, offset + UInt64(manifestFrame.count)), (BundleLayout.headerFrame(fileLength: total), 0)] {
            try bytes.withUnsafeBytes { b in try Posix.pwriteFully(out, b.baseAddress!, count: b.count, offset: at, path: partial) }
        }
        try Posix.fsync(out, path: partial)
        Posix.close(out)
        closed = true
        guard rename(partial, output) == 0 else {
            let e = StorageError.errno("rename \(partial) to \(output)")
            unlink(partial)
            throw e
        }
        Posix.fsyncDirectory(of: output)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        return Result(path: output, bundleID: signed.bundleID, manifest: manifest, fileLength: total, seconds: seconds)
    }
}

/// A fixed-size array of optional results written by concurrent workers at distinct indices.
final class ResultBox<T>: @unchecked Sendable {
    // Invariant: all access goes through `lock`.
    private var values: [T?]
    private let lock = NSLock()
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ i: Int, _ v: T) { lock.withLock { values[i] = v } }
    func get(_ i: Int) -> T? { lock.withLock { values[i] } }
    func lockedUpdate(_ i: Int, _ transform: (T?) -> T) -> T? {
        lock.withLock {
            let v = transform(values[i])
            values[i] = v
            return v
        }
    }
}
