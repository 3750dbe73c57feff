import ShoalBundle
import ShoalStorage

/// Where a node reads the chunks it serves: a seed's bundle file, or a peer's chunk store.
/// Every read is checked against the manifest before it is returned.
protocol ChunkSource: AnyObject {
    func has(_ index: Int) -> Bool
    func read(_ index: Int) throws -> [UInt8]
}

extension ChunkStore: ChunkSource {
    func read(_ index: Int) throws -> [UInt8] { try get(index) }
}

/// A seed serves straight from the bundle file.
final class BundleFileSource: ChunkSource {
    let file: BundleFile
    init(file: BundleFile) { self.file = file }
    func has(_ index: Int) -> Bool { index >= 0 && index < file.manifest.frames.count }
    func read(_ index: Int) throws -> [UInt8] {
        let bytes = try file.readFrame(index)
        _ = try bytes.withUnsafeBytes { try verifyStoredChunk($0, index: index, manifest: file.manifest) }
        return bytes
    }
}

/// The last few verified chunks, so serving 16 blocks of one chunk reads and hashes it once.
struct VerifiedChunkCache {
    private var entries: [(index: Int, bytes: [UInt8])] = []
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    mutating func get(_ index: Int, from source: ChunkSource) throws -> [UInt8] {
        if let i = entries.firstIndex(where: { $0.index == index }) {
            let e = entries.remove(at: i)
            entries.append(e)
            return e.bytes
        }
        let bytes = try source.read(index)
        entries.append((index, bytes))
        if entries.count > capacity { entries.removeFirst() }
        return bytes
    }
}
