/// The zstd seekable-format seek table: the last frame of every bundle.
///
/// Layout (zstd `contrib/seekable_format`, all little-endian):
/// skippable header `0x184D2A5E`, u32 frame size; then per frame `Compressed_Size` u32,
/// `Decompressed_Size` u32 (no per-entry checksums: descriptor bit 7 clear); then the 9-byte
/// footer: `Number_Of_Frames` u32, `Seek_Table_Descriptor` u8, `Seekable_Magic_Number` u32 `0x8F92EAB1`.
public struct SeekTable: Equatable, Sendable {
    public static let skippableMagic: UInt32 = 0x184D_2A5E
    public static let footerMagic: UInt32 = 0x8F92_EAB1
    public static let footerSize = 9
    public static let entrySize = 8

    public struct Entry: Equatable, Sendable {
        public var compressedSize: UInt32
        public var decompressedSize: UInt32
        public init(compressedSize: UInt32, decompressedSize: UInt32) {
            self.compressedSize = compressedSize
            self.decompressedSize = decompressedSize
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// Total bytes of the seek table frame, header included.
    public var encodedSize: Int { 8 + entries.count * SeekTable.entrySize + SeekTable.footerSize }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: encodedSize)
        w.u32(SeekTable.skippableMagic)
        w.u32(UInt32(entries.count * SeekTable.entrySize + SeekTable.footerSize))
        for e in entries {
            w.u32(e.compressedSize)
            w.u32(e.decompressedSize)
        }
        w.u32(UInt32(entries.count))
        w.u8(0)
        w.u32(SeekTable.footerMagic)
        return w.bytes
    }

    /// Reads the footer (the last 9 bytes of a file) and returns how many bytes the whole
    /// seek table frame takes, so the caller can read exactly that much from the end.
    public static func frameSize(fromFooter footer: [UInt8]) throws -> (frameCount: Int, tableSize: Int) {
        guard footer.count == footerSize else { throw BundleError.notABundle("file is shorter than a seek table footer") }
        var r = ByteReader(footer)
        let count = try r.u32()
        let descriptor = try r.u8()
        let magic = try r.u32()
        guard magic == footerMagic else {
            throw BundleError.notABundle("no zstd seek table at the end of the file (footer magic 0x\(String(magic, radix: 16)))")
        }
        guard descriptor & 0x7C == 0 else { throw BundleError.notABundle("seek table descriptor has reserved bits set") }
        let entrySize = descriptor & 0x80 != 0 ? 12 : 8
        return (Int(count), 8 + Int(count) * entrySize + footerSize)
    }

    /// Parses a complete seek table frame.
    public static func parse(_ bytes: [UInt8]) throws -> SeekTable {
        var r = ByteReader(bytes)
        do {
            let magic = try r.u32()
            guard magic == skippableMagic else { throw BundleError.notABundle("seek table does not start with the skippable magic 0x184D2A5E") }
            let size = Int(try r.u32())
            guard size == bytes.count - 8 else { throw BundleError.notABundle("seek table frame size \(size) does not match its footer") }
            let (count, _) = try frameSize(fromFooter: Array(bytes.suffix(footerSize)))
            let hasChecksums = bytes[bytes.count - 5] & 0x80 != 0
            var entries: [Entry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count {
                let c = try r.u32()
                let d = try r.u32()
                if hasChecksums { _ = try r.u32() }
                entries.append(Entry(compressedSize: c, decompressedSize: d))
            }
            return SeekTable(entries: entries)
        } catch is ByteReader.Truncated {
            throw BundleError.truncated("seek table ends early")
        }
    }
}
