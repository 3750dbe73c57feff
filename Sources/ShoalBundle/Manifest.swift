import ShoalCrypto

/// What a bundle holds: one entry per frame plus facts about the whole image.
///
/// The manifest is the unit that is signed and that peers exchange before any chunk; the
/// byte layout is documented in `docs/BUNDLE-FORMAT.md`.
public struct Manifest: Equatable, Sendable {
    public static let formatVersion: UInt16 = 1
    static let magic: [UInt8] = Array("SHOALMAN".utf8)
    static let headerSize = 90
    static let entrySize = 80
    /// Upper bound on a manifest body, so a hostile file cannot make a reader allocate gigabytes.
    public static let maximumEncodedSize = 64 << 20

    public struct Flags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }
        /// Frames are sealed with AES-256-GCM: `nonce(12) ‖ ciphertext ‖ tag(16)`.
        public static let encrypted = Flags(rawValue: 1 << 0)
        /// Each zstd frame carries zstd's own content checksum.
        public static let frameChecksums = Flags(rawValue: 1 << 1)
    }

    /// One frame: a fixed region of the image, compressed (and possibly sealed) on its own.
    public struct Frame: Equatable, Sendable {
        /// Byte offset of the stored frame in the bundle file.
        public var offset: UInt64
        /// Stored length in the bundle file (compressed, plus 28 bytes when sealed).
        public var storedLength: UInt32
        /// Length of the image region this frame decodes to.
        public var decodedLength: UInt32
        /// SHA-256 of the stored bytes: what every peer checks before keeping or serving a chunk.
        public var storedDigest: Digest
        /// SHA-256 of the decoded region.
        public var decodedDigest: Digest

        public init(offset: UInt64, storedLength: UInt32, decodedLength: UInt32, storedDigest: Digest, decodedDigest: Digest) {
            self.offset = offset
            self.storedLength = storedLength
            self.decodedLength = decodedLength
            self.storedDigest = storedDigest
            self.decodedDigest = decodedDigest
        }
    }

    public var flags: Flags
    public var name: String
    public var createdAt: Int64
    public var imageSize: UInt64
    public var regionSize: UInt32
    public var compressionLevel: Int32
    public var imageDigest: Digest
    /// Identifier of the sealing key (see `SymmetricKey.keyID`), all zero when not encrypted.
    public var keyID: [UInt8]
    public var frames: [Frame]

    public init(
        flags: Flags, name: String, createdAt: Int64, imageSize: UInt64, regionSize: UInt32,
        compressionLevel: Int32, imageDigest: Digest, keyID: [UInt8] = [UInt8](repeating: 0, count: 16), frames: [Frame]
    ) {
        self.flags = flags
        self.name = name
        self.createdAt = createdAt
        self.imageSize = imageSize
        self.regionSize = regionSize
        self.compressionLevel = compressionLevel
        self.imageDigest = imageDigest
        self.keyID = keyID
        self.frames = frames
    }

    public var isEncrypted: Bool { flags.contains(.encrypted) }

    /// Offset in the image of region `index`.
    public func imageOffset(ofFrame index: Int) -> UInt64 { UInt64(index) * UInt64(regionSize) }

    /// Total stored bytes of all data frames.
    public var storedSize: UInt64 { frames.reduce(0) { $0 + UInt64($1.storedLength) } }

    /// Number of regions an image of `imageSize` bytes has with regions of `regionSize` bytes.
    public static func frameCount(imageSize: UInt64, regionSize: UInt32) -> Int {
        Int((imageSize + UInt64(regionSize) - 1) / UInt64(regionSize))
    }

    public func encoded() -> [UInt8] {
        let nameBytes = Array(name.utf8.prefix(Int(UInt16.max)))
        var w = ByteWriter(capacity: Manifest.headerSize + nameBytes.count + frames.count * Manifest.entrySize)
        w.raw(Manifest.magic)
        w.u16(Manifest.formatVersion)
        w.u16(flags.rawValue)
        w.u32(UInt32(frames.count))
        w.u64(imageSize)
        w.u32(regionSize)
        w.u32(UInt32(bitPattern: compressionLevel))
        w.i64(createdAt)
        w.raw(imageDigest.bytes)
        w.raw(keyID)
        w.u16(UInt16(nameBytes.count))
        w.raw(nameBytes)
        for f in frames {
            w.u64(f.offset)
            w.u32(f.storedLength)
            w.u32(f.decodedLength)
            w.raw(f.storedDigest.bytes)
            w.raw(f.decodedDigest.bytes)
        }
        return w.bytes
    }

    /// Parses and validates a manifest body. Every structural rule is checked here, so code
    /// downstream may index frames and compute offsets without further checks.
    public static func decode(_ bytes: [UInt8]) throws -> Manifest {
        var r = ByteReader(bytes)
        do {
            guard Array(try r.raw(8)) == magic else { throw BundleError.malformedManifest("bad manifest magic") }
            let version = try r.u16()
            guard version == formatVersion else { throw BundleError.unsupportedVersion(version) }
            let flags = Flags(rawValue: try r.u16())
            guard flags.subtracting([.encrypted, .frameChecksums]).isEmpty else {
                throw BundleError.malformedManifest("unknown flags 0x\(String(flags.rawValue, radix: 16))")
            }
            let count = Int(try r.u32())
            let imageSize = try r.u64()
            let regionSize = try r.u32()
            let level = Int32(bitPattern: try r.u32())
            let createdAt = try r.i64()
            let imageDigest = Digest(bytes: try r.raw(32))!
            let keyID = Array(try r.raw(16))
            let nameLength = Int(try r.u16())
            let nameBytes = try r.raw(nameLength)
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw BundleError.malformedManifest("bundle name is not UTF-8")
            }
            guard regionSize >= 4096, regionSize % 4096 == 0 else {
                throw BundleError.malformedManifest("region size \(regionSize) is not a positive multiple of 4096")
            }
            guard imageSize < 1 << 56 else { throw BundleError.malformedManifest("image size \(imageSize) is implausible") }
            guard count == frameCount(imageSize: imageSize, regionSize: regionSize) else {
                throw BundleError.malformedManifest("\(count) frames cannot cover \(imageSize) bytes in regions of \(regionSize)")
            }
            guard r.remaining == count * entrySize else {
                throw BundleError.malformedManifest("frame table is \(r.remaining) bytes, expected \(count * entrySize)")
            }
            var frames: [Frame] = []
            frames.reserveCapacity(count)
            var expectedOffset = UInt64(BundleLayout.headerFrameSize)
            for i in 0..<count {
                let f = Frame(
                    offset: try r.u64(), storedLength: try r.u32(), decodedLength: try r.u32(),
                    storedDigest: Digest(bytes: try r.raw(32))!, decodedDigest: Digest(bytes: try r.raw(32))!)
                let expectedDecoded = min(UInt64(regionSize), imageSize - UInt64(i) * UInt64(regionSize))
                guard f.offset == expectedOffset else {
                    throw BundleError.malformedManifest("frame \(i) is at offset \(f.offset), expected \(expectedOffset)")
                }
                guard UInt64(f.decodedLength) == expectedDecoded else {
                    throw BundleError.malformedManifest("frame \(i) decodes to \(f.decodedLength) bytes, expected \(expectedDecoded)")
                }
                guard f.storedLength > 0 else { throw BundleError.malformedManifest("frame \(i) is empty") }
                expectedOffset += UInt64(f.storedLength)
                frames.append(f)
            }
            return Manifest(
                flags: flags, name: name, createdAt: createdAt, imageSize: imageSize, regionSize: regionSize,
                compressionLevel: level, imageDigest: imageDigest, keyID: keyID, frames: frames)
        } catch is ByteReader.Truncated {
            throw BundleError.malformedManifest("manifest ends early")
        }
    }
}

extension Manifest {
    /// Checks the key for an encrypted bundle against the manifest's key id.
    /// - Parameter required: when false, a missing key is allowed (only stored frames can then be checked).
    /// - Throws: `BundleError.keyRequired` for a missing (when required) or wrong key.
    public func checkDecryptionKey(_ key: SymmetricKey?, required: Bool = true) throws {
        guard isEncrypted else { return }
        guard let key else {
            if required { throw BundleError.keyRequired("the bundle is encrypted; give its key with --key") }
            return
        }
        guard key.keyID == keyID else {
            throw BundleError.keyRequired("wrong key: the bundle was sealed with key id \(Hex.encode(keyID)), the given key is \(Hex.encode(key.keyID))")
        }
    }
}
