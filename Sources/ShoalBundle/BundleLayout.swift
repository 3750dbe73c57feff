/// The frame sequence of a bundle file and the rules that tie its parts together.
///
/// ```
/// header frame   skippable 0x184D2A5A: "SHOALBDL", version, total file length
/// frame 0 … n-1  independent zstd frames (or AES-GCM sealed frames), one per region
/// manifest frame skippable 0x184D2A5B: the signed manifest
/// seek table     skippable 0x184D2A5E: zstd seekable-format seek table (last frame)
/// ```
/// The seek table lists every frame before it, header and manifest included (as frames that
/// decode to 0 bytes), so its compressed sizes add up to the offset of the seek table itself.
public enum BundleLayout {
    public static let headerMagic: UInt32 = 0x184D_2A5A
    static let headerTag = Array("SHOALBDL".utf8)
    /// 8-byte skippable header + 24-byte payload.
    public static let headerFrameSize = 32

    /// The header frame for a bundle file of `fileLength` bytes.
    public static func headerFrame(fileLength: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: headerFrameSize)
        w.u32(headerMagic)
        w.u32(24)
        w.raw(headerTag)
        w.u16(Manifest.formatVersion)
        w.u16(0)
        w.u32(0)
        w.u64(fileLength)
        return w.bytes
    }

    /// Parses the header frame; returns the file length it announces.
    public static func parseHeader(_ bytes: [UInt8]) throws -> UInt64 {
        guard bytes.count >= headerFrameSize, bytes.u32LE(at: 0) == headerMagic, bytes.u32LE(at: 4) == 24,
            Array(bytes[8..<16]) == headerTag
        else {
            if bytes.count >= 4, bytes.u32LE(at: 0) == 0xFD2F_B528 {
                throw BundleError.notABundle("a plain zstd stream, not a Shoal bundle (no Shoal header frame)")
            }
            throw BundleError.notABundle("the file does not start with a Shoal bundle header")
        }
        var r = ByteReader(bytes, position: 16)
        let version = try r.u16()
        guard version == Manifest.formatVersion else { throw BundleError.unsupportedVersion(version) }
        _ = try r.u16()
        _ = try r.u32()
        return try r.u64()
    }

    /// The seek table for `manifest` whose manifest frame is `manifestFrameLength` bytes long.
    public static func seekTable(for manifest: Manifest, manifestFrameLength: Int) -> SeekTable {
        var entries = [SeekTable.Entry(compressedSize: UInt32(headerFrameSize), decompressedSize: 0)]
        for f in manifest.frames {
            entries.append(SeekTable.Entry(compressedSize: f.storedLength, decompressedSize: f.decodedLength))
        }
        entries.append(SeekTable.Entry(compressedSize: UInt32(manifestFrameLength), decompressedSize: 0))
        return SeekTable(entries: entries)
    }

    /// Checks that the seek table, the manifest and the file length describe the same file.
    public static func checkConsistency(seekTable: SeekTable, manifest: Manifest, manifestFrameLength: Int, fileLength: UInt64) throws {
        let expected = self.seekTable(for: manifest, manifestFrameLength: manifestFrameLength)
        guard expected.entries == seekTable.entries else {
            throw BundleError.notABundle("the seek table does not match the manifest's frame table")
        }
        let total = UInt64(headerFrameSize) + manifest.storedSize + UInt64(manifestFrameLength) + UInt64(seekTable.encodedSize)
        guard total == fileLength else {
            throw BundleError.truncated("frames add up to \(total) bytes but the file has \(fileLength)")
        }
    }
}
