import ShoalBundle
import ShoalCrypto
import ShoalTestKit
import Testing

struct SeekTableTests {
    @Test func roundTripsAndEndsWithStandardFooter() throws {
        let table = SeekTable(entries: [.init(compressedSize: 32, decompressedSize: 0), .init(compressedSize: 1000, decompressedSize: 4096), .init(compressedSize: 77, decompressedSize: 0)])
        let bytes = table.encoded()
        #expect(bytes.count == table.encodedSize)
        // Skippable magic 0x184D2A5E little-endian first, seekable magic 0x8F92EAB1 last.
        #expect(Array(bytes.prefix(4)) == [0x5E, 0x2A, 0x4D, 0x18])
        #expect(Array(bytes.suffix(4)) == [0xB1, 0xEA, 0x92, 0x8F])
        #expect(bytes[bytes.count - 5] == 0)  // descriptor: no checksums
        let (count, size) = try SeekTable.frameSize(fromFooter: Array(bytes.suffix(9)))
        #expect(count == 3 && size == bytes.count)
        #expect(try SeekTable.parse(bytes) == table)
    }

    @Test func rejectsWrongFooterMagic() {
        var footer = SeekTable(entries: []).encoded().suffix(9).map { $0 }
        footer[8] ^= 1
        #expect(throws: BundleError.self) { try SeekTable.frameSize(fromFooter: footer) }
    }

    @Test func truncatedTableIsReported() {
        let bytes = SeekTable(entries: [.init(compressedSize: 1, decompressedSize: 1)]).encoded()
        #expect(throws: BundleError.self) { try SeekTable.parse(Array(bytes.dropFirst(4))) }
    }
}

struct ManifestTests {
    static func sample(frames: Int = 3, regionSize: UInt32 = 4096, lastLength: UInt32 = 100) -> Manifest {
        var list: [Manifest.Frame] = []
        var offset = UInt64(BundleLayout.headerFrameSize)
        for i in 0..<frames {
            let decoded = i == frames - 1 ? lastLength : regionSize
            list.append(.init(offset: offset, storedLength: 50 + UInt32(i), decodedLength: decoded,
                              storedDigest: SHA256.hash([UInt8(i)]), decodedDigest: SHA256.hash([UInt8(i), 1])))
            offset += UInt64(50 + i)
        }
        let size = frames == 0 ? 0 : UInt64(regionSize) * UInt64(frames - 1) + UInt64(lastLength)
        return Manifest(flags: [.frameChecksums], name: "débian-12 ✓", createdAt: 1_700_000_000, imageSize: size, regionSize: regionSize,
                        compressionLevel: 3, imageDigest: SHA256.hash([9]), frames: list)
    }

    @Test func roundTrips() throws {
        for n in [0, 1, 3, 50] {
            let m = ManifestTests.sample(frames: n)
            #expect(try Manifest.decode(m.encoded()) == m)
        }
    }

    @Test func everyTruncationIsRejected() {
        let bytes = ManifestTests.sample().encoded()
        for cut in 0..<bytes.count {
            #expect(throws: BundleError.self) { try Manifest.decode(Array(bytes.prefix(cut))) }
        }
    }

    @Test func structuralErrorsAreNamed() {
        var m = ManifestTests.sample()
        m.frames[1].offset += 1
        #expect(throws: BundleError.self) { try Manifest.decode(m.encoded()) }
        m = ManifestTests.sample()
        m.frames[2].decodedLength = 4096
        #expect(throws: BundleError.self) { try Manifest.decode(m.encoded()) }
        m = ManifestTests.sample()
        m.regionSize = 1000
        #expect(throws: BundleError.self) { try Manifest.decode(m.encoded()) }
        var bytes = ManifestTests.sample().encoded()
        bytes[8] = 9  // version 9
        #expect(throws: BundleError.unsupportedVersion(9)) { try Manifest.decode(bytes) }
        bytes = ManifestTests.sample().encoded()
        bytes[0] = UInt8(ascii: "X")
        #expect(throws: BundleError.malformedManifest("bad manifest magic")) { try Manifest.decode(bytes) }
    }

