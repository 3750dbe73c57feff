import ShoalCrypto

/// Turns image regions into stored frames and back; pure computation, one instance per thread.
public final class FrameCodec: @unchecked Sendable {
    // Invariant: used by one thread at a time (each worker owns its codec).
    public let regionSize: Int
    private let compressor: ZstdCompressor?
    private let decoder: ZstdDecoder
    private var scratch: [UInt8] = []

    public init(regionSize: Int, compressionLevel: Int32? = nil) {
        self.regionSize = regionSize
        self.compressor = compressionLevel.map { ZstdCompressor(level: $0) }
        self.decoder = ZstdDecoder(maxWindowBytes: regionSize)
    }

    /// Associated data bound into every sealed frame: a domain string and the frame index,
    /// so a sealed frame cannot be replayed at another position.
    public static func associatedData(frameIndex: Int) -> [UInt8] {
        var w = ByteWriter()
        w.raw(Array("shoal.frame.v1\u{0}".utf8))
        w.u32(UInt32(frameIndex))
        return w.bytes
    }

    /// Compresses (and, with a key, seals) one region. Returns the stored bytes.
    public func encode(region: UnsafeRawBufferPointer, frameIndex: Int, key: SymmetricKey?) throws -> [UInt8] {
        guard let compressor else { preconditionFailure("FrameCodec created without a compression level") }
        let frame = compressor.compress(region)
        guard let key else { return frame }
        return try frame.withUnsafeBytes {
            try AESGCM.seal($0, key: key, nonce: SecureRandom.bytes(AESGCM.nonceSize), aad: FrameCodec.associatedData(frameIndex: frameIndex))
        }
    }

    /// Decodes stored frame `index` into `output` (exactly the region's length).
    ///
    /// The caller has already checked the stored bytes against the manifest; failures here
    /// mean a wrong key or a frame that does not decode to what the manifest says.
    public func decode(
        stored: UnsafeRawBufferPointer, frameIndex: Int, key: SymmetricKey?, encrypted: Bool,
        into output: UnsafeMutableRawBufferPointer
    ) throws {
        if encrypted {
            guard let key else { throw BundleError.keyRequired("the bundle is encrypted; give its key with --key") }
            if scratch.count < stored.count { scratch = [UInt8](repeating: 0, count: stored.count) }
            let opened = scratch.withUnsafeMutableBytes { s in
                AESGCM.open(stored, key: key, aad: FrameCodec.associatedData(frameIndex: frameIndex), into: s)
            }
            guard let opened else {
                throw BundleError.chunkMismatch(index: frameIndex, "AES-GCM authentication failed")
            }
            try scratch.withUnsafeBytes { s in
                try decodeZstd(UnsafeRawBufferPointer(rebasing: s[0..<opened]), frameIndex: frameIndex, into: output)
            }
        } else {
            try decodeZstd(stored, frameIndex: frameIndex, into: output)
        }
    }

    private func decodeZstd(_ frame: UnsafeRawBufferPointer, frameIndex: Int, into output: UnsafeMutableRawBufferPointer) throws(BundleError) {
        do {
            try decoder.decode(frame: frame, into: output)
        } catch {
            switch error {
            case .corrupt(let why): throw .chunkMismatch(index: frameIndex, "zstd: \(why)")
            case .wrongSize(let n): throw .chunkMismatch(index: frameIndex, "decodes to \(n) bytes, manifest says \(output.count)")
            case .trailingBytes(let n): throw .chunkMismatch(index: frameIndex, "\(n) bytes after the end of the zstd frame")
            }
        }
    }
}

/// Proof that one buffer of stored bytes matched the manifest, so a caller that hands the same
/// bytes to several consumers (the chunk store, then the staging writer) hashes them once.
/// Only `verifyStoredChunk` makes one; it names the exact buffer it checked.
public struct CheckedChunk: Sendable, Equatable {
    public let index: Int
    let address: UInt
    let count: Int

    /// True when this proof is for exactly these bytes as chunk `index`.
    public func covers(_ bytes: UnsafeRawBufferPointer, index: Int) -> Bool {
        index == self.index && bytes.count == count && UInt(bitPattern: bytes.baseAddress) == address
    }
}

/// Checks a stored chunk against the manifest: the check every peer runs before it writes,
/// keeps or serves a chunk.
@discardableResult
public func verifyStoredChunk(_ bytes: UnsafeRawBufferPointer, index: Int, manifest: Manifest) throws(BundleError) -> CheckedChunk {
    guard index >= 0, index < manifest.frames.count else {
        throw .chunkMismatch(index: index, "no such frame (bundle has \(manifest.frames.count))")
    }
    let frame = manifest.frames[index]
    guard bytes.count == Int(frame.storedLength) else {
        throw .chunkMismatch(index: index, "\(bytes.count) bytes, manifest says \(frame.storedLength)")
    }
    let digest = SHA256.hash(bytes)
    guard digest == frame.storedDigest else {
        throw .chunkMismatch(index: index, "SHA-256 \(digest.shortHex)… does not match the manifest's \(frame.storedDigest.shortHex)…")
    }
    return CheckedChunk(index: index, address: UInt(bitPattern: bytes.baseAddress), count: bytes.count)
}
