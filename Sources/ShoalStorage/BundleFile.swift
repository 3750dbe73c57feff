import Glibc
import ShoalBundle
import ShoalCrypto

/// A bundle file opened for reading: its manifest, checked for structure and signature, and
/// random access to its stored frames.
public final class BundleFile: @unchecked Sendable {
    // Invariant: immutable after init; pread on a shared descriptor is thread-safe.
    public let path: String
    public let signedManifest: SignedManifest
    public let fileLength: UInt64
    private let fd: Int32

    public var manifest: Manifest { signedManifest.manifest }
    public var bundleID: Digest { signedManifest.bundleID }

    /// Opens and parses `path`.
    /// - Throws: `BundleError` when the file is not a bundle, is truncated, has a malformed
    ///   manifest or a bad signature; `StorageError` when it cannot be read.
    public init(path: String) throws {
        self.path = path
        let fd = try Posix.open(path, O_RDONLY)
        do {
            let st = try Posix.fstat(fd, path: path)
            guard (st.st_mode & S_IFMT) == S_IFREG else { throw BundleError.notABundle("\(path) is not a regular file") }
            let length = UInt64(st.st_size)
            func read(_ offset: UInt64, _ count: Int) throws -> [UInt8] {
                var out = [UInt8](repeating: 0, count: count)
                let n = try out.withUnsafeMutableBytes { b in
                    try Posix.preadFully(fd, b.baseAddress!, count: count, offset: offset, path: path)
                }
                guard n == count else { throw BundleError.truncated("\(path) ends at \(offset + UInt64(n)) bytes") }
                return out
            }
            guard length >= UInt64(BundleLayout.headerFrameSize) else {
                throw BundleError.notABundle("\(path) is \(length) bytes, too short to be a bundle")
            }
            // The header comes first and announces the full length: this tells a truncated
            // bundle (an interrupted copy) apart from a file that is not a bundle at all.
            let announced = try BundleLayout.parseHeader(read(0, BundleLayout.headerFrameSize))
            guard announced == length else {
                if length < announced {
                    throw BundleError.truncated("\(path) has \(length) of its \(announced) bytes (interrupted copy?)")
                }
                throw BundleError.notABundle("\(path) has \(length - announced) bytes more than its header announces")
            }
            let footer = try read(length - UInt64(SeekTable.footerSize), SeekTable.footerSize)
            let (frameCount, tableSize) = try SeekTable.frameSize(fromFooter: footer)
            guard frameCount >= 2, UInt64(tableSize) + UInt64(BundleLayout.headerFrameSize) <= length else {
                throw BundleError.notABundle("seek table of \(frameCount) frames does not fit the file")
            }
            let table = try SeekTable.parse(read(length - UInt64(tableSize), tableSize))
            let manifestLength = Int(table.entries.last!.compressedSize)
            // Hostile or damaged tables must not make this arithmetic wrap: check before subtracting.
            guard manifestLength >= 8, manifestLength <= Manifest.maximumEncodedSize,
                UInt64(manifestLength) + UInt64(tableSize) + UInt64(BundleLayout.headerFrameSize) <= length
            else {
                throw BundleError.notABundle("the seek table's last entry is not a plausible manifest")
            }
            let manifestOffset = length - UInt64(tableSize) - UInt64(manifestLength)
            let signed = try SignedManifest.decode(frame: read(manifestOffset, manifestLength))
            try BundleLayout.checkConsistency(seekTable: table, manifest: signed.manifest, manifestFrameLength: manifestLength, fileLength: length)
            self.signedManifest = signed
            self.fileLength = length
            self.fd = fd
        } catch {
            Posix.close(fd)
            throw error
        }
    }

    deinit { Posix.close(fd) }

    /// Reads stored frame `index` into `buffer` (at least `storedLength` bytes); returns its length.
    public func readFrame(_ index: Int, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let frame = manifest.frames[index]
        let count = Int(frame.storedLength)
        precondition(buffer.count >= count)
        let n = try Posix.preadFully(fd, buffer.baseAddress!, count: count, offset: frame.offset, path: path)
        guard n == count else { throw BundleError.truncated("frame \(index) ends early") }
        return count
    }

    public func readFrame(_ index: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(manifest.frames[index].storedLength))
        _ = try out.withUnsafeMutableBytes { try readFrame(index, into: $0) }
        return out
    }

    /// The largest stored frame, for sizing buffers.
    public var maximumStoredLength: Int { Int(manifest.frames.map(\.storedLength).max() ?? 0) }
}