    @Test func frameCountCoversImage() {
        #expect(Manifest.frameCount(imageSize: 0, regionSize: 4096) == 0)
        #expect(Manifest.frameCount(imageSize: 1, regionSize: 4096) == 1)
        #expect(Manifest.frameCount(imageSize: 4096, regionSize: 4096) == 1)
        #expect(Manifest.frameCount(imageSize: 4097, regionSize: 4096) == 2)
    }
}

struct SignedManifestTests {
    let manifest = ManifestTests.sample()

    @Test func signedRoundTripAndID() throws {
        let key = Ed25519PrivateKey()
        let signed = try SignedManifest(manifest: manifest, signingKey: key)
        let decoded = try SignedManifest.decode(frame: signed.encodedFrame())
        #expect(decoded == signed)
        #expect(decoded.signer == key.publicKey)
        #expect(decoded.bundleID == SHA256.hash(signed.encodedPayload()))
        let unsigned = try SignedManifest(manifest: manifest, signingKey: nil)
        #expect(unsigned.bundleID != signed.bundleID)
        #expect(try SignedManifest.decode(frame: unsigned.encodedFrame()).isSigned == false)
    }

    @Test func anyFlippedBitBreaksTheSignature() throws {
        let signed = try SignedManifest(manifest: manifest, signingKey: Ed25519PrivateKey())
        let payload = signed.encodedPayload()
        // Flip a bit in the body (after the length) and in the signature: never accepted.
        for position in stride(from: 4, to: payload.count, by: 7) {
            var bad = payload
            bad[position] ^= 0x01
            #expect(throws: BundleError.self) { try SignedManifest.decode(payload: bad) }
        }
    }

    @Test func trustRules() throws {
        let key = Ed25519PrivateKey(), other = Ed25519PrivateKey()
        let signed = try SignedManifest(manifest: manifest, signingKey: key)
        let unsigned = try SignedManifest(manifest: manifest, signingKey: nil)
        try signed.checkTrust([])
        try unsigned.checkTrust([])
        try signed.checkTrust([other.publicKey, key.publicKey])
        #expect(throws: BundleError.self) { try signed.checkTrust([other.publicKey]) }
        #expect(throws: BundleError.self) { try unsigned.checkTrust([key.publicKey]) }
        #expect(BundleError.untrusted("x").exitCode == 14 && BundleError.badSignature.exitCode == 13)
    }

    @Test func headerFrame() throws {
        let h = BundleLayout.headerFrame(fileLength: 123_456)
        #expect(h.count == BundleLayout.headerFrameSize)
        #expect(try BundleLayout.parseHeader(h) == 123_456)
        #expect(throws: BundleError.self) { try BundleLayout.parseHeader([0x28, 0xB5, 0x2F, 0xFD] + [UInt8](repeating: 0, count: 28)) }
    }
}

struct FrameCodecTests {
    let region = TestData.mixedImage(65536, seed: 7)

    @Test func compressDecodeRoundTrip() throws {
        let codec = FrameCodec(regionSize: 65536, compressionLevel: 3)
        let stored = try region.withUnsafeBytes { try codec.encode(region: $0, frameIndex: 0, key: nil) }
        #expect(stored.count < region.count)
        #expect(Array(stored.prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD])  // a standard zstd frame
        var out = [UInt8](repeating: 0xAA, count: region.count)
        try stored.withUnsafeBytes { s in try out.withUnsafeMutableBytes { try codec.decode(stored: s, frameIndex: 0, key: nil, encrypted: false, into: $0) } }
        #expect(out == region)
    }

    @Test func sealedFramesNeedTheRightKeyAndIndex() throws {
        let codec = FrameCodec(regionSize: 65536, compressionLevel: 3)
        let key = SymmetricKey.random()
        let stored = try region.withUnsafeBytes { try codec.encode(region: $0, frameIndex: 5, key: key) }
        var out = [UInt8](repeating: 0, count: region.count)
        func decode(_ k: SymmetricKey?, _ index: Int, _ bytes: [UInt8] = stored) throws {
            try bytes.withUnsafeBytes { s in try out.withUnsafeMutableBytes { try codec.decode(stored: s, frameIndex: index, key: k, encrypted: true, into: $0) } }
        }
        try decode(key, 5)
        #expect(out == region)
        #expect(throws: BundleError.self) { try decode(SymmetricKey.random(), 5) }
        #expect(throws: BundleError.self) { try decode(key, 6) }  // replayed at another index
        #expect(throws: BundleError.self) { try decode(nil, 5) }
        var tampered = stored
        tampered[20] ^= 1
        #expect(throws: BundleError.self) { try decode(key, 5, tampered) }
        // The same region sealed twice differs (fresh nonce per frame).
        let again = try region.withUnsafeBytes { try codec.encode(region: $0, frameIndex: 5, key: key) }
        #expect(again != stored)
    }

