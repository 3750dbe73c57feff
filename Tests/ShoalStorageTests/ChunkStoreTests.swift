import Foundation
import Glibc
import ShoalBundle
import ShoalCrypto
import ShoalStorage
import ShoalTestKit
import Testing

@Suite(.serialized) struct ChunkStoreTests {
    let region = 64 << 10

    @Test func fillsOutOfOrderAndBecomesTheBundle() throws {
        try TemporaryDirectory.with { dir in
            let image = TestData.mixedImage(9 * region + 321, seed: 51)
            let made = try TestBundles.make(image, in: dir, regionSize: region, signingKey: Ed25519PrivateKey())
            let source = try BundleFile(path: made.bundle)
            let store = try ChunkStore(directory: dir.file("store"), manifest: source.signedManifest)
            #expect(store.heldCount == 0)
            // A corrupt chunk is refused and nothing is recorded.
            var bad = try source.readFrame(4)
            bad[0] ^= 1
            #expect(throws: BundleError.self) { try store.put(4, bad) }
            #expect(!store.has(4))
            for i in [9, 3, 0, 4, 1, 8, 2, 7, 5, 6] { try store.put(i, try source.readFrame(i)) }
            try store.put(3, try source.readFrame(3))  // a duplicate is harmless
            try store.sync()
            #expect(store.isComplete)
            #expect(try store.get(7) == source.readFrame(7))
            #expect(Array(try store.get(2, offset: 5, length: 10)) == Array(try source.readFrame(2)[5..<15]))
            // The complete store is a bundle: same id, verifies, applies, and stock zstd reads it.
            let asBundle = try BundleFile(path: store.path)
            #expect(asBundle.bundleID == source.bundleID)
            _ = try BundleVerifier().verify(asBundle)
            if let zstd = ChildProcess.which("zstd") {
                #expect(try ChildProcess.run(zstd, ["-d", "-q", "-f", store.path, "-o", dir.file("out")]).status == 0)
                #expect(try TestData.read(dir.file("out")) == image)
            }
        }
    }

    @Test func reopeningResumesAndTheStoreIsExclusive() throws {
        try TemporaryDirectory.with { dir in
            let made = try TestBundles.make(TestData.random(6 * region, seed: 52), in: dir, regionSize: region)
            let source = try BundleFile(path: made.bundle)
            do {
                let store = try ChunkStore(directory: dir.file("s"), manifest: source.signedManifest)
                store.syncEveryBytes = Int.max
                try store.put(0, try source.readFrame(0))
                try store.put(2, try source.readFrame(2))
                try store.sync()
                try store.put(5, try source.readFrame(5))  // synced when the store is closed
                #expect(store.held == [0, 2, 5])
            }
            let reopened = try ChunkStore(directory: dir.file("s"), manifest: source.signedManifest)
            #expect(reopened.held == [0, 2, 5])
            // A second process (or store) cannot use it at the same time.
            #expect(throws: StorageError.self) { _ = try ChunkStore(directory: dir.file("s"), manifest: source.signedManifest) }
        }
    }

    @Test func aChunkDamagedOnDiskIsNeverServed() throws {
        try TemporaryDirectory.with { dir in
            let made = try TestBundles.make(TestData.random(3 * region, seed: 53), in: dir, regionSize: region)
            let source = try BundleFile(path: made.bundle)
            let store = try ChunkStore(directory: dir.file("s"), manifest: source.signedManifest)
            for i in 0..<3 { try store.put(i, try source.readFrame(i)) }
            try store.sync()
            try TestBundles.flipBit(in: store.path, at: source.manifest.frames[1].offset + 100)
            #expect(throws: BundleError.self) { _ = try store.get(1) }
            #expect(!store.has(1))  // dropped, to be fetched again
            #expect(try store.get(0) == source.readFrame(0))
        }
    }
}

/// A proof of a check names the exact bytes it was made for: it never lets other bytes through.
struct CheckedChunkTests {
    @Test func aProofForOtherBytesIsNotAccepted() throws {
        try TemporaryDirectory.with { dir in
            let region = 64 << 10
            let made = try TestBundles.make(TestData.random(2 * region, seed: 61), in: dir, regionSize: region)
            let source = try BundleFile(path: made.bundle)
            let good = try source.readFrame(0)
            var bad = good
            bad[10] ^= 1
            let proof = try good.withUnsafeBytes { try verifyStoredChunk($0, index: 0, manifest: source.manifest) }
            let store = try ChunkStore(directory: dir.file("s"), manifest: source.signedManifest)
            #expect(throws: BundleError.self) { try bad.withUnsafeBytes { _ = try store.put(0, $0, checked: proof) } }
            #expect(!store.has(0))
            let target = try StagingTarget(path: dir.file("t.img"), imageSize: source.manifest.imageSize)
            let log = try ResumeLog(path: dir.file("t.resume"), bundleID: source.bundleID, frameCount: 2, targetIdentity: target.identity)
            let writer = try StagingWriter(bundle: source.signedManifest, target: target, resumeLog: log, key: nil)
            #expect(throws: BundleError.self) { try bad.withUnsafeBytes { _ = try writer.write(chunk: 0, stored: $0, checked: proof) } }
            // The proof's own bytes go through without a second hash.
            try good.withUnsafeBytes { raw in
                let check = try verifyStoredChunk(raw, index: 0, manifest: source.manifest)
                #expect(try store.put(0, raw, checked: check))
                #expect(try writer.write(chunk: 0, stored: raw, checked: check))
            }
            try writer.write(chunk: 1, stored: try source.readFrame(1))
            _ = try writer.finish()
        }
    }
}
