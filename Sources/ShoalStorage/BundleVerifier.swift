import Dispatch
import Foundation
import ShoalBundle
import ShoalCrypto

/// `shoal bundle verify`: checks every frame of a bundle file against its manifest.
///
/// Always: structure, signature (and trust when keys are given), and the SHA-256 of every stored
/// frame. When the frames can be decoded (not encrypted, or the key is given): every frame is
/// decoded and its region checked, and the whole-image SHA-256 is recomputed.
public struct BundleVerifier {
    public struct Result: Sendable {
        public var bundleID: Digest
        public var framesChecked: Int
        public var decoded: Bool
        public var seconds: Double
    }

    public var trustedKeys: [Ed25519PublicKey] = []
    public var key: SymmetricKey?
    public var workers = ProcessInfo.processInfo.activeProcessorCount

    public init(trustedKeys: [Ed25519PublicKey] = [], key: SymmetricKey? = nil) {
        self.trustedKeys = trustedKeys
        self.key = key
    }

    public func verify(_ bundle: BundleFile, progress: (Int, Int) -> Void = { _, _ in }) throws -> Result {
        let start = DispatchTime.now()
        try bundle.signedManifest.checkTrust(trustedKeys)
        let manifest = bundle.manifest
        try manifest.checkDecryptionKey(key, required: false)
        let decode = !manifest.isEncrypted || key != nil
        let regionSize = Int(manifest.regionSize)
        let count = manifest.frames.count
        let workers = max(1, self.workers)
        let batch = workers * 2
        // Two sets of region buffers: workers decode batch k into one set while an extra task
        // hashes batch k-1 (in image order) from the other, so the serial image digest overlaps
        // with decoding.
        let bufferSets = (0..<2).map { _ in (0..<batch).map { _ in AlignedBuffer(capacity: regionSize) } }
        let codecs = (0..<workers).map { _ in FrameCodec(regionSize: regionSize) }
        let imageHasher = SHA256Hasher()
        let key = self.key
        var index = 0
        var previous: (set: Int, base: Int, count: Int)? = nil
        var round = 0
        while index < count || previous != nil {
            let n = min(batch, count - index)
            let base = index
            let buffers = bufferSets[round % 2]
            let toHash = previous
            let errors = ResultBox<(Int, any Error)>(count: 1)
            DispatchQueue.concurrentPerform(iterations: workers + 1) { w in
                if w == workers {
                    guard decode, let toHash else { return }
                    for j in 0..<toHash.count {
                        let length = Int(manifest.frames[toHash.base + j].decodedLength)
                        imageHasher.update(UnsafeRawBufferPointer(bufferSets[toHash.set][j].bytes(count: length)))
                    }
                    return
                }
                var j = w
                while j < n {
                    let i = base + j
                    do {
                        let stored = try bundle.readFrame(i)
                        try stored.withUnsafeBytes { s in
                            try verifyStoredChunk(s, index: i, manifest: manifest)
                            if decode {
                                let frame = manifest.frames[i]
                                let out = buffers[j].bytes(count: Int(frame.decodedLength))
                                try codecs[w].decode(stored: s, frameIndex: i, key: key, encrypted: manifest.isEncrypted, into: out)
                                let digest = SHA256.hash(UnsafeRawBufferPointer(out))
                                guard digest == frame.decodedDigest else {
                                    throw BundleError.chunkMismatch(index: i, "decoded region hashes to \(digest.shortHex)…, manifest says \(frame.decodedDigest.shortHex)…")
                                }
                            }
                        }
                    } catch {
                        _ = errors.lockedUpdate(0) { old in
                            if let old, old.0 < i { return old }
                            return (i, error)
                        }
                    }
                    j += workers
                }
            }
            if let (_, error) = errors.get(0) { throw error }
            previous = n > 0 ? (round % 2, base, n) : nil
            round += 1
            index += n
            if n > 0 { progress(index, count) }
        }
        if decode {
            let digest = imageHasher.finalize()
            guard digest == manifest.imageDigest else {
                throw BundleError.imageMismatch("the decoded image hashes to \(digest.shortHex)…, the manifest says \(manifest.imageDigest.shortHex)…")
            }
        }
        return Result(bundleID: bundle.bundleID, framesChecked: count, decoded: decode,
                      seconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
    }
}