    @Test func corruptOrMisSizedFramesAreRejected() throws {
        let codec = FrameCodec(regionSize: 65536, compressionLevel: 3)
        let stored = try region.withUnsafeBytes { try codec.encode(region: $0, frameIndex: 0, key: nil) }
        func decode(_ bytes: [UInt8], outCount: Int? = nil) throws {
            var buffer = [UInt8](repeating: 0, count: outCount ?? region.count)
            try bytes.withUnsafeBytes { s in try buffer.withUnsafeMutableBytes { try codec.decode(stored: s, frameIndex: 3, key: nil, encrypted: false, into: $0) } }
        }
        #expect(throws: BundleError.self) { try decode(Array(stored.prefix(stored.count / 2))) }
        #expect(throws: BundleError.self) { try decode(stored + [0]) }
        #expect(throws: BundleError.self) { try decode(stored, outCount: region.count - 1) }
        #expect(throws: BundleError.self) { try decode(stored, outCount: region.count + 1) }
        var flipped = stored
        flipped[stored.count / 2] ^= 0xFF
        #expect(throws: BundleError.self) { try decode(flipped) }
    }

    @Test func storedChunkCheckNamesTheChunk() throws {
        let m = ManifestTests.sample()
        let bytes = [UInt8](repeating: 1, count: Int(m.frames[1].storedLength))
        #expect(throws: BundleError.self) { try bytes.withUnsafeBytes { try verifyStoredChunk($0, index: 1, manifest: m) } }
        do {
            _ = try bytes.withUnsafeBytes { try verifyStoredChunk($0, index: 1, manifest: m) }
        } catch let error as BundleError {
            guard case .chunkMismatch(let index, _) = error else { Issue.record("wrong error \(error)"); return }
            #expect(index == 1)
            #expect(error.description.contains("chunk 1"))
        }
    }
}

struct CryptoTests {
    @Test func sha256KnownAnswer() {
        #expect(SHA256.hash(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let h = SHA256Hasher()
        h.update(Array("a".utf8))
        h.update(Array("bc".utf8))
        #expect(h.finalize() == SHA256.hash(Array("abc".utf8)))
    }

    @Test func ed25519PEMRoundTripAndSignatures() throws {
        let key = Ed25519PrivateKey()
        let again = try Ed25519PrivateKey(pem: key.pemRepresentation)
        #expect(again.publicKey == key.publicKey)
        #expect(try Ed25519PublicKey(pem: key.publicKey.pemRepresentation) == key.publicKey)
        let sig = try key.signature(for: Array("hello".utf8))
        #expect(key.publicKey.isValidSignature(sig, for: Array("hello".utf8)))
        #expect(!key.publicKey.isValidSignature(sig, for: Array("hellO".utf8)))
        #expect(!Ed25519PrivateKey().publicKey.isValidSignature(sig, for: Array("hello".utf8)))
        #expect(throws: CryptoError.self) { try Ed25519PublicKey(pem: "not a key") }
    }

    @Test func symmetricKeyFiles() throws {
        let key = SymmetricKey.random()
        #expect(try SymmetricKey(keyFileContents: Array((Hex.encode(key.bytes) + "\n").utf8)) == key)
        #expect(try SymmetricKey(keyFileContents: key.bytes) == key)
        #expect(throws: CryptoError.self) { try SymmetricKey(keyFileContents: Array("short".utf8)) }
        #expect(key.keyID != SymmetricKey.random().keyID)
    }

    @Test func hex() {
        #expect(Hex.encode([0, 255, 16]) == "00ff10")
        #expect(Hex.decode("00FF10") == [0, 255, 16])
        #expect(Hex.decode("0") == nil && Hex.decode("zz") == nil)
    }
}
